"""Two outbox workers of one bot share the platform's send limit through Redis."""

from __future__ import annotations

import asyncio
import os
import shutil
import time
import uuid
from datetime import UTC, datetime

import pytest

from bot.outbox import Outbox, SharedSendWindow
from bot.transports.base import Capabilities, OnUpdate, OutMessage, Sent
from storage.engine import make_engine, make_sessionmaker
from storage.messages import add_outbox_many, outbox_row

REDIS = os.environ.get("BANGFU_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
CAPS = Capabilities(name="t", max_text=4096, global_rate=40.0, per_chat_interval=0.001, group_per_minute=10_000)


class Stamped:
    name = "tg"
    capabilities = CAPS

    def __init__(self, log: list[float]) -> None:
        self.log = log

    async def start(self, on_update: OnUpdate) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def send(self, msg: OutMessage) -> Sent:
        self.log.append(time.monotonic())
        return Sent(message_id="1")


async def _redis_or_skip() -> None:
    import redis.asyncio as redis

    r = redis.from_url(REDIS)
    try:
        await r.ping()
    except Exception as e:  # noqa: BLE001
        if os.environ.get("CI"):
            pytest.fail(f"Redis unreachable in CI: {e}")
        pytest.skip(f"Redis unreachable: {e}")
    finally:
        await r.aclose()


def _peak(stamps: list[float]) -> int:
    stamps = sorted(stamps)
    peak, j = 0, 0
    for i in range(len(stamps)):
        while stamps[i] - stamps[j] >= 1.0:
            j += 1
        peak = max(peak, i - j + 1)
    return peak


async def _backlog(url: str, n: int):
    sm = make_sessionmaker(make_engine(url))
    now = datetime.now(UTC)
    async with sm() as s, s.begin():
        await add_outbox_many(s, [outbox_row(channel="tg", chat_id=f"c{i}", is_group=False, text="x", now=now)
                                  for i in range(n)])
    return sm


@pytest.mark.parametrize("shared", [True, False])
async def test_two_workers_stay_within_one_limit(sqlite_template, tmp_path, shared: bool) -> None:
    """Each worker has its own backlog (as two processes claiming different rows would); only the
    Redis window keeps their sum under the bot's limit. Without it the pair sends twice as fast."""
    await _redis_or_skip()
    sms = []
    for k in range(2):
        path = tmp_path / f"w{k}.db"
        shutil.copy(sqlite_template, path)
        sms.append(await _backlog(f"sqlite+aiosqlite:///{path}", 100))
    log: list[float] = []
    prefix = f"bangfu:test:{uuid.uuid4().hex}"
    workers = [Outbox(sm, {"tg": Stamped(log)}, shared=SharedSendWindow(REDIS, prefix=prefix) if shared else None)
               for sm in sms]
    started = time.monotonic()
    await asyncio.gather(*(w.drain(timeout=60) for w in workers))
    elapsed = time.monotonic() - started
    for w in workers:
        if w.shared is not None:
            await w.shared.close()
    for sm in sms:
        await sm.kw["bind"].dispose()
    assert len(log) == 200
    if shared:
        assert _peak(log) <= 40, _peak(log)
        assert elapsed >= 200 / 40
    else:  # the control: proves the assertion above can fail
        assert _peak(log) > 60
