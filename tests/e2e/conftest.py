"""End-to-end fixtures: the real App (dispatcher + outbox + the Telegram transport picked by
`telegram_transport(settings)`) polling a FakeBotAPI, on a seeded database.

A test talks to the bot the way Telegram would: it pushes updates into the fake server and reads what the
bot sent (`api.messages_to(chat)`, `api.calls(method)`); it checks the database through `E2E.count`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.app import App, telegram_transport
from bot.config import Settings
from storage.accounts import create_invite
from tests.conftest import FixedClock
from tests.fakes.botapi import JSON, FakeBotAPI
from tests.harness import World, seed_world

TOKEN = "123456789:AAFakeTokenForTestsOnly_abcdefghijk"
WAIT = 10.0  # generous: CI runs two workers on two cores


def e2e_settings(db_url: str, api_base: str, framework: str) -> Settings:
    return Settings.model_validate({
        "database": {"url": db_url},
        "telegram": {"token": TOKEN, "api_base": api_base, "framework": framework, "poll_timeout": 1},
        "limits": {"user_messages_per_minute": 1000},
    })


@dataclass
class E2E:
    api: FakeBotAPI
    app: App
    world: World
    clock: FixedClock
    framework: str

    @property
    def sm(self) -> async_sessionmaker[AsyncSession]:
        assert self.app.sessionmaker is not None
        return self.app.sessionmaker

    async def invite(self, person: str, role: str = "cadre") -> str:
        async with self.sm() as s, s.begin():
            return await create_invite(s, role=role, now=self.clock.now(),
                                       person_id=self.world.people[person].id)

    async def count(self, model: Any, *where: Any) -> int:
        async with self.sm() as s:
            q = select(func.count()).select_from(model).where(*where)
            return int((await s.execute(q)).scalar_one())

    # ---- talking -----------------------------------------------------------------------------

    def bot_messages(self, chat_id: int) -> list[JSON]:
        return self.api.messages_to(chat_id)

    def say(self, user_id: int, text: str, *, reply_to: int | None = None, chat_id: int | None = None) -> JSON:
        """Push a text message from a user in their private chat; returns the update (with update_id)."""
        update = self.api.make_text_update(chat_id or user_id, user_id, text, reply_to_message_id=reply_to)
        update["update_id"] = self.api.push_update(update)
        return update

    def press(self, user_id: int, message: JSON, label_part: str) -> JSON:
        """Press the inline button whose label contains `label_part` on a message the bot sent."""
        buttons = [b for row in message.get("reply_markup", {}).get("inline_keyboard", []) for b in row]
        button = next((b for b in buttons if label_part in b["text"]), None)
        assert button is not None, f"no button with {label_part!r} in {[b['text'] for b in buttons]}"
        update = self.api.make_callback_update(message["chat"]["id"], user_id, button["callback_data"],
                                               message["message_id"])
        update["update_id"] = self.api.push_update(update)
        return update

    async def wait_message(self, chat_id: int, predicate: Callable[[JSON], bool], *, after: int = 0,
                           timeout: float = WAIT) -> JSON:
        """The first bot message to `chat_id` (among those from index `after` on) that matches."""
        found: list[JSON] = []

        def check() -> bool:
            found[:] = [m for m in self.bot_messages(chat_id)[after:] if predicate(m)]
            return bool(found)

        try:
            await self.api.wait_for(check, timeout)
        except TimeoutError:
            texts = [m.get("text") for m in self.bot_messages(chat_id)]
            raise AssertionError(f"no matching message to {chat_id} within {timeout}s; bot sent: {texts}") from None
        return found[0]

    async def wait_text(self, chat_id: int, needle: str, *, after: int = 0, timeout: float = WAIT) -> JSON:
        return await self.wait_message(chat_id, lambda m: needle in (m.get("text") or ""), after=after,
                                       timeout=timeout)

    async def bind(self, user_id: int, person: str = "李明") -> JSON:
        """Bind a Telegram user to a registry person the way a cadre does: /start with an invite code."""
        code = await self.invite(person)
        n = len(self.bot_messages(user_id))
        self.say(user_id, f"/start {code}")
        return await self.wait_text(user_id, "绑定成功", after=n)

    async def settle(self, user_id: int, needle: str = "李明") -> JSON:
        """A barrier: send 我是谁 and wait for its answer (which contains `needle`). Updates are processed
        in order and one chat's replies leave in order, so everything pushed before has been processed
        and its replies sent."""
        n = len(self.bot_messages(user_id))
        self.say(user_id, "我是谁")
        return await self.wait_text(user_id, needle, after=n)


@pytest.fixture(params=["aiogram", "ptb"])
def framework(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
async def api() -> AsyncIterator[FakeBotAPI]:
    async with FakeBotAPI(token=TOKEN) as server:
        yield server


async def _start(db_url: str, api: FakeBotAPI, framework: str) -> AsyncIterator[E2E]:
    settings = e2e_settings(db_url, api.base_url, framework)
    clock = FixedClock()
    transport = telegram_transport(settings)
    assert transport is not None
    expected = "PTBTransport" if framework == "ptb" else "AiogramTransport"
    assert type(transport).__name__ == expected
    app = App(settings, clock=clock, transports=[transport], with_scheduler=False)
    await app.build()
    assert app.sessionmaker is not None
    world = await seed_world(app.sessionmaker)
    await app.start()
    try:
        yield E2E(api, app, world, clock, framework)
    finally:
        await app.stop()


@pytest.fixture
async def e2e(sqlite_url: str, api: FakeBotAPI, framework: str) -> AsyncIterator[E2E]:
    """The bot on a fresh SQLite file."""
    async for bot in _start(sqlite_url, api, framework):
        yield bot


@pytest.fixture
async def e2e_any_db(db_url: str, api: FakeBotAPI, framework: str) -> AsyncIterator[E2E]:
    """The bot on SQLite and on PostgreSQL."""
    async for bot in _start(db_url, api, framework):
        yield bot
