"""Hostile input: fuzzed messages and attachments through the dispatcher, garbage Telegram updates (polling
and webhook) and garbage WeCom callbacks. The worker never crashes and answers a valid message afterwards.
Markup in names and text arrives literally; SQL-looking text is data; oversized text and files are refused
with a message while the raw message stays in the inbox; channel posts and unknown updates are ignored.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.dispatch import Dispatcher
from bot.outbox import Outbox
from bot.transports.telegram_aiogram import AiogramTransport
from bot.transports.wecom import WeComTransport
from handlers.context import Prefs
from handlers.types import Attachment, ChatRef, Incoming
from storage.engine import make_engine, make_sessionmaker
from storage.models import ChatIdentity, Household, InboxMessage, OutboxMessage, Pairing, Person, Visit
from tests.conftest import TZ
from tests.fakes.botapi import FakeBotAPI
from tests.fakes.wecom_api import FakeWeComAPI, build_text_xml, post_callback, wecom_encrypt, wecom_sign
from tests.fault.conftest import free_port
from tests.harness import Bot, make_bot, seed_world

TOKEN = "123456789:AAFakeTokenForTestsOnly_abcdefghijk"
USER = 4242  # the bound Telegram user (李明)
SQL = "'); DROP TABLE visit;--"


# ---------------------------------------------------------------------------------------- fuzzing

_CJK = st.sampled_from("今天去大坝村王德明家缺棉被两床口人下周一送过去改成昨天删掉第条需求撤销帮助我的农户培训报名")
_TEXT = st.one_of(
    st.text(max_size=200),
    st.lists(st.one_of(_CJK, st.sampled_from(["/", "/start ", "/my", "@", "\n", "：", "，", "2", "100", "-1",
                                              "<b>", "</i>", "*", "_", "`", "'", ";", SQL, "\u202e", "\u0000"])),
             max_size=40).map("".join),
)
_ATTACHMENT = st.builds(
    Attachment,
    kind=st.sampled_from(["photo", "voice", "video", "document", "location", "sticker", "other"]),
    file_id=st.one_of(st.none(), st.text(max_size=80)),
    file_name=st.one_of(st.none(), st.text(max_size=80)),
    mime=st.one_of(st.none(), st.text(max_size=40)),
    size=st.one_of(st.none(), st.integers(min_value=-(2**40), max_value=2**62)),
    latitude=st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False)),
    longitude=st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False)),
)


@dataclass
class _Fuzz:
    kind: str
    text: str
    callback: str | None
    reply_to: str | None
    attachments: tuple[Attachment, ...]
    group: bool


_INCOMING = st.builds(
    _Fuzz,
    kind=st.sampled_from(["message", "message", "message", "edit", "callback", "event"]),
    text=_TEXT,
    callback=st.one_of(st.none(), st.text(max_size=70),
                       st.sampled_from(["pk:1:0:1", "add:1:0", "dt:1:2026-11-24", "v:1:undo", "v:1:edit", "nd:1",
                                        "cmd:my", "bc:1:g", "bc:1:a:ok", "rm:s", "rm:c:1", "tj:1", "tx:1", "ta:1:ok"])),
    reply_to=st.one_of(st.none(), st.sampled_from(["1000", "1001", "0", "-5", "x"]), st.text(max_size=20)),
    attachments=st.lists(_ATTACHMENT, max_size=3).map(tuple),
    group=st.booleans(),
)


def _run_fuzz(url: str, sender: str, examples: int) -> None:
    with asyncio.Runner() as runner:
        eng = make_engine(url)
        sm = make_sessionmaker(eng)
        bot: Bot = runner.run(make_bot(sm))
        runner.run(bot.bind("u1", "李明"))
        runner.run(bot.send("u1", "今天去大坝村张桂英家，缺棉被两床"))  # something to poke at
        counter = iter(range(10**9))

        @settings(max_examples=examples, deadline=None, database=None,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
        @given(_INCOMING)
        def one(f: _Fuzz) -> None:
            n = next(counter)
            inc = Incoming(chat=ChatRef(bot.transport.name, f"chat-{sender}", f.group), sender_id=sender,
                           sender_name=f.text[:20], message_id=str(n), kind=f.kind,  # type: ignore[arg-type]
                           text=f.text, callback_data=f.callback, reply_to_message_id=f.reply_to,
                           attachments=f.attachments, event="click" if f.kind == "event" else None,
                           dedup_key=f"fz:{n}")
            runner.run(bot.dispatcher.handle(inc))  # must never raise

        try:
            one()
            runner.run(bot.outbox.drain(timeout=30))
            out = runner.run(bot.send(sender, "帮助"))
            assert out and ("我能做这些" in out[-1].text or "邀请码" in out[-1].text)

            async def failed() -> list[tuple[str, str]]:
                async with sm() as s:
                    q = select(InboxMessage.text, InboxMessage.error_ref).where(InboxMessage.state == "failed")
                    return [(t, r) for t, r in (await s.execute(q)).all()]

            assert runner.run(failed()) == []  # no handler crashed on any input
        finally:
            runner.run(eng.dispose())


def test_fuzz_registered_user(sqlite_url: str) -> None:
    _run_fuzz(sqlite_url, "u1", 150)


def test_fuzz_stranger(sqlite_url: str) -> None:
    _run_fuzz(sqlite_url, "stranger", 60)


@pytest.mark.pg
async def test_nul_and_odd_text_on_postgresql(pg_url: str) -> None:
    """PostgreSQL refuses NUL in text and in JSONB. A message with one must not become a poison update
    that fails forever (and, in polling mode, blocks every update behind it)."""
    eng = make_engine(pg_url)
    try:
        bot = await make_bot(make_sessionmaker(eng))
        await bot.bind("u1", "李明")
        for i, t in enumerate(["a\x00b", "\x00", "今天去大坝村张桂英家\x00缺米", "\ud7ff\ufffe\uffff", "\u202e" + SQL,
                              "lone \ud800 surrogate"]):
            inc = Incoming(chat=ChatRef(bot.transport.name, "chat-u1"), sender_id="u1", message_id=f"n{i}",
                           text=t, raw={"message": {"text": t}})
            await bot.dispatcher.handle(inc)
        out = await bot.send("u1", "帮助")
        assert "我能做这些" in out[-1].text
        async with bot.sm() as s:
            n = (await s.execute(select(func.count()).select_from(InboxMessage))).scalar_one()
            assert n == 7
    finally:
        await eng.dispose()


# ------------------------------------------------------------------------------- direct, both DBs


async def test_sql_looking_text_is_stored_as_data(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    bot = await make_bot(sessionmaker)
    await bot.bind("u1", "李明")
    await bot.send("u1", SQL)
    await bot.send("u1", f"今天去大坝村张桂英家，缺{SQL}")
    code = await bot.invite("赵芳")
    inc = Incoming(chat=ChatRef(bot.transport.name, "chat-x"), sender_id="x", message_id="1",
                   sender_name=SQL, text=f"/start {code}")
    await bot.dispatcher.handle(inc)
    async with bot.sm() as s:
        texts = (await s.execute(select(InboxMessage.text))).scalars().all()
        assert SQL in texts
        assert (await s.execute(select(func.count()).select_from(Visit))).scalar_one() >= 0  # table still there
        ident = (await s.execute(select(ChatIdentity).where(ChatIdentity.external_id == "x"))).scalar_one()
        assert ident.display_name == SQL


async def test_oversized_text_and_file_are_refused_but_kept(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    bot = await make_bot(sessionmaker)
    await bot.bind("u1", "李明")
    await bot.send("u1", "今天去大坝村张桂英家，缺棉被两床")
    out = await bot.send("u1", "缺" * 100_000, message_id="big")
    assert "消息太长" in out[0].text and "原文已保存" in out[0].text
    out = await bot.send("u1", message_id="file", attachments=(
        Attachment(kind="document", file_id="F", file_name="大文件.zip", size=bot.dispatcher.prefs.max_file_bytes + 1),))
    assert "文件太大" in out[0].text
    async with bot.sm() as s:
        big = (await s.execute(select(InboxMessage).where(InboxMessage.message_key == "big"))).scalar_one()
        assert len(big.text) == 100_000 and big.state == "too_long"
        f = (await s.execute(select(InboxMessage).where(InboxMessage.message_key == "file"))).scalar_one()
        assert f.raw["attachments"][0]["file_name"] == "大文件.zip"


# ------------------------------------------------------------------ the real Telegram transport


@dataclass
class TG:
    api: FakeBotAPI
    transport: AiogramTransport
    dispatcher: Dispatcher
    outbox: Outbox
    sm: async_sessionmaker[AsyncSession]

    def replies(self, chat_id: int = USER) -> list[str]:
        return [m.get("text") or m.get("caption") or "" for m in self.api.messages_to(chat_id)]

    async def say(self, text: str, *, chat_id: int = USER, timeout: float = 8.0) -> str:
        n = len(self.replies(chat_id))
        self.api.push_update(self.api.make_text_update(chat_id, USER, text))
        await self.api.wait_for(lambda: len(self.replies(chat_id)) > n, timeout)
        return self.replies(chat_id)[n]


async def _start_tg(sm: async_sessionmaker[AsyncSession], api: FakeBotAPI, *, webhook: bool = False,
                    max_file_bytes: int = 20_000_000) -> TG:
    world = await seed_world(sm)
    async with sm() as s, s.begin():
        s.add(ChatIdentity(person_id=world.people["李明"].id, channel="telegram", external_id=str(USER),
                           chat_id=str(USER), display_name="李明"))
    kw: dict[str, Any] = {"api_base": api.base_url, "poll_timeout": 1, "max_file_size": max_file_bytes}
    if webhook:
        port = free_port()
        kw.update(webhook_url=f"http://127.0.0.1:{port}/telegram/webhook", webhook_secret="s3cret", listen_port=port)
    transport = AiogramTransport(TOKEN, **kw)
    outbox = Outbox(sm, {"telegram": transport}, poll_interval=0.05)
    dispatcher = Dispatcher(sm, Prefs(tz=TZ, max_file_bytes=max_file_bytes), user_messages_per_minute=1000,
                            on_outbox=outbox.notify)
    outbox.start()
    await transport.start(dispatcher.handle)
    return TG(api, transport, dispatcher, outbox, sm)


@pytest.fixture
async def tg(sqlite_sm: async_sessionmaker[AsyncSession]) -> AsyncIterator[TG]:
    async with FakeBotAPI(token=TOKEN) as api:
        t = await _start_tg(sqlite_sm, api, max_file_bytes=1000)
        yield t
        await t.transport.stop()
        await t.outbox.stop()


def _garbage_updates(api: FakeBotAPI) -> list[dict[str, Any]]:
    chat = {"id": USER, "type": "private", "first_name": "李"}
    user = {"id": USER, "is_bot": False, "first_name": "李"}
    return [
        {},
        {"foo": "bar"},
        {"message": None},
        {"message": {}},
        {"message": {"message_id": "x", "chat": chat, "date": 0, "text": "坏"}},
        {"message": {"message_id": 1, "date": 0, "text": "无 chat"}},
        {"message": {"message_id": 2, "chat": {"id": USER}, "date": 0, "text": "chat 无类型"}},
        {"message": {"message_id": 3, "chat": chat, "date": 0, "text": 12345}},
        {"message": {"message_id": 4, "chat": chat, "date": 0, "from": user, "text": None,
                     "entities": [{"type": "bot_command", "offset": 99, "length": 5}]}},
        {"message": {"message_id": 5, "chat": chat, "date": "yesterday", "from": user, "text": "x"}},
        {"message": {"message_id": 6, "chat": chat, "date": 0, "from": user, "photo": "not a list"}},
        {"message": {"message_id": 7, "chat": chat, "date": 0, "from": user, "photo": []}},
        {"message": {"message_id": 8, "chat": chat, "date": 0, "from": user,
                     "location": {"latitude": "north", "longitude": 1}}},
        {"message": {"message_id": 9, "chat": chat, "date": 0, "from": user, "text": "x" * 5000,
                     "reply_to_message": {"message_id": -1, "chat": chat, "date": 0}}},
        {"edited_message": {"message_id": 10, "chat": chat, "date": 0, "from": user, "text": "改"}},
        {"callback_query": {"id": "1", "from": user, "chat_instance": "1", "data": "v:1:undo"}},
        {"callback_query": {"id": "2", "from": user, "chat_instance": "1", "data": "x" * 500,
                            "message": {"message_id": 11, "chat": chat, "date": 0}}},
        {"callback_query": {"id": "3", "from": user, "chat_instance": "1",
                            "message": {"message_id": 12, "chat": chat, "date": 0}}},
        {"inline_query": {"id": "4", "from": user, "query": "x", "offset": ""}},
        {"my_chat_member": {"chat": chat, "from": user, "date": 0}},
        {"chat_join_request": {"chat": chat, "from": user, "user_chat_id": USER, "date": 0}},
        {"poll": {"id": "p", "question": "?", "options": [], "total_voter_count": 0, "is_closed": False,
                  "is_anonymous": True, "type": "regular", "allows_multiple_answers": False}},
        {"some_future_update_type": {"x": [1, 2, {"y": None}]}},
        {"message": {"message_id": 13, "chat": chat, "date": 0, "from": user, "text": "\u0000\ud7ff" * 10}},
        api.make_channel_post_update(-100999, "频道里的帖子"),
        {"message": {"message_id": 14, "chat": {"id": -100999, "type": "channel", "title": "c"}, "date": 0,
                     "text": "频道 message"}},
        {"message": {"message_id": 15, "chat": {"id": -1001, "type": "supergroup", "title": "群"}, "from": user,
                     "date": 0, "text": "群里的话"}},
    ]


async def test_garbage_updates_in_polling_mode(tg: TG) -> None:
    for u in _garbage_updates(tg.api):
        tg.api.push_update(u)
    tg.api.push_update(tg.api.make_text_update(USER, USER, "帮助"))
    await tg.api.wait_for(lambda: any("我能做这些" in r for r in tg.replies()), 15)
    await tg.api.wait_for(lambda: not tg.api.pending_updates, 5)
    async with tg.sm() as s:
        rows = (await s.execute(select(InboxMessage.chat_id, InboxMessage.state))).all()
    # Channel posts never become inbox rows; the group message is stored and ignored.
    assert not any(c == "-100999" for c, _ in rows)
    assert ("-1001", "ignored") in rows
    assert not any(st_ == "failed" for _, st_ in rows)


async def test_garbage_to_the_webhook(sqlite_sm: async_sessionmaker[AsyncSession]) -> None:
    async with FakeBotAPI(token=TOKEN) as api:
        t = await _start_tg(sqlite_sm, api, webhook=True)
        try:
            for body in (b"", b"\x00\xff", b"{", b"null", b"[]", b"123", b'"x"', "{\"a\": \"\ud800\"}".encode("utf-8", "surrogatepass"),
                         b'{"update_id": 1e309}', b'{"update_id": "1"}', os.urandom(256), b"{" * 10_000):
                status = await api.deliver_webhook(body)
                assert status in (200, 400), (body[:20], status)
            for u in _garbage_updates(api):
                assert await api.deliver_webhook(u) == 200, u
            # Valid JSON whose text is a lone surrogate escape: decodes to a str no database can store.
            lone = (b'{"update_id": 777, "message": {"message_id": 77, "date": 0, "text": "\\ud800\\u0000",'
                    b' "chat": {"id": 4242, "type": "private", "first_name": "x"},'
                    b' "from": {"id": 4242, "is_bot": false, "first_name": "x"}}}')
            assert await api.deliver_webhook(lone) == 200
            assert await api.deliver_webhook(api.make_text_update(USER, USER, "帮助")) == 200
            await api.wait_for(lambda: any("我能做这些" in (m.get("text") or "") for m in api.messages_to(USER)), 8)
            # A wrong secret is refused before anything is parsed.
            assert await api.deliver_webhook(api.make_text_update(USER, USER, "帮助"), secret="nope") == 401
        finally:
            await t.transport.stop()
            await t.outbox.stop()


async def test_html_and_markdown_arrive_literally(tg: TG) -> None:
    async with tg.sm() as s, s.begin():
        li = (await s.execute(select(Person).where(Person.name == "李明"))).scalar_one()
        village = (await s.execute(text("select id from org_unit where name = '大坝村'"))).scalar_one()
        h = Household(natural_key="x||<b>王</b>", village_id=village, unit_id=village, head_name="<b>王</b>&amp;",
                      htype="脱贫户")
        s.add(h)
        await s.flush()
        s.add(Pairing(person_id=li.id, household_id=h.id))
    reply = await tg.say("我的农户")
    assert "<b>王</b>&amp;" in reply  # the fake parsed HTML: the displayed text is the raw name
    for evil in ("<script>alert(1)</script>", "*粗体* _斜体_ [链接](http://evil.example) `code`", "a < b && c > d"):
        reply = await tg.say(evil)
        assert evil[:15] in reply, reply
    sent = [c for c in tg.api.calls("sendMessage") if c.ok]
    assert all(not (m.get("entities")) for m in tg.api.messages_to(USER))  # no markup took effect
    assert sent and all(c.params.get("parse_mode") in ("HTML", None) for c in sent)


async def test_oversized_file_from_telegram_is_refused(tg: TG) -> None:
    await tg.say("今天去大坝村张桂英家，缺棉被两床")
    n = len(tg.replies())
    tg.api.push_update(tg.api.make_document_update(USER, USER, b"x" * 5000, file_name="大.pdf"))
    await tg.api.wait_for(lambda: len(tg.replies()) > n, 8)
    assert "文件太大" in tg.replies()[n]
    async with tg.sm() as s:
        row = (await s.execute(select(InboxMessage).order_by(InboxMessage.id.desc()))).scalars().first()
        assert row is not None and row.raw["message"]["document"]["file_size"] == 5000


# ------------------------------------------------------------------------------------------- WeCom

WECOM_TOKEN = "bangfuCallbackTok3n"
WECOM_AES = base64.b64encode(hashlib.sha256(b"bangfu test key").digest()).decode()[:43]


async def test_garbage_wecom_callbacks(sqlite_sm: async_sessionmaker[AsyncSession]) -> None:
    world = await seed_world(sqlite_sm)
    async with sqlite_sm() as s, s.begin():
        s.add(ChatIdentity(person_id=world.people["李明"].id, channel="wecom", external_id="LiMing",
                           chat_id="LiMing", display_name="李明"))
    async with FakeWeComAPI() as fake:
        t = WeComTransport(fake.corp_id, str(fake.agent_id), fake.secret, WECOM_TOKEN, WECOM_AES,
                           api_base=fake.base_url, listen_port=0)
        outbox = Outbox(sqlite_sm, {"wecom": t}, poll_interval=0.05)
        dispatcher = Dispatcher(sqlite_sm, Prefs(tz=TZ), inline_buttons={"wecom": False},
                                user_messages_per_minute=1000, on_outbox=outbox.notify)
        outbox.start()
        await t.start(dispatcher.handle)
        try:
            url = t.callback_url
            async with aiohttp.ClientSession() as http:
                for params, body in [
                    ({}, b""),
                    ({"msg_signature": "x", "timestamp": "1", "nonce": "1"}, b"garbage"),
                    ({"msg_signature": "x", "timestamp": "1", "nonce": "1"}, b"<xml><Encrypt>!!!</Encrypt></xml>"),
                    ({"msg_signature": "x", "timestamp": "1", "nonce": "1"}, os.urandom(300)),
                    ({"msg_signature": "x", "timestamp": "1", "nonce": "1"}, b"<xml>" * 5000),
                ]:
                    async with http.post(url, params=params, data=body) as r:
                        assert r.status in (400, 403, 413), r.status
                # Correctly signed envelopes around garbage.
                for enc in ("A" * 64, base64.b64encode(os.urandom(64)).decode(), "====", ""):
                    ts, nonce = "1700000000", "42"
                    sig = wecom_sign(WECOM_TOKEN, ts, nonce, enc)
                    body = f"<xml><Encrypt><![CDATA[{enc}]]></Encrypt></xml>".encode()
                    async with http.post(url, params={"msg_signature": sig, "timestamp": ts, "nonce": nonce},
                                         data=body) as r:
                        assert r.status in (400, 403), r.status
                async with http.get(url, params={"msg_signature": "x", "timestamp": "1", "nonce": "1",
                                                 "echostr": "zz"}) as r:
                    assert r.status in (400, 403)
            # Correctly encrypted and signed, but the inner XML is hostile or meaningless.
            for inner in ("not xml", "<xml></xml>", "<xml><MsgType>text</MsgType></xml>",
                          "<xml><FromUserName>LiMing</FromUserName><MsgType>???</MsgType></xml>",
                          "<xml><FromUserName>LiMing</FromUserName><MsgType>location</MsgType>"
                          "<Location_X>nan</Location_X><Location_Y>inf</Location_Y><MsgId>9</MsgId></xml>",
                          "<xml><FromUserName>LiMing</FromUserName><MsgType>event</MsgType><Event>x</Event></xml>",
                          "<xml><FromUserName>LiMing</FromUserName><MsgType>file</MsgType><FileSize>-1</FileSize>"
                          "<MsgId>10</MsgId></xml>",
                          f"<xml><FromUserName>LiMing</FromUserName><MsgType>text</MsgType><Content><![CDATA[{SQL}<b>x</b>]]>"
                          "</Content><MsgId>11</MsgId></xml>"):
                res = await post_callback(url, WECOM_TOKEN, WECOM_AES, fake.corp_id, inner)
                assert res.status in (200, 400), (inner, res.status)
            _ = wecom_encrypt  # (used by post_callback)
            res = await post_callback(url, WECOM_TOKEN, WECOM_AES, fake.corp_id,
                                      build_text_xml(fake.corp_id, "LiMing", "帮助", 12, fake.agent_id))
            assert res.status == 200
            async with asyncio.timeout(8):
                while not any("我能做这些" in (m.get("text") or {}).get("content", "") for m in fake.sent):  # noqa: ASYNC110
                    await asyncio.sleep(0.05)
            async with sqlite_sm() as s:
                states = (await s.execute(select(InboxMessage.state))).scalars().all()
                assert "failed" not in states
                assert (await s.execute(select(func.count()).select_from(OutboxMessage)
                                        .where(OutboxMessage.status == "failed"))).scalar_one() == 0
        finally:
            await t.stop()
            await outbox.stop()
