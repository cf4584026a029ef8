"""One whole training scenario over the wire: the aiogram transport polling a fake Telegram Bot API,
the dispatcher and the outbox worker on SQLite — notice, free-text sign-up, waitlist, cancellation with
the promotion notice, button check-in and the roster document."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from typing import Any

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from bot.dispatch import Dispatcher
from bot.outbox import Outbox
from bot.transports.telegram_aiogram import AiogramTransport
from handlers.context import Prefs
from storage.engine import make_engine, make_sessionmaker
from storage.models import ChatIdentity, Person, TrainingSession
from tests.conftest import FIXED_NOW, TZ, FixedClock
from tests.fakes.botapi import FakeBotAPI
from tests.harness import seed_world

TOKEN = "123456789:AAFakeTokenForTestsOnly_abcdefghijk"
LI, ZHAO, ORG = 101, 102, 103  # Telegram user ids = private chat ids
NOTICE = ("关于举办电工培训的通知：培训时间12月5日上午9:00，地点：镇就业站，名额1人，"
          "报名截止12月1日，联系人：张敏")


class Wire:
    def __init__(self, api: FakeBotAPI, clock: FixedClock) -> None:
        self.api = api
        self.clock = clock

    def texts(self, chat: int) -> list[str]:
        return [m.get("text") or m.get("caption") or "" for m in self.api.messages_to(chat)]

    async def say(self, chat: int, text: str, expect: str, *, to: int | None = None) -> dict[str, Any]:
        """Send as user `chat`; wait until a bot message containing `expect` is in chat `to` (default: same)."""
        target = to or chat
        before = len(self.api.messages_to(target))
        self.api.push_update(self.api.make_text_update(chat, chat, text))
        await self.api.wait_for(lambda: any(expect in t for t in self.texts(target)[before:]), timeout=10)
        return next(m for m in self.api.messages_to(target)[before:] if expect in (m.get("text") or m.get("caption") or ""))

    async def press(self, chat: int, msg: dict[str, Any], label: str, expect: str) -> dict[str, Any]:
        data = next(b["callback_data"] for row in msg["reply_markup"]["inline_keyboard"] for b in row
                    if label in b["text"])
        self.api.push_update(self.api.make_callback_update(chat, chat, data, msg["message_id"]))

        def edited_or_new() -> dict[str, Any] | None:
            for m in [self.api.message(chat, msg["message_id"]), *self.api.messages_to(chat)]:
                if m is not None and expect in (m.get("text") or "") and m is not msg:
                    return m
            return None

        await self.api.wait_for(lambda: edited_or_new() is not None, timeout=10)
        found = edited_or_new()
        assert found is not None
        return found


@pytest.fixture
async def wire(sqlite_url: str) -> AsyncIterator[tuple[Wire, Any]]:
    engine = make_engine(sqlite_url)
    sm = make_sessionmaker(engine)
    world = await seed_world(sm)
    async with sm() as s, s.begin():
        org = Person(natural_key="培训办|x", name="培训办", role="organiser", unit_id=world.township.id)
        s.add(org)
        await s.flush()
        for uid, pid in ((LI, world.people["李明"].id), (ZHAO, world.people["赵芳"].id), (ORG, org.id)):
            s.add(ChatIdentity(person_id=pid, channel="telegram", external_id=str(uid), chat_id=str(uid),
                               bound_at=FIXED_NOW))
    clock = FixedClock()
    async with FakeBotAPI(token=TOKEN) as api:
        transport = AiogramTransport(TOKEN, api_base=api.base_url, poll_timeout=1)
        outbox = Outbox(sm, {transport.name: transport})
        dispatcher = Dispatcher(sm, Prefs(tz=TZ), clock=clock, inline_buttons={transport.name: True},
                                on_outbox=outbox.notify)
        outbox.start()
        await transport.start(dispatcher.handle)
        try:
            yield Wire(api, clock), sm
        finally:
            await transport.stop()
            await outbox.stop()
            await engine.dispose()


async def test_training_scenario_over_telegram(wire: tuple[Wire, Any]) -> None:
    w, sm = wire
    card = await w.say(ORG, NOTICE, "请核对")
    assert "电工" in card["text"] and "名额：1人" in card["text"]
    published = await w.press(ORG, card, "确认发布", "已发布")
    assert published["message_id"] == card["message_id"]  # the card was edited in place

    first = await w.say(LI, "帮大坝村张桂英报个名 电工", "报名成功")
    assert "已关联农户" in first["text"]
    waiting = await w.say(ZHAO, "报名 电工 韦国祥", "候补")
    assert "候补第1位" in waiting["text"]

    await w.say(LI, "张桂英不去了", "已取消")
    await w.api.wait_for(lambda: any("正式报名" in t for t in w.texts(ZHAO)), timeout=10)
    assert any("韦国祥" in t and "正式报名" in t for t in w.texts(ZHAO))

    async with sm() as s:
        ts = (await s.execute(select(TrainingSession))).scalar_one()
    # The organiser's check-in view works any time (the outbox sends by the real clock, so the test
    # clock stays put).
    view = await w.say(ORG, f"培训 签到 {ts.id}", "已到 0/1")
    marked = await w.press(ORG, view, "韦国祥", "已到 1/1")
    assert marked["message_id"] == view["message_id"]

    before = len(w.api.calls("sendDocument"))
    await w.say(ORG, f"培训 名单 {ts.id}", "名单")
    await w.api.wait_sent(before + 1, "sendDocument", timeout=10)
    doc = w.api.messages_to(ORG)[-1]["document"]
    content = w.api.files[doc["file_id"]].content
    rows = list(load_workbook(io.BytesIO(content)).active.iter_rows(values_only=True))
    assert rows[0] == ("姓名", "村", "户", "电话", "状态")
    assert [(r[0], r[4]) for r in rows[1:]] == [("韦国祥", "已签到")]
