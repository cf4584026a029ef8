"""The outbox under a failing platform and under a backlog.

· The Bot API answers 5xx for a while (FakeBotAPI.fail_for: three seconds here, standing in for "a
  minute" of Telegram trouble; the backoff schedule is the same, only shorter) and then recovers:
  everything is delivered, in order per chat, nothing twice.
· 10,000 pending rows drain at the channel's declared limit: never above it in any one-second window,
  and at no less than 80 % of it on average; per-chat order holds.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.outbox import Outbox
from bot.transports.base import Capabilities, OutMessage, Sent
from bot.transports.telegram_aiogram import AiogramTransport
from storage.messages import add_outbox_many, outbox_row
from storage.models import OutboxMessage
from tests.fakes.botapi import FakeBotAPI

TOKEN = "123456789:AAFakeTokenForTestsOnly_abcdefghijk"


async def _queue(sm: async_sessionmaker[AsyncSession], rows: list[tuple[str, str]], channel: str) -> None:
    now = datetime.now(UTC)
    async with sm() as s, s.begin():
        for i in range(0, len(rows), 2000):
            await add_outbox_many(s, [outbox_row(channel=channel, chat_id=c, is_group=False, text=t, now=now)
                                      for c, t in rows[i:i + 2000]])


async def _statuses(sm: async_sessionmaker[AsyncSession]) -> dict[str, int]:
    async with sm() as s:
        q = select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)
        return {k: int(v) for k, v in (await s.execute(q)).all()}


async def test_bot_api_5xx_for_a_while_then_everything_arrives_in_order(
        sqlite_sm: async_sessionmaker[AsyncSession]) -> None:
    chats = [1001, 1002, 1003]
    rows = [(str(c), f"第{i}条 to {c}") for i in range(4) for c in chats]
    async with FakeBotAPI(token=TOKEN) as api:
        transport = AiogramTransport(TOKEN, api_base=api.base_url, poll_timeout=1)

        async def ignore(_inc: object) -> None:
            return None

        await transport.start(ignore)  # type: ignore[arg-type]
        outbox = Outbox(sqlite_sm, {"telegram": transport}, poll_interval=0.05)
        try:
            api.fail_for(3.0, status=500, methods={"sendMessage"})
            await _queue(sqlite_sm, rows, "telegram")
            outbox.start()
            await asyncio.sleep(1.0)
            assert api.calls("sendMessage", ok=False), "the outage was exercised"
            assert api.calls("sendMessage", ok=True) == []
            deadline = time.monotonic() + 20
            while (await _statuses(sqlite_sm)).get("sent", 0) < len(rows) and time.monotonic() < deadline:  # noqa: ASYNC110
                await asyncio.sleep(0.1)
            assert await _statuses(sqlite_sm) == {"sent": len(rows)}
            for c in chats:
                got = [m["text"] for m in api.messages_to(c)]
                assert got == [f"第{i}条 to {c}" for i in range(4)], got  # in order, once each
        finally:
            await outbox.stop()
            await transport.stop()


class _Timed:
    """A transcript transport that notes when each message went out."""

    name = "bulk"

    def __init__(self, rate: float) -> None:
        self.capabilities = Capabilities(name="bulk", max_text=4096, global_rate=rate, per_chat_interval=0.0001,
                                         group_per_minute=100_000)
        self.sent: list[tuple[float, str, str]] = []

    async def start(self, on_update: object) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def send(self, msg: OutMessage) -> Sent:
        self.sent.append((time.monotonic(), msg.chat.chat_id, msg.text))
        return Sent(message_id=str(len(self.sent)))


async def test_backlog_drains_at_the_channel_limit(sqlite_sm: async_sessionmaker[AsyncSession]) -> None:
    # 400/s: high enough to finish in ~25 s, low enough that a loaded 2-core CI box is not the bottleneck.
    rate, n_chats, per_chat = 400.0, 1000, 10
    total = n_chats * per_chat
    rows = [(f"c{c}", f"{c}:{i}") for i in range(per_chat) for c in range(n_chats)]
    await _queue(sqlite_sm, rows, "bulk")
    t = _Timed(rate)
    outbox = Outbox(sqlite_sm, {"bulk": t}, poll_interval=0.02, concurrency=64)
    started = time.monotonic()
    await outbox.drain(timeout=60)
    assert len(t.sent) == total
    stamps = [s for s, _, _ in t.sent]
    # Never above the limit: at most `rate` sends in any one-second window, less 50 ms for scheduling
    # jitter between the limiter's clock reading and the send on a loaded CI machine (the fake Bot API
    # allows 20 ms the same way). A limiter that let a burst through would show up as ~2x here.
    peak, j = 0, 0
    for i in range(len(stamps)):
        while stamps[i] - stamps[j] >= 1.0 - 0.05:
            j += 1
        peak = max(peak, i - j + 1)
    span = stamps[-1] - started
    assert peak <= rate, f"{peak} sends within one second, limit {rate:g}/s"
    assert total / span >= 0.8 * rate, f"drained at {total / span:.0f}/s, limit {rate:g}/s"
    per: dict[str, list[int]] = defaultdict(list)
    for _, chat, text in t.sent:
        per[chat].append(int(text.split(":")[1]))
    assert all(v == sorted(v) == list(range(per_chat)) for v in per.values())
