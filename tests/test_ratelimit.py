"""The one sliding window: counting with take (the flood limit), waiting without recording (the outbox), and
idle keys forgotten so a window per user does not grow forever."""

from __future__ import annotations

import asyncio

import pytest

from bot.dispatch import UserRateLimiter
from bot.ratelimit import SlidingWindow


def test_take_counts_even_past_the_limit_and_wait_time_records_nothing() -> None:
    w = SlidingWindow(2, 10.0)
    assert w.wait_time("u", now=0.0) == 0.0 and w.wait_time("u", now=0.0) == 0.0
    assert [w.take("u", now=t) for t in (0.0, 1.0, 2.0)] == [1, 2, 3]
    assert w.wait_time("u", now=3.0) == pytest.approx(8.0)  # the third-newest leaves at 11
    assert w.take("u", now=10.5) == 3  # the one at 0 left; 1, 2 and this remain
    assert w.wait_time("u", now=12.0) == pytest.approx(0.0)


def test_idle_keys_are_forgotten() -> None:
    w = SlidingWindow(5, 1.0)
    for i in range(5000):
        w.take(("tg", str(i)), now=float(i))
    assert w.wait_time(("tg", "4999"), 5, now=4999.5) > 0  # the newest key is still counted
    assert len(w._events) < 2000


def test_flood_limit_warns_once_a_minute_then_drops() -> None:
    lim = UserRateLimiter(3)
    key = ("tg", "u1")

    async def run() -> list[str]:
        return [await lim.check(key, float(t)) for t in (0, 1, 2, 3, 4, 59)] + [await lim.check(key, 130.0)]

    assert asyncio.run(run()) == ["ok", "ok", "ok", "warn", "drop", "drop", "ok"]
