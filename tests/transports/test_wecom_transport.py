"""WeComTransport end to end: our callback server driven by a fake WeCom, our sends landing in the fake API."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime

import aiohttp
import pytest
import yarl

from bot.transports.base import OutMessage, PermanentError, RetryAfter, TransientError
from bot.transports.wecom import WeComTransport, pick_choice, render_choices
from handlers.types import Attachment, Button, ChatRef, Document, Incoming
from tests.fakes.wecom_api import (
    FakeWeComAPI,
    build_event_xml,
    build_media_xml,
    build_text_xml,
    get_verify_url,
    post_callback,
)

TOKEN = "bangfuCallbackTok3n"
AES_KEY = base64.b64encode(hashlib.sha256(b"bangfu test key").digest()).decode()[:43]
ROBOT_KEY = "693a91f6-7xxx-4bc4-97a0-0ec2sifa5aaa"
USER = "ZhangSan"

Handler = Callable[[Incoming], Awaitable[None]]


class Recorder:
    def __init__(self) -> None:
        self.items: list[Incoming] = []
        self.behaviour: Handler | None = None

    async def __call__(self, incoming: Incoming) -> None:
        self.items.append(incoming)
        if self.behaviour is not None:
            await self.behaviour(incoming)


@pytest.fixture
async def fake() -> AsyncIterator[FakeWeComAPI]:
    async with FakeWeComAPI(robot_keys=(ROBOT_KEY,)) as f:
        yield f


MakeTransport = Callable[..., Awaitable[tuple[WeComTransport, Recorder]]]


@pytest.fixture
async def make_transport(fake: FakeWeComAPI) -> AsyncIterator[MakeTransport]:
    started: list[WeComTransport] = []

    async def make(**kw: object) -> tuple[WeComTransport, Recorder]:
        opts: dict[str, object] = {
            "api_base": fake.base_url,
            "listen_port": 0,
            "robots": {"village": ROBOT_KEY},
            **kw,
        }
        t = WeComTransport(fake.corp_id, str(fake.agent_id), fake.secret, TOKEN, AES_KEY, **opts)  # type: ignore[arg-type]
        rec = Recorder()
        await t.start(rec)
        started.append(t)
        return t, rec

    yield make
    for t in started:
        await t.stop()


async def post(t: WeComTransport, fake: FakeWeComAPI, xml: str, **kw: object):  # type: ignore[no-untyped-def]
    corp = kw.pop("corp_id", fake.corp_id)
    return await post_callback(t.callback_url, TOKEN, AES_KEY, str(corp), xml, **kw)  # type: ignore[arg-type]


def text_xml(
    fake: FakeWeComAPI, content: str = "走访王德明家", msg_id: str = "7001", ts: int = 1_700_000_000
) -> str:
    return build_text_xml(fake.corp_id, USER, content, msg_id, fake.agent_id, create_time=ts)


# -- inbound ---------------------------------------------------------------------------------------


async def test_url_verification(make_transport: MakeTransport, fake: FakeWeComAPI) -> None:
    t, rec = await make_transport()
    ok = await get_verify_url(t.callback_url, TOKEN, AES_KEY, fake.corp_id, "8172635401928374650")
    assert (ok.status, ok.body) == (200, "8172635401928374650")
    bad = await get_verify_url(t.callback_url, TOKEN, AES_KEY, fake.corp_id, "1", bad_signature=True)
    assert bad.status == 403
    other_corp = await get_verify_url(t.callback_url, TOKEN, AES_KEY, "wwSomeoneElse", "1")
    assert other_corp.status in (400, 403)
    assert rec.items == []


async def test_url_verification_with_tencent_sample_query() -> None:
    """The GET exactly as Tencent's Sample.py shows it, URL-encoded echostr included (sample set B)."""
    t = WeComTransport(
        "wx5823bf96d3bd56c7", 218, "s", "QDG6eK", "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C", listen_port=0
    )
    await t.start(Recorder())
    try:
        query = (
            "msg_signature=5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3&timestamp=1409659589&nonce=263014780"
            "&echostr=P9nAzCzyDtyTWESHep1vC5X9xho%2FqYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp%2B4RPcs8TgAE7OaBO%2BFZXvnaqQ%3D%3D"
        )
        async with (
            aiohttp.ClientSession() as s,
            s.get(yarl.URL(f"{t.callback_url}?{query}", encoded=True)) as r,
        ):
            assert (r.status, await r.text()) == (200, "1616140317555161061")
    finally:
        await t.stop()


async def test_text_callback_delivers_incoming(make_transport: MakeTransport, fake: FakeWeComAPI) -> None:
    t, rec = await make_transport()
    res = await post(t, fake, text_xml(fake))
    assert res.status == 200 and res.body in ("", "success")
    assert res.elapsed < 5
    [inc] = rec.items
    assert inc.chat == ChatRef("wecom", USER, is_group=False)
    assert inc.sender_id == USER and inc.message_id == "7001" and inc.kind == "message"
    assert inc.text == "走访王德明家"
    assert inc.sent_at == datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)
    assert inc.raw is not None and inc.raw["AgentID"] == str(fake.agent_id) and inc.raw["MsgType"] == "text"


async def test_callback_does_not_reply_in_body(make_transport: MakeTransport, fake: FakeWeComAPI) -> None:
    t, _ = await make_transport()
    res = await post(t, fake, text_xml(fake, "帮助"))
    assert res.status == 200 and "<xml" not in res.body and fake.sent == []


@pytest.mark.parametrize(
    ("tamper", "corp_id", "statuses"),
    [
        ("signature", None, {403}),
        ("truncate", None, {400}),
        (None, "wwOtherCorp000001", {400, 403}),
        ("outer_xml", None, {400}),
        (lambda enc: enc[:-8] + "A" * 8, None, {400, 403}),  # garbage tail, correctly signed
    ],
    ids=["bad-signature", "truncated", "wrong-corp", "malformed-envelope", "corrupt-ciphertext"],
)
async def test_rejected_callbacks_never_reach_on_update(
    make_transport: MakeTransport, fake: FakeWeComAPI, tamper: object, corp_id: str | None, statuses: set[int]
) -> None:
    t, rec = await make_transport()
    kw: dict[str, object] = {"tamper": tamper}
    if corp_id:
        kw["corp_id"] = corp_id
    res = await post(t, fake, text_xml(fake), **kw)
    assert res.status in statuses
    assert rec.items == []


async def test_hostile_inner_xml_and_oversized_body(
    make_transport: MakeTransport, fake: FakeWeComAPI
) -> None:
    t, rec = await make_transport(max_body=4096)
    bomb = '<!DOCTYPE x [<!ENTITY a "aaaaaaaa">]><xml><FromUserName>&a;</FromUserName><MsgType>text</MsgType></xml>'
    assert (await post(t, fake, bomb)).status == 400
    assert (await post(t, fake, text_xml(fake, "长" * 3000))).status == 413
    no_sender = "<xml><MsgType>text</MsgType><Content>x</Content></xml>"
    assert (await post(t, fake, no_sender)).status == 400
    assert rec.items == []
    assert (await post(t, fake, text_xml(fake, "短"))).status == 200  # the limit is not off by a mile


async def test_replayed_msgid_reaches_on_update_once(
    make_transport: MakeTransport, fake: FakeWeComAPI
) -> None:
    t, rec = await make_transport()
    xml = text_xml(fake, msg_id="8001")
    first = await post(t, fake, xml)
    again = await post(t, fake, xml, nonce="99", timestamp="1700000999")  # WeCom's retry signs afresh
    assert (first.status, again.status) == (200, 200)
    assert [i.message_id for i in rec.items] == ["8001"]
    await post(t, fake, text_xml(fake, msg_id="8002"))
    assert [i.message_id for i in rec.items] == ["8001", "8002"]


async def test_on_update_failure_is_500_and_the_retry_is_delivered(
    make_transport: MakeTransport, fake: FakeWeComAPI
) -> None:
    t, rec = await make_transport()
    calls = 0

    async def flaky(_: Incoming) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("database is locked")

    rec.behaviour = flaky
    xml = text_xml(fake, msg_id="9001")
    assert (await post(t, fake, xml)).status == 500
    assert (await post(t, fake, xml)).status == 200
    assert (await post(t, fake, xml)).status == 200
    assert calls == 2


async def test_on_update_timeout_is_500_and_the_retry_joins_the_running_handler(
    make_transport: MakeTransport, fake: FakeWeComAPI
) -> None:
    t, rec = await make_transport(handler_timeout=0.5)
    release = asyncio.Event()

    async def blocked(_: Incoming) -> None:
        await release.wait()

    rec.behaviour = blocked
    xml = text_xml(fake, msg_id="9101")
    first = await post(t, fake, xml)
    assert first.status == 500  # answered at the timeout, the handler still running
    retry = asyncio.ensure_future(post(t, fake, xml))  # WeCom's retry while the first run is not done
    await asyncio.sleep(0.1)
    release.set()
    assert (await retry).status == 200
    assert len(rec.items) == 1


async def test_events_and_media_mapping(make_transport: MakeTransport, fake: FakeWeComAPI) -> None:
    t, rec = await make_transport()
    corp, agent = fake.corp_id, fake.agent_id
    xmls = [
        build_event_xml(corp, USER, "enter_agent", agent, create_time=1_700_000_100),
        build_event_xml(corp, USER, "click", agent, event_key="menu:visits", create_time=1_700_000_200),
        build_media_xml(corp, USER, "image", 11, agent, PicUrl="http://p/1.jpg", MediaId="MID_IMG"),
        build_media_xml(
            corp, USER, "voice", 12, agent, MediaId="MID_V", Format="amr", Recognition="明天去大坝村"
        ),
        build_media_xml(
            corp,
            USER,
            "location",
            13,
            agent,
            Location_X="26.58",
            Location_Y="106.71",
            Scale="15",
            Label="大坝村村委会",
        ),
    ]
    for x in xmls:
        assert (await post(t, fake, x)).status == 200
    enter, click, image, voice, loc = rec.items
    assert (enter.kind, enter.event, enter.callback_data) == ("event", "enter_agent", None)
    assert enter.message_id == f"ev:{USER}:1700000100:enter_agent:"
    assert (click.kind, click.event, click.callback_data) == ("event", "click", "menu:visits")
    assert click.message_id == f"ev:{USER}:1700000200:click:menu:visits"
    assert image.attachments == (Attachment("photo", file_id="MID_IMG"),) and image.message_id == "11"
    assert image.raw is not None and image.raw["PicUrl"] == "http://p/1.jpg"
    assert voice.text == "明天去大坝村" and voice.attachments[0].kind == "voice"
    assert voice.attachments[0].file_id == "MID_V" and voice.attachments[0].mime == "audio/amr"
    assert loc.attachments[0].kind == "location"
    assert (loc.attachments[0].latitude, loc.attachments[0].longitude) == (26.58, 106.71)
    # The same event retried by WeCom is a replay too.
    assert (await post(t, fake, xmls[1])).status == 200
    assert len(rec.items) == 5


# -- outbound --------------------------------------------------------------------------------------


def out(text: str, chat_id: str = USER, **kw: object) -> OutMessage:
    return OutMessage(chat=ChatRef("wecom", chat_id), text=text, **kw)  # type: ignore[arg-type]


async def test_send_text(make_transport: MakeTransport, fake: FakeWeComAPI) -> None:
    t, _ = await make_transport()
    sent = await t.send(out("王德明家已登记走访"))
    assert fake.sent == [
        {
            "touser": USER,
            "msgtype": "text",
            "agentid": fake.agent_id,
            "text": {"content": "王德明家已登记走访"},
        }
    ]
    assert sent.message_id == "msgid-1"
    assert fake.gettoken_calls == 1
    await t.send(out("第二条"))
    assert fake.gettoken_calls == 1  # cached


async def test_long_text_split_by_utf8_bytes(make_transport: MakeTransport, fake: FakeWeComAPI) -> None:
    t, _ = await make_transport()
    text = "".join(f"{i % 10}帮扶走访记录" for i in range(400))  # 7 bytes+ per unit, no line breaks
    await t.send(out(text))
    contents = [m["text"]["content"] for m in fake.sent]
    assert len(contents) > 1
    assert all(len(c.encode()) <= 2048 for c in contents)
    assert "".join(contents) == text


@pytest.mark.parametrize("errcode", [40014, 42001])
async def test_token_rejected_mid_run_is_refreshed_and_retried(
    make_transport: MakeTransport, fake: FakeWeComAPI, errcode: int
) -> None:
    t, _ = await make_transport()
    await t.send(out("一"))
    old = fake.issued_tokens[0]
    fake.expire_tokens(errcode)
    await t.send(out("二"))
    assert [m["text"]["content"] for m in fake.sent] == ["一", "二"]
    assert fake.token_rejections == [(old, errcode)]
    assert fake.gettoken_calls == 2
    assert fake.calls[-1][1] != old


async def test_concurrent_sends_refresh_the_token_once(
    make_transport: MakeTransport, fake: FakeWeComAPI
) -> None:
    t, _ = await make_transport()
    await t.send(out("warm up"))
    fake.expire_tokens(42001)
    await asyncio.gather(*(t.send(out(f"msg {i}", chat_id=f"user{i}")) for i in range(6)))
    assert len(fake.sent) == 7
    assert fake.gettoken_calls == 2


async def test_send_document_uploads_media(make_transport: MakeTransport, fake: FakeWeComAPI) -> None:
    t, _ = await make_transport()
    doc = Document("大坝村走访汇总.xlsx", b"PK\x03\x04fake-xlsx", mime="application/vnd.ms-excel")
    await t.send(out("本月走访汇总见附件", document=doc))
    [up] = fake.uploads
    assert (up.type, up.filename, up.content, up.content_type) == (
        "file",
        "大坝村走访汇总.xlsx",
        b"PK\x03\x04fake-xlsx",
        "application/vnd.ms-excel",
    )
    assert [m["msgtype"] for m in fake.sent] == ["file", "text"]
    assert fake.sent[0]["file"] == {"media_id": up.media_id}
    assert fake.sent[0]["touser"] == USER and fake.sent[0]["agentid"] == fake.agent_id


async def test_send_photo_uploads_image(make_transport: MakeTransport, fake: FakeWeComAPI) -> None:
    t, _ = await make_transport()
    await t.send(out("", photo=Document("chart.png", b"\x89PNG....", mime="image/png")))
    assert [u.type for u in fake.uploads] == ["image"]
    assert [m["msgtype"] for m in fake.sent] == ["image"]


async def test_buttons_rendered_as_numbered_options(
    make_transport: MakeTransport, fake: FakeWeComAPI
) -> None:
    t, _ = await make_transport()
    buttons = (
        (Button("王德明（大坝村，5口）", "h:12"), Button("王德兵（新寨村，3口）", "h:31")),
        (Button("取消", "cancel"),),
    )
    await t.send(out("找到两户姓王的，请选择：", buttons=buttons))
    expected = "找到两户姓王的，请选择：\n\n回复数字选择：\n1. 王德明（大坝村，5口）\n2. 王德兵（新寨村，3口）\n3. 取消"
    assert fake.sent[0]["text"]["content"] == expected
    assert render_choices("找到两户姓王的，请选择：", buttons) == expected
    assert render_choices("无选项", ()) == "无选项"
    assert pick_choice("2", buttons) == Button("王德兵（新寨村，3口）", "h:31")
    assert pick_choice("３", buttons) == Button("取消", "cancel")  # full-width digit from a Chinese IME
    assert pick_choice("第1个", buttons) == Button("王德明（大坝村，5口）", "h:12")
    assert pick_choice("4", buttons) is None and pick_choice("0", buttons) is None
    assert pick_choice("2户", buttons) is None


async def test_edit_is_sent_as_new_message(make_transport: MakeTransport, fake: FakeWeComAPI) -> None:
    t, _ = await make_transport()
    first = await t.send(out("待确认"))
    second = await t.send(out("已确认", edit_message_id=first.message_id))
    assert [m["text"]["content"] for m in fake.sent] == ["待确认", "已确认"]
    assert second.message_id != first.message_id


@pytest.mark.parametrize("errcode", [45009, 45033])
async def test_frequency_limit_errcode_is_retry_after(
    make_transport: MakeTransport, fake: FakeWeComAPI, errcode: int
) -> None:
    t, _ = await make_transport()
    fake.fail_next("/cgi-bin/message/send", errcode=errcode, errmsg="api freq out of limit")
    with pytest.raises(RetryAfter) as ei:
        await t.send(out("稍后"))
    assert 0 < ei.value.seconds <= 60
    await t.send(out("稍后"))
    assert len(fake.sent) == 1


async def test_error_mapping_and_no_secret_in_errors_or_logs(
    make_transport: MakeTransport, fake: FakeWeComAPI, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    t, _ = await make_transport()
    fake.fail_next("/cgi-bin/message/send", http_status=502)
    with pytest.raises(TransientError):
        await t.send(out("a"))
    fake.fail_next("/cgi-bin/message/send", errcode=-1, errmsg="system busy")
    with pytest.raises(TransientError):
        await t.send(out("a"))
    fake.fail_next("/cgi-bin/message/send", errcode=60020, errmsg="not allow to access from your ip")
    with pytest.raises(PermanentError) as perm:
        await t.send(out("a"))
    assert "60020" in str(perm.value) and "not allow to access from your ip" in str(perm.value)
    assert not perm.value.blocked
    fake.fail_next("/cgi-bin/message/send", errcode=81013, errmsg="user & party & tag all invalid")
    with pytest.raises(PermanentError) as gone:
        await t.send(out("a"))
    assert gone.value.blocked
    # Should WeCom quote the token back in errmsg, it is redacted.
    fake.fail_next(
        "/cgi-bin/message/send", errcode=40003, errmsg=f"invalid userid, token {fake.issued_tokens[-1]}"
    )
    with pytest.raises(PermanentError) as quoted:
        await t.send(out("a"))
    assert "40003" in str(quoted.value) and "***" in str(quoted.value)
    fake.expire_tokens(40014)
    fake.fail_next("/cgi-bin/message/send", errcode=40014, times=1, after=0)  # still rejected after refresh
    with pytest.raises(TransientError, match="40014"):
        await t.send(out("a"))

    # Network failure: the message of a connection error must not leak the query string.
    dead = WeComTransport(fake.corp_id, 1, fake.secret, TOKEN, AES_KEY, api_base="http://127.0.0.1:9")
    with pytest.raises(TransientError) as net:
        await dead.send(out("a"))
    await dead.stop()

    texts = [str(perm.value), str(gone.value), str(quoted.value), str(net.value), caplog.text]
    for secret in [fake.secret, *fake.issued_tokens]:
        assert all(secret not in s for s in texts), secret


async def test_per_user_quota_refused_locally(make_transport: MakeTransport, fake: FakeWeComAPI) -> None:
    """WeCom drops app messages past 30/min to a user silently, so the 31st must be refused by us."""
    t, _ = await make_transport()
    for i in range(30):
        await t.send(out(f"第{i}条"))
    with pytest.raises(RetryAfter) as ei:
        await t.send(out("第31条"))
    assert 50 < ei.value.seconds <= 60
    assert len(fake.sent) == 30
    await t.send(out("别人的消息", chat_id="LiSi"))
    assert len(fake.sent) == 31


async def test_retry_after_partial_failure_resumes(make_transport: MakeTransport, fake: FakeWeComAPI) -> None:
    t, _ = await make_transport()
    text = "\n".join(f"第{i}户：" + "走访情况良好" * 20 for i in range(30))
    fake.fail_next("/cgi-bin/message/send", http_status=503, after=1)
    with pytest.raises(TransientError):
        await t.send(out(text))
    assert len(fake.sent) == 1
    await t.send(out(text))
    contents = [m["text"]["content"] for m in fake.sent]
    assert len(contents) == len(set(contents)) >= 3  # no chunk twice
    assert "\n".join(contents) == text


# -- group robots ----------------------------------------------------------------------------------


async def test_robot_text_split_at_2048_bytes(make_transport: MakeTransport, fake: FakeWeComAPI) -> None:
    t, _ = await make_transport()
    text = "\n".join(f"{i}. 大坝村第{i}组本周走访{i * 3}户，慰问困难群众" for i in range(200))
    sent = await t.send(out(text, chat_id="robot:village"))
    assert sent.message_id is None and fake.sent == []
    contents = [p["text"]["content"] for key, p in fake.robot_sent]
    assert {key for key, _ in fake.robot_sent} == {ROBOT_KEY}
    assert len(contents) >= 4 and all(len(c.encode()) <= 2048 for c in contents)
    assert "\n".join(contents) == text


async def test_robot_markdown_split_at_4096_bytes(make_transport: MakeTransport, fake: FakeWeComAPI) -> None:
    t, _ = await make_transport(robot_msgtype="markdown")
    text = "\n".join(f"{i}. 大坝村第{i}组本周走访{i * 3}户，慰问困难群众" for i in range(200))
    await t.send(out(text, chat_id="robot:village"))
    contents = [p["markdown"]["content"] for _, p in fake.robot_sent]
    assert all(p["msgtype"] == "markdown" for _, p in fake.robot_sent)
    assert len(contents) >= 2 and all(len(c.encode()) <= 4096 for c in contents)
    assert any(len(c.encode()) > 2048 for c in contents)  # uses the room markdown has
    assert "\n".join(contents) == text


async def test_robot_rate_limit_is_retry_after_not_an_error_from_wecom(
    make_transport: MakeTransport, fake: FakeWeComAPI
) -> None:
    t, _ = await make_transport()
    for i in range(19):
        await t.send(out(f"通知{i}", chat_id="robot:village"))
    two_parts = "甲" * 600 + "\n" + "乙" * 600  # 2 chunks of text, only 1 slot left
    with pytest.raises(RetryAfter) as ei:
        await t.send(out(two_parts, chat_id="robot:village"))
    assert 0 < ei.value.seconds <= 60
    assert len(fake.robot_sent) == 19  # all-or-nothing: no half bulletin
    await t.send(out("通知19", chat_id="robot:village"))
    with pytest.raises(RetryAfter):
        await t.send(out("通知20", chat_id="robot:village"))
    assert len(fake.robot_sent) == 20


async def test_unknown_robot_and_robot_files_are_permanent(make_transport: MakeTransport) -> None:
    t, _ = await make_transport()
    with pytest.raises(PermanentError):
        await t.send(out("x", chat_id="robot:nope"))
    with pytest.raises(PermanentError):
        await t.send(out("x", chat_id="robot:village", document=Document("a.txt", b"a")))


def test_capabilities() -> None:
    caps = WeComTransport.capabilities
    assert WeComTransport.name == caps.name == "wecom"
    assert caps.max_text_bytes == 2048
    assert (caps.inline_buttons, caps.reply_keyboard, caps.edit_messages, caps.files) == (
        False,
        False,
        False,
        True,
    )
    assert (caps.per_user_per_minute, caps.group_per_minute) == (30, 20)
