"""The polling loop with several chats in flight: per-chat order, and the offset only past what succeeded."""

from __future__ import annotations

import asyncio
from typing import Any

from bot.transports.telegram_common import Poller


def upd(uid: int, chat: int) -> dict[str, Any]:
    return {"update_id": uid, "message": {"message_id": uid, "chat": {"id": chat}, "text": str(uid)}}


async def test_concurrent_batch_keeps_chat_order_and_confirms_only_the_processed_prefix() -> None:
    batch = [upd(1, 10), upd(2, 20), upd(3, 10), upd(4, 20), upd(5, 10), upd(6, 30)]
    seen: list[tuple[int, int]] = []
    in_flight, peak = 0, 0

    async def process(raw: dict[str, Any]) -> None:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.01)
        in_flight -= 1
        if raw["update_id"] == 4:
            raise RuntimeError("database down")
        seen.append((raw["message"]["chat"]["id"], raw["update_id"]))

    async def fetch(offset: int | None, timeout: int, limit: int) -> list[Any]:
        return []

    p = Poller(fetch, process, poll_timeout=0, concurrency=4)
    failed = await p._process_batch(batch)
    assert failed == 4
    assert p.offset == 4  # 1-3 confirmed; 4 failed, so 4.. are fetched again
    assert peak > 1  # chats really ran concurrently
    assert [u for c, u in seen if c == 10] == [1, 3, 5]  # chat order kept
    assert (20, 2) in seen and (30, 6) in seen and all(u != 4 for _, u in seen)


async def test_sequential_by_default() -> None:
    in_flight, peak = 0, 0

    async def process(raw: dict[str, Any]) -> None:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.005)
        in_flight -= 1

    async def fetch(offset: int | None, timeout: int, limit: int) -> list[Any]:
        return []

    p = Poller(fetch, process, poll_timeout=0)
    assert await p._process_batch([upd(i, i) for i in range(1, 6)]) is None
    assert peak == 1 and p.offset == 6
