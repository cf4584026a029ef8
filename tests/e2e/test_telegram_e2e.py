"""The conversation end to end, on aiogram and on python-telegram-bot: FakeBotAPI ⇄ real transport (long
polling) ⇄ dispatcher ⇄ handlers ⇄ database ⇄ outbox ⇄ transport ⇄ FakeBotAPI.

Each test asserts both on what the fake server received and on what the database holds.
"""

from __future__ import annotations

import logging
import time
from datetime import date

import pytest
from sqlalchemy import select

from storage.models import ChatIdentity, Entry, InboxMessage, Visit
from tests.e2e.conftest import E2E

pytestmark = pytest.mark.slow

LI = 5001  # 李明's Telegram user id (and private chat id)
STRANGER = 6066


def card_of(m: dict) -> bool:
    return "已记录走访" in (m.get("text") or "")


def button_labels(m: dict) -> list[str]:
    return [b["text"] for row in m.get("reply_markup", {}).get("inline_keyboard", []) for b in row]


async def test_bind_choose_correct_undo(e2e_any_db: E2E) -> None:
    """The main scenario, on SQLite and PostgreSQL: bind, log an ambiguous visit, pick, correct, undo."""
    bot, api = e2e_any_db, e2e_any_db.api

    # 1. binding with an invite code
    code = await bot.invite("李明")
    bot.say(LI, f"/start {code}")
    welcome = await bot.wait_text(LI, "绑定成功")
    assert "李明" in welcome["text"]
    async with bot.sm() as s:
        ident = (await s.execute(select(ChatIdentity))).scalar_one()
        assert (ident.channel, ident.external_id, ident.chat_id) == ("telegram", str(LI), str(LI))
        assert ident.person_id == bot.world.people["李明"].id

    # 2. a visit naming 王德明, who exists in two villages: the bot asks, with buttons
    n = len(bot.bot_messages(LI))
    bot.say(LI, "昨天去王德明家，缺化肥3袋")
    ask = await bot.wait_message(LI, lambda m: "王德明" in (m.get("text") or "") and bool(button_labels(m)),
                                 after=n)
    labels = button_labels(ask)
    assert any("大坝村" in t for t in labels) and any("高坡村" in t for t in labels), labels
    assert await bot.count(Visit) == 0  # nothing saved until the choice is made

    n = len(bot.bot_messages(LI))
    press = bot.press(LI, ask, "高坡村")
    card = await bot.wait_message(LI, card_of, after=n)
    assert "高坡村" in card["text"] and "化肥" in card["text"]
    assert button_labels(card) == ["撤销", "修改"]
    await api.wait_for(lambda: any(c.params.get("callback_query_id") == press["callback_query"]["id"]
                                   for c in api.calls("answerCallbackQuery", ok=True)))
    async with bot.sm() as s:
        v = (await s.execute(select(Visit))).scalar_one()
        assert v.household_id == bot.world.households["王德明@高坡村"].id
        assert v.visit_date == date(2026, 11, 24) and not v.deleted
        assert v.cadre_id == bot.world.people["李明"].id

    # 3. a correction by replying to the card: the card is edited in place, then "已修改"
    edits_before = len(api.calls("editMessageText", ok=True))
    n = len(bot.bot_messages(LI))
    bot.say(LI, "改成前天", reply_to=card["message_id"])
    answer = await bot.wait_message(LI, lambda m: True, after=n)  # fail fast on an apology
    assert "已修改" in answer["text"], answer["text"]
    edits = api.calls("editMessageText", ok=True)[edits_before:]
    assert [(e.params["chat_id"], e.params["message_id"]) for e in edits] == [(LI, card["message_id"])]
    corrected = api.message(LI, card["message_id"])
    assert corrected is not None and "11月23日" in corrected["text"] and "高坡村" in corrected["text"]
    assert button_labels(corrected) == ["撤销", "修改"]
    async with bot.sm() as s:
        v = (await s.execute(select(Visit))).scalar_one()
        assert v.visit_date == date(2026, 11, 23)

    # 4. undo: the card is edited again, and a short confirmation follows
    edits_before = len(api.calls("editMessageText", ok=True))
    n = len(bot.bot_messages(LI))
    bot.say(LI, "撤销")
    await bot.wait_text(LI, "已撤销走访记录", after=n)
    edits = api.calls("editMessageText", ok=True)[edits_before:]
    assert [e.params["message_id"] for e in edits] == [card["message_id"]]
    edited = api.message(LI, card["message_id"])
    assert edited is not None and "已撤销" in edited["text"] and "reply_markup" not in edited
    async with bot.sm() as s:
        v = (await s.execute(select(Visit))).scalar_one()
        assert v.deleted is True
        assert (await s.execute(select(Entry.state))).scalar_one() == "undone"

    # every sendMessage went out as HTML the server could parse, and nothing failed
    assert all(c.ok for c in api.calls("sendMessage")), [c.response for c in api.calls("sendMessage")]


async def test_duplicate_update_gives_one_visit(e2e: E2E) -> None:
    bot, api = e2e, e2e.api
    await bot.bind(LI)
    update = api.make_text_update(LI, LI, "今天去大坝村张桂英家，缺大米一袋")
    # The same update twice in one getUpdates batch (same update_id)…
    uid = api.push_update(update)
    api.push_update({**update, "update_id": uid})
    await bot.wait_message(LI, card_of)
    # …and the same message again under a new update_id, as after a crash before the offset was confirmed.
    api.push_update({k: v for k, v in update.items() if k != "update_id"})
    await bot.settle(LI)

    assert await bot.count(Visit) == 1
    assert await bot.count(Entry) == 1
    assert sum(card_of(m) for m in bot.bot_messages(LI)) == 1
    mid = str(update["message"]["message_id"])
    assert await bot.count(InboxMessage, InboxMessage.message_key == mid) == 1


async def test_unknown_user_is_refused_politely(e2e: E2E) -> None:
    bot = e2e
    bot.say(STRANGER, "今天去大坝村张桂英家，缺棉被两床")
    refusal = await bot.wait_text(STRANGER, "邀请码")
    assert "/start" in refusal["text"]
    assert len(bot.bot_messages(STRANGER)) == 1
    assert await bot.count(Visit) == 0 and await bot.count(Entry) == 0
    assert await bot.count(ChatIdentity) == 0
    assert await bot.count(InboxMessage, InboxMessage.state == "stranger") == 1


async def test_429_on_send_is_retried_after_retry_after(e2e: E2E) -> None:
    bot, api = e2e, e2e.api
    await bot.bind(LI)
    api.fail_next("sendMessage", status=429, retry_after=1)
    n = len(bot.bot_messages(LI))
    bot.say(LI, "今天去大坝村张桂英家，缺大米一袋")
    card = await bot.wait_message(LI, card_of, after=n)

    assert api.count_429 == 1
    sends = api.calls("sendMessage")
    failed = [c for c in sends if c.status == 429]
    assert len(failed) == 1
    retried = next(c for c in sends if c.ok and c.timestamp > failed[0].timestamp)
    assert card["text"] == retried.response["result"]["text"]  # type: ignore[index]
    assert retried.timestamp - failed[0].timestamp >= 0.9, "retry_after=1 was not honoured"
    assert await bot.count(Visit) == 1


async def test_malformed_update_is_logged_and_skipped(e2e: E2E, caplog: pytest.LogCaptureFixture) -> None:
    bot, api = e2e, e2e.api
    await bot.bind(LI)
    caplog.set_level(logging.ERROR, logger="bot.transports.telegram")
    inbox_before = await bot.count(InboxMessage)
    bad = api.push_update({"message": {"oops": 1, "chat": "not a chat"}})
    n = len(bot.bot_messages(LI))
    bot.say(LI, "今天去大坝村张桂英家，缺大米一袋")
    await bot.wait_message(LI, card_of, after=n)

    assert await bot.count(Visit) == 1
    assert await bot.count(InboxMessage) == inbox_before + 1  # the bad one stored nothing
    assert any("malformed" in r.getMessage() and str(bad) in r.getMessage() for r in caplog.records), \
        [r.getMessage() for r in caplog.records]
    t0 = time.monotonic()
    await api.wait_for(lambda: not api.pending_updates)  # confirmed, not retried forever
    assert time.monotonic() - t0 < 5
