"""Shared fixtures: a migrated database on SQLite and on PostgreSQL, and a fixed clock.

PostgreSQL: BANGFU_TEST_PG_URL names the server (default: the local one, database `test`). Each run
creates its own database and drops it at the end. Under CI an unreachable server fails the run.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.pool import NullPool

from storage.engine import make_engine, make_sessionmaker, upgrade
from storage.models import Base

TZ = ZoneInfo("Asia/Shanghai")
FIXED_NOW = datetime(2026, 11, 25, 10, 0, tzinfo=TZ)  # a Wednesday, as in the dev set
PG_DEFAULT = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


class FixedClock:
    """Time for tests: starts at FIXED_NOW and only moves when told to."""

    def __init__(self, now: datetime = FIXED_NOW) -> None:
        self._now = now

    def now(self) -> datetime:
        return self._now

    def set(self, now: datetime) -> None:
        self._now = now

    def advance(self, **kw: float) -> None:
        from datetime import timedelta

        self._now = self._now + timedelta(**kw)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()




async def _pg_admin(url: str, sql: str) -> None:
    import asyncpg

    u = make_url(url)
    conn = await asyncpg.connect(
        host=u.host or "127.0.0.1", port=u.port or 5432, user=u.username or "postgres",
        password=u.password, database=u.database or "postgres", timeout=5,
    )
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test run (and this xdist worker), migrated to head."""
    base = os.environ.get("BANGFU_TEST_PG_URL", PG_DEFAULT)
    name = f"bangfu_t_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    try:
        asyncio.run(_pg_admin(base, f'CREATE DATABASE "{name}"'))
    except Exception as e:  # noqa: BLE001 - any failure to reach the server means the same thing here
        if IN_CI:
            pytest.fail(f"PostgreSQL at {make_url(base).host}:{make_url(base).port} unreachable in CI: {e}")
        pytest.skip(f"PostgreSQL unreachable: {e}")
    url = make_url(base).set(drivername="postgresql+asyncpg", database=name).render_as_string(
        hide_password=False
    )
    upgrade(url)
    yield url
    asyncio.run(_pg_admin(base, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Migrating once and copying the file is ten times faster than migrating per test."""
    path = tmp_path_factory.mktemp("tpl") / "template.db"
    upgrade(f"sqlite+aiosqlite:///{path}")
    return path


async def _truncate_pg(engine: AsyncEngine) -> None:
    names = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    async with engine.begin() as conn:
        await conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


@pytest.fixture(params=["sqlite", pytest.param("pg", marks=pytest.mark.pg)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty database: a fresh SQLite file, or the run's PostgreSQL database truncated."""
    if request.param == "sqlite":
        path = tmp_path / "bangfu.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite+aiosqlite:///{path}"
    else:
        url = request.getfixturevalue("pg_server_url")
        yield url
        eng = make_engine(url, poolclass=NullPool)
        asyncio.run(_truncate_and_dispose(eng))


async def _truncate_and_dispose(eng: AsyncEngine) -> None:
    try:
        await _truncate_pg(eng)
    finally:
        await eng.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path, sqlite_template: Path) -> str:
    path = tmp_path / "bangfu.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite+aiosqlite:///{path}"


@pytest.fixture
async def engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    eng = make_engine(db_url)
    yield eng
    await eng.dispose()


@pytest.fixture
def sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return make_sessionmaker(engine)


@pytest.fixture
async def session(sessionmaker: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    async with sessionmaker() as s:
        yield s

