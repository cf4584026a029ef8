"""A flood from one user: throttled with exactly one friendly warning, every message still kept in the
inbox, and the other users' latency through Dispatcher.handle stays low meanwhile (p99 < 200 ms on an idle
machine; on a loaded one, within a few times the same users' latency without the flood).

Bound by counts: the others send while the flood lasts (however long a loaded machine makes it) up to a
fixed number of messages each; the only deadline is a generous one that stops a hung run."""

from __future__ import annotations

import asyncio
import time

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.types import ChatRef, Incoming
from storage.models import InboxMessage, OutboxMessage
from tests.harness import make_bot

RATE = 50  # messages a second from the flooder
SECONDS = 2.0
PER_OTHER = 25  # the other users stay under their own 30-a-minute limit
HANG = 120.0  # seconds: only a hung run gets here


async def test_one_user_flooding_does_not_hurt_the_others(sessionmaker: async_sessionmaker[AsyncSession],
                                                          db_url: str) -> None:
    """On PostgreSQL (the multi-user deployment) with the latency bound. On SQLite only the throttling is
    checked: its single writer lock starves other connections under a flood (SQLite's busy handler
    sleeps and retries while the flooder's next transaction takes the lock again); see SECURITY.md."""
    bot = await make_bot(sessionmaker, per_minute=30)
    for user, person in (("flood", "李明"), ("u2", "赵芳"), ("sup", "周督查"), ("adm", "管理员"),
                         ("u2-b", "赵芳"), ("sup-b", "周督查"), ("adm-b", "管理员")):
        await bot.bind(user, person)
    latencies: list[float] = []
    ids = iter(range(10**6))
    for user in ("u2", "sup", "adm"):  # warm up: the first parse loads the segmenter's dictionaries
        await bot.send(user, "今天去水井村韦国祥家，缺化肥")

    def inc(user: str, text: str) -> Incoming:
        return Incoming(chat=ChatRef(bot.transport.name, f"chat-{user}"), sender_id=user, sender_name=user,
                        message_id=str(next(ids)), text=text)

    flood_done = asyncio.Event()

    async def flooder() -> int:
        tasks = []
        t0 = time.monotonic()
        n = int(RATE * SECONDS)
        for i in range(n):
            tasks.append(asyncio.create_task(bot.dispatcher.handle(inc("flood", f"今天去大坝村张桂英家，缺米{i}袋"))))
            await asyncio.sleep(max(0.0, t0 + (i + 1) / RATE - time.monotonic()))
        await asyncio.gather(*tasks)
        flood_done.set()
        return n

    async def other(user: str, texts: list[str], *, during_flood: bool) -> None:
        await asyncio.sleep(0.05)
        end = time.monotonic() + (HANG if during_flood else SECONDS)
        k = 0
        # While the flood lasts (the baseline: for as long as the flood is meant to take), at most
        # PER_OTHER each, so that the other users never reach their own limit.
        while time.monotonic() < end and k < PER_OTHER and not (during_flood and flood_done.is_set()):
            t = time.monotonic()
            await bot.dispatcher.handle(inc(user, texts[k % len(texts)]))
            latencies.append(time.monotonic() - t)
            k += 1
            await asyncio.sleep(0.05)

    def p99_of(xs: list[float]) -> float:
        xs = sorted(xs)
        return xs[max(0, int(len(xs) * 0.99) - 1)]

    # Separate chat accounts (same people) so the baseline does not eat into the per-user limit.
    others = (other("u2-b", ["帮助", "我的农户", "今天去水井村韦国祥家，缺化肥"], during_flood=False),
              other("sup-b", ["需求", "我是谁"], during_flood=False),
              other("adm-b", ["走访记录", "帮助"], during_flood=False))
    # The same users without a flood, on the same machine at the same moment: the baseline. A shared
    # 2-core CI box can be slow on its own; what must not happen is the flood making others slow.
    await asyncio.gather(*others)
    baseline = p99_of(latencies)
    latencies.clear()
    n, *_ = await asyncio.gather(flooder(),
                                 other("u2", ["帮助", "我的农户", "今天去水井村韦国祥家，缺化肥"], during_flood=True),
                                 other("sup", ["需求", "我是谁"], during_flood=True),
                                 other("adm", ["走访记录", "帮助"], during_flood=True))
    p99 = p99_of(latencies)
    if db_url.startswith("postgresql"):
        # Each of the three sent while the flood lasted (how many depends on the machine's load); with
        # fewer than 100 samples the "p99" below is the maximum, which is the stricter check.
        assert len(latencies) >= 3
        # < 200 ms as asked; on a machine already slower than that without any flood, within 3x of it
        # (without per-sender isolation the flood pushed others to 1-3 s on an idle machine).
        bound = max(0.2, 3 * baseline)
        assert p99 < bound, (f"p99 {p99 * 1000:.0f} ms (baseline {baseline * 1000:.0f} ms) over "
                             f"{len(latencies)} messages: {sorted(latencies)[-5:]}")

    async with bot.sm() as s:
        async def count(*where: object) -> int:
            return int((await s.execute(select(func.count()).select_from(InboxMessage).where(*where))).scalar_one())

        assert await count(InboxMessage.sender_id == "flood") == n  # every message is kept
        assert await count(InboxMessage.sender_id == "flood", InboxMessage.state == "throttled") == n - 30
        assert await count(InboxMessage.sender_id != "flood", InboxMessage.state == "throttled") == 0
        warnings = (await s.execute(select(OutboxMessage.payload).where(OutboxMessage.chat_id == "chat-flood")))
        texts = [p["text"] for (p,) in warnings.all()]
    assert sum("太快" in t for t in texts) == 1  # one friendly warning, then silence
    assert len(texts) == 30 + 1
