"""Fixtures for the Telegram transport tests: a running fake Bot API and transports started against it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from bot.transports.telegram_aiogram import AiogramTransport
from bot.transports.telegram_common import TelegramTransportBase
from bot.transports.telegram_ptb import PTBTransport
from handlers.types import Incoming
from tests.fakes.botapi import FakeBotAPI

TOKEN = "123456789:AAFakeTokenForTestsOnly_abcdefghijk"


class Inbox:
    """An on_update that records what arrived and can be told to fail."""

    def __init__(self) -> None:
        self.items: list[Incoming] = []
        self.attempts: list[Incoming] = []
        self.fail_remaining = 0
        self.hook: Callable[[Incoming], Awaitable[None]] | None = None
        self._changed = asyncio.Event()

    async def __call__(self, incoming: Incoming) -> None:
        self.attempts.append(incoming)
        self._changed.set()
        if self.hook is not None:
            await self.hook(incoming)
        if self.fail_remaining > 0:
            self.fail_remaining -= 1
            raise RuntimeError("storage is down")
        self.items.append(incoming)
        self._changed.set()

    async def wait(self, n: int = 1, timeout: float = 5.0, *, attempts: bool = False) -> list[Incoming]:
        seen = self.attempts if attempts else self.items
        async with asyncio.timeout(timeout):
            while len(seen) < n:
                self._changed.clear()
                await self._changed.wait()
        return list(seen)


@pytest.fixture
async def api() -> AsyncIterator[FakeBotAPI]:
    async with FakeBotAPI(token=TOKEN) as server:
        yield server


@pytest.fixture(params=[AiogramTransport, PTBTransport], ids=["aiogram", "ptb"])
def transport_cls(request: pytest.FixtureRequest) -> type[TelegramTransportBase]:
    return request.param


StartTransport = Callable[..., Awaitable[tuple[TelegramTransportBase, Inbox]]]


@pytest.fixture
async def start_transport(api: FakeBotAPI, transport_cls: type[TelegramTransportBase]) -> AsyncIterator[StartTransport]:
    started: list[TelegramTransportBase] = []

    async def start(**kwargs: Any) -> tuple[TelegramTransportBase, Inbox]:
        kwargs.setdefault("api_base", api.base_url)
        kwargs.setdefault("poll_timeout", 1)
        transport = transport_cls(TOKEN, **kwargs)
        inbox = Inbox()
        await transport.start(inbox)
        started.append(transport)
        return transport, inbox

    yield start
    for transport in started:
        await transport.stop()
