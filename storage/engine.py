"""Engines and session factories for SQLite (embedded default) and PostgreSQL, and schema upgrades."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def normalise_url(url: str) -> str:
    """Accept the URLs people paste (sqlite:///x.db, postgresql://…) and pick the async drivers."""
    u = make_url(url)
    if u.drivername in ("sqlite", "sqlite+pysqlite"):
        u = u.set(drivername="sqlite+aiosqlite")
    elif u.drivername in ("postgresql", "postgres", "postgresql+psycopg2"):
        u = u.set(drivername="postgresql+asyncpg")
    return u.render_as_string(hide_password=False)


def _json_dumps(obj: Any) -> str:
    # Chinese stays readable in the database and in logged parameters (and \uXXXX escapes would glue
    # hex digits onto ID numbers, defeating the log redaction).
    return json.dumps(obj, ensure_ascii=False)


def sqlite_file(url: str) -> Path | None:
    """The database file of a SQLite URL; None for PostgreSQL or an in-memory database."""
    u = make_url(normalise_url(url))
    if u.get_backend_name() != "sqlite" or not u.database or u.database == ":memory:":
        return None
    return Path(u.database)


def make_engine(url: str, **kw: Any) -> AsyncEngine:
    url = normalise_url(url)
    kw.setdefault("json_serializer", _json_dumps)
    u = make_url(url)
    if u.get_backend_name() == "sqlite":
        if u.database and u.database != ":memory:":
            Path(u.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": 30}, **kw)
        _sqlite_pragmas(engine)
        return engine
    if "poolclass" not in kw:
        kw.setdefault("pool_size", 10)
        kw.setdefault("max_overflow", 20)
    # No ping before every checkout (a round trip per transaction): a connection that died while idle
    # fails its update, which is then retried (polling does not confirm it, a webhook answers 5xx) and
    # nothing is lost; recycling connections before servers and proxies drop idle ones makes that rare.
    kw.setdefault("pool_pre_ping", False)
    kw.setdefault("pool_recycle", 1800)
    return create_async_engine(url, **kw)


def _sqlite_pragmas(engine: AsyncEngine) -> None:
    sync = engine.sync_engine

    @event.listens_for(sync, "connect")
    def on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Take over transaction control from the sqlite3 module, so SAVEPOINTs work and so every
        # transaction starts IMMEDIATE: writers then queue on the lock up front instead of failing
        # with "database is locked" on upgrade, and read-check-write sequences (the last seat of a
        # training) cannot interleave.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @event.listens_for(sync, "begin")
    def on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def alembic_config(url: str) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", normalise_url(url).replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Create or upgrade the schema (blocking; call it outside a running loop or via a thread)."""
    from alembic import command

    command.upgrade(alembic_config(url), revision)


async def upgrade_async(url: str) -> None:
    await asyncio.to_thread(upgrade, url)


def current_revision(url: str) -> str | None:
    import asyncio

    return asyncio.run(current_revision_async(url))


async def current_revision_async(url: str) -> str | None:
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy.engine import Connection

    def rev(conn: Connection) -> str | None:
        return MigrationContext.configure(conn).get_current_revision()

    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(rev)
    finally:
        await engine.dispose()
