"""APScheduler jobs that only tick; what is due is decided by handlers from the database."""

from __future__ import annotations

from typing import Any


async def start_scheduler(app: Any) -> Any:
    return None
