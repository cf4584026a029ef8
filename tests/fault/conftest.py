"""Fixtures for the fault, flood, hostile-input and access suite.

Most tests run on a SQLite file (cheap); the ones about a database outage, a killed fan-out and outbox
throughput under several claims also run on PostgreSQL, through `pg_url` (the run's database, emptied
after each test).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Iterator

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.pool import NullPool

from storage.engine import make_engine, make_sessionmaker
from tests.conftest import _truncate_and_dispose
from tests.harness import Bot, make_bot


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def sqlite_sm(sqlite_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    eng = make_engine(sqlite_url)
    yield make_sessionmaker(eng)
    await eng.dispose()


@pytest.fixture
async def bot(sqlite_sm: async_sessionmaker[AsyncSession]) -> Bot:
    """李明 (cadre, 大坝村) as u1, 赵芳 (cadre, 水井村 in another township) as u2, the township
    supervisor 周督查 as sup and the admin as adm."""
    b = await make_bot(sqlite_sm)
    await b.bind("u1", "李明")
    await b.bind("u2", "赵芳")
    await b.bind("sup", "周督查")
    await b.bind("adm", "管理员")
    return b


@pytest.fixture
def pg_url(pg_server_url: str) -> Iterator[str]:
    """The run's PostgreSQL database, emptied after the test."""
    yield pg_server_url
    asyncio.run(_truncate_and_dispose(make_engine(pg_server_url, poolclass=NullPool)))
