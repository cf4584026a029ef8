"""Fixtures for the text-parser tests: a fixed send time (Wednesday 2026-11-25, Asia/Shanghai, as in the dev set)."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=TZ)
TODAY = date(2026, 11, 25)


@pytest.fixture
def now() -> datetime:
    return NOW
