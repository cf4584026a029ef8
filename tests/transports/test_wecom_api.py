"""WeComAPI token cache against the fake: expires_in honoured with a margin, one refresh at a time."""

from __future__ import annotations

import asyncio

import pytest

from bot.ratelimit import SlidingWindow
from bot.transports.base import PermanentError
from bot.transports.wecom.api import WeComAPI
from tests.fakes.wecom_api import FakeWeComAPI


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_token_cached_until_expires_in_minus_margin() -> None:
    async with FakeWeComAPI(token_ttl=7200) as fake:
        clock = Clock()
        api = WeComAPI(fake.corp_id, fake.secret, api_base=fake.base_url, clock=clock)
        try:
            first = await api.get_token()
            clock.now += 6800  # inside expires_in minus the 300 s margin
            assert await api.get_token() == first
            clock.now += 150  # 6950 s: past the margin, before WeCom would reject it
            second = await api.get_token()
            assert second != first and fake.gettoken_calls == 2
            assert fake.token_rejections == []
        finally:
            await api.close()


async def test_parallel_first_use_fetches_one_token() -> None:
    async with FakeWeComAPI() as fake:
        api = WeComAPI(fake.corp_id, fake.secret, api_base=fake.base_url)
        try:
            tokens = await asyncio.gather(*(api.get_token() for _ in range(8)))
            assert len(set(tokens)) == 1 and fake.gettoken_calls == 1
        finally:
            await api.close()


async def test_wrong_secret_is_permanent_and_not_echoed() -> None:
    async with FakeWeComAPI() as fake:
        api = WeComAPI(fake.corp_id, "wrong-secret-123", api_base=fake.base_url)
        try:
            with pytest.raises(PermanentError) as ei:
                await api.send_text("u", fake.agent_id, "x")
            assert "40001" in str(ei.value) and "wrong-secret-123" not in str(ei.value)
        finally:
            await api.close()


def test_sliding_window() -> None:
    clock = Clock()
    w = SlidingWindow(3, 60.0, clock=clock)
    assert w.reserve("a", 2) == 0.0
    clock.now += 10
    assert w.reserve("a", 2) == pytest.approx(50.0)  # room for 2 once the first pair leaves
    assert w.reserve("a", 1) == 0.0
    assert w.reserve("b", 3) == 0.0
    clock.now += 50
    assert w.reserve("a", 2) == 0.0
    w.release("a", 2)
    assert w.reserve("a", 2) == 0.0
    with pytest.raises(ValueError):
        w.reserve("a", 4)
