"""One poller per bot token: a second process polling the same token would steal its updates
(Telegram answers one getUpdates at a time), so polling takes a lease first."""

from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine


class PollLeaseTaken(Exception):
    pass


MESSAGE = ("another bangfu process is already polling this Telegram bot token; stop it, or run several "
           "workers in webhook mode (set [telegram] webhook_url)")


class PollLease:
    """PostgreSQL: a session advisory lock held on its own connection. SQLite (one machine): an
    exclusive file lock beside the database file."""

    def __init__(self, engine: AsyncEngine, token: str) -> None:
        self.engine = engine
        self.key = "bangfu:poll:" + hashlib.sha256(token.encode()).hexdigest()[:24]
        self._conn: AsyncConnection | None = None
        self._fd: int | None = None

    async def acquire(self) -> None:
        if self.engine.dialect.name == "postgresql":
            conn = await self.engine.connect()
            got = (await conn.execute(text("SELECT pg_try_advisory_lock(hashtext(:k))"), {"k": self.key})).scalar()
            await conn.commit()
            if not got:
                await conn.close()
                raise PollLeaseTaken(MESSAGE)
            self._conn = conn
            return
        import fcntl

        db = make_url(str(self.engine.url)).database or "bangfu"
        path = Path(f"{db}.{self.key[-12:]}.poll.lock") if db != ":memory:" else Path(f"/tmp/{self.key}.lock")
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise PollLeaseTaken(MESSAGE) from None
        self._fd = fd

    async def stop(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.execute(text("SELECT pg_advisory_unlock(hashtext(:k))"), {"k": self.key})
                await self._conn.close()
            self._conn = None
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None

    def __repr__(self) -> str:
        return f"PollLease({self.key[-8:]})"


def polls(transport: Any) -> bool:
    return transport.name == "telegram" and not getattr(transport, "webhook_url", None)
