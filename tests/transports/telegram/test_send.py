"""Outgoing messages through both frameworks: markup, escaping, splitting, edits, files, error mapping."""

from __future__ import annotations

import pytest

from bot.transports.base import OutMessage, PermanentError, RetryAfter, TransientError
from handlers.types import Button, ChatRef, Document
from tests.fakes.botapi import FakeBotAPI
from tests.transports.telegram.conftest import StartTransport

PRIVATE = ChatRef("telegram", "42")
GROUP = ChatRef("telegram", "-1009876", is_group=True)


def out(text: str, chat: ChatRef = PRIVATE, **kwargs: object) -> OutMessage:
    return OutMessage(chat=chat, text=text, **kwargs)  # type: ignore[arg-type]


async def test_inline_buttons_reach_the_api(api: FakeBotAPI, start_transport: StartTransport) -> None:
    transport, _ = await start_transport()
    buttons = ((Button("确认", "v:12:ok"), Button("撤销", "v:12:undo")), (Button("详情", "v:12:more"),))

    sent = await transport.send(out("记录已保存", GROUP, buttons=buttons))

    [msg] = api.messages_to(-1009876)
    assert sent.message_id == str(msg["message_id"])
    assert msg["text"] == "记录已保存"
    assert msg["reply_markup"] == {"inline_keyboard": [
        [{"text": "确认", "callback_data": "v:12:ok"}, {"text": "撤销", "callback_data": "v:12:undo"}],
        [{"text": "详情", "callback_data": "v:12:more"}],
    ]}


async def test_reply_keyboard_and_reply_to(api: FakeBotAPI, start_transport: StartTransport) -> None:
    transport, inbox = await start_transport()
    api.push_update(api.make_text_update(42, 42, "菜单"))
    [incoming] = await inbox.wait(1)

    await transport.send(out("请选择", keyboard=(("走访", "培训"), ("统计",)),
                             reply_to_message_id=incoming.message_id))
    await transport.send(out("已收起", keyboard=()))

    first, second = api.calls("sendMessage")
    assert first.params["reply_markup"]["keyboard"] == [[{"text": "走访"}, {"text": "培训"}], [{"text": "统计"}]]
    assert first.params["reply_markup"]["resize_keyboard"] is True
    assert api.messages_to(42)[0]["reply_to_message"]["message_id"] == int(incoming.message_id)
    assert second.params["reply_markup"]["remove_keyboard"] is True


async def test_text_is_escaped_for_html(api: FakeBotAPI, start_transport: StartTransport) -> None:
    transport, _ = await start_transport()
    text = "<b>不是粗体</b> & <script>x</script> a<b 5 > 3 &amp;"

    await transport.send(out(text))

    [call] = api.calls("sendMessage")
    assert call.params["parse_mode"] == "HTML"
    [msg] = api.messages_to(42)
    assert msg["text"] == text  # displayed literally
    assert "entities" not in msg  # and nothing turned bold


async def test_long_text_is_split(api: FakeBotAPI, start_transport: StartTransport) -> None:
    transport, _ = await start_transport()
    lines = [f"第{i:03d}行 " + "村" * 40 for i in range(110)]  # ~5000 characters
    text = "\n".join(lines)
    assert 4096 < len(text) < 8192

    sent = await transport.send(out(text, buttons=((Button("好", "ok"),),)))

    first, second = api.messages_to(42)
    assert len(first["text"]) <= 4096 and len(second["text"]) <= 4096
    assert first["text"] + "\n" + second["text"] == text
    assert "reply_markup" not in first and second["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == "ok"
    assert sent.message_id == str(second["message_id"])


async def test_edit_message(api: FakeBotAPI, start_transport: StartTransport) -> None:
    transport, _ = await start_transport()
    sent = await transport.send(out("待确认", buttons=((Button("确认", "c:1"),),)))
    assert sent.message_id is not None

    edited = await transport.send(out("已确认 <ok>", edit_message_id=sent.message_id,
                                      buttons=((Button("撤销", "u:1"),),)))
    again = await transport.send(out("已确认 <ok>", edit_message_id=sent.message_id,
                                     buttons=((Button("撤销", "u:1"),),)))

    assert edited.message_id == sent.message_id == again.message_id
    [msg] = api.messages_to(42)
    assert msg["text"] == "已确认 <ok>"
    assert msg["reply_markup"]["inline_keyboard"] == [[{"text": "撤销", "callback_data": "u:1"}]]
    calls = api.calls("editMessageText")
    assert [c.ok for c in calls] == [True, False]  # the second was "not modified", still a success
    assert len(api.calls("sendMessage")) == 1


async def test_edit_of_missing_message_is_permanent(start_transport: StartTransport) -> None:
    transport, _ = await start_transport()
    with pytest.raises(PermanentError) as err:
        await transport.send(out("x", edit_message_id="999"))
    assert not err.value.blocked


async def test_document_upload(api: FakeBotAPI, start_transport: StartTransport) -> None:
    transport, _ = await start_transport()
    content = bytes(range(256)) * 40

    sent = await transport.send(out("11月走访汇总 <附件>", GROUP, document=Document("汇总.xlsx", content),
                                    buttons=((Button("重发", "r:1"),),)))

    [call] = api.calls("sendDocument")
    [upload] = call.files.values()
    assert upload.content == content and upload.filename == "汇总.xlsx"
    [msg] = api.messages_to(-1009876)
    assert msg["caption"] == "11月走访汇总 <附件>"
    assert msg["document"]["file_size"] == len(content)
    assert msg["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == "r:1"
    assert sent.message_id == str(msg["message_id"])


async def test_photo_with_long_text_sends_text_separately(api: FakeBotAPI, start_transport: StartTransport) -> None:
    transport, _ = await start_transport()
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 100
    text = "图表说明：" + "数" * 1100

    sent = await transport.send(out(text, photo=Document("chart.png", png, "image/png"),
                                    buttons=((Button("好", "ok"),),)))

    [call] = api.calls("sendPhoto")
    assert next(iter(call.files.values())).content == png
    photo_msg, text_msg = api.messages_to(42)
    assert "photo" in photo_msg and "caption" not in photo_msg and "reply_markup" not in photo_msg
    assert text_msg["text"] == text and text_msg["reply_markup"]["inline_keyboard"][0][0]["text"] == "好"
    assert sent.message_id == str(text_msg["message_id"])


async def test_retry_after(api: FakeBotAPI, start_transport: StartTransport) -> None:
    transport, _ = await start_transport()
    api.fail_next("sendMessage", status=429, retry_after=7)

    with pytest.raises(RetryAfter) as err:
        await transport.send(out("x"))

    assert err.value.seconds == 7
    assert api.count_429 == 1
    assert (await transport.send(out("y"))).message_id is not None  # only the next call failed


@pytest.mark.parametrize("status", [500, 502])
async def test_server_error_is_transient(api: FakeBotAPI, start_transport: StartTransport, status: int) -> None:
    transport, _ = await start_transport()
    api.fail_next("sendMessage", status=status)
    with pytest.raises(TransientError):
        await transport.send(out("x"))


async def test_blocked_is_permanent(api: FakeBotAPI, start_transport: StartTransport) -> None:
    transport, _ = await start_transport()
    api.fail_next("sendMessage", status=403)
    with pytest.raises(PermanentError) as err:
        await transport.send(out("x"))
    assert err.value.blocked


async def test_bad_request_is_permanent_not_blocked(api: FakeBotAPI, start_transport: StartTransport) -> None:
    transport, _ = await start_transport()
    api.fail_next("sendDocument", status=400, description="Bad Request: chat not found")
    with pytest.raises(PermanentError) as err:
        await transport.send(out("x", document=Document("a.txt", b"a")))
    assert not err.value.blocked and not isinstance(err.value, TransientError)


async def test_unreachable_api_is_transient_and_start_survives(start_transport: StartTransport) -> None:
    # Nothing listens on port 9: getMe/deleteWebhook fail at start, which must not raise.
    transport, _ = await start_transport(api_base="http://127.0.0.1:9")
    with pytest.raises(TransientError):
        await transport.send(out("x"))
