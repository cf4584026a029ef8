"""Updates from the fake Bot API reach on_update as the right Incoming, through both frameworks."""

from __future__ import annotations

import json
from datetime import datetime

from bot.transports.telegram_common import TelegramTransportBase
from tests.fakes.botapi import FakeBotAPI
from tests.transports.telegram.conftest import StartTransport


async def test_text_message_becomes_incoming(api: FakeBotAPI, start_transport: StartTransport) -> None:
    _, inbox = await start_transport()
    update = api.make_text_update(-1001234, 77, "今天走访了王大爷家", first_name="李", last_name="四")
    original = update["message"]
    uid = api.push_update(update)

    [got] = await inbox.wait(1)

    assert got.channel == "telegram"
    assert got.chat.chat_id == "-1001234" and got.chat.is_group
    assert got.sender_id == "77" and got.sender_name == "李 四"
    assert got.message_id == str(original["message_id"])
    assert got.kind == "message" and got.text == "今天走访了王大爷家"
    assert got.reply_to_message_id is None and got.attachments == ()
    assert isinstance(got.sent_at, datetime) and int(got.sent_at.timestamp()) == original["date"]
    assert got.raw is not None and got.raw["update_id"] == uid
    assert json.loads(json.dumps(got.raw)) == got.raw  # JSON-able as promised
    assert got.raw["message"]["text"] == "今天走访了王大爷家"


async def test_reply_private_chat_and_start_code(api: FakeBotAPI, start_transport: StartTransport) -> None:
    _, inbox = await start_transport()
    first = api.make_text_update(42, 42, "/start INV-9F3K")
    api.push_update(first)
    api.push_update(api.make_text_update(42, 42, "补充一下", reply_to_message_id=first["message"]["message_id"]))

    start, reply = await inbox.wait(2)

    assert start.text == "/start INV-9F3K" and not start.chat.is_group
    assert reply.reply_to_message_id == start.message_id
    assert reply.message_id != start.message_id


async def test_edited_message(api: FakeBotAPI, start_transport: StartTransport) -> None:
    _, inbox = await start_transport()
    api.push_update(api.make_text_update(42, 42, "走访3户"))
    await inbox.wait(1)
    edit = api.make_edit_update(42, 42, 1, "走访4户", edit_date=1_800_000_123)
    api.push_update(edit)

    _, got = await inbox.wait(2)

    assert got.kind == "edit" and got.text == "走访4户"
    assert got.message_id == "1"
    assert got.dedup_key == "1:e1800000123" and got.inbox_key == "1:e1800000123"


async def test_callback_is_delivered_then_answered(api: FakeBotAPI, start_transport: StartTransport) -> None:
    _, inbox = await start_transport()
    answered_during_on_update: list[int] = []

    async def hook(_incoming: object) -> None:
        answered_during_on_update.append(len(api.calls("answerCallbackQuery")))

    inbox.hook = hook
    update = api.make_callback_update(-100555, 77, "v:12:undo", message_id=31, callback_id="9001")
    api.push_update(update)

    [got] = await inbox.wait(1)
    answers = await api.wait_sent(1, "answerCallbackQuery")

    assert got.kind == "callback" and got.callback_data == "v:12:undo"
    assert got.chat.chat_id == "-100555" and got.chat.is_group
    assert got.reply_to_message_id == "31" and got.sender_id == "77"
    assert got.dedup_key == "cb:9001"
    assert answers[0].params["callback_query_id"] == "9001"
    assert answered_during_on_update == [0]  # answered only after on_update returned


async def test_attachments(api: FakeBotAPI, start_transport: StartTransport) -> None:
    _, inbox = await start_transport()
    api.push_update(api.make_photo_update(42, 42, content=b"\xff\xd8" + b"x" * 400, caption="危房照片"))
    api.push_update(api.make_location_update(42, 42, 26.5, 106.7))
    api.push_update(api.make_voice_update(42, 42))
    api.push_update(api.make_document_update(42, 42, b"PK\x03\x04", file_name="名单.xlsx",
                                             mime="application/vnd.ms-excel"))
    api.push_update(api.make_sticker_update(42, 42))

    photo, location, voice, document, sticker = await inbox.wait(5)

    assert photo.text == "危房照片"
    [p] = photo.attachments
    assert p.kind == "photo" and p.size == 402  # the largest size, not the thumbnail
    assert api.files[p.file_id].content == b"\xff\xd8" + b"x" * 400
    [loc] = location.attachments
    assert (loc.kind, loc.latitude, loc.longitude) == ("location", 26.5, 106.7)
    assert location.text == ""
    assert voice.attachments[0].kind == "voice" and voice.attachments[0].mime == "audio/ogg"
    [doc] = document.attachments
    assert (doc.kind, doc.file_name, doc.mime, doc.size) == ("document", "名单.xlsx", "application/vnd.ms-excel", 4)
    assert sticker.attachments[0].kind == "sticker"


async def test_ignored_updates_are_confirmed(api: FakeBotAPI, start_transport: StartTransport) -> None:
    _, inbox = await start_transport()
    api.push_update(api.make_channel_post_update(-100777, "频道消息"))
    service = {"message": api.make_message(-100888, 5, new_chat_members=[api.user(6)])}
    api.push_update(service)
    api.push_update({"poll_answer": {"poll_id": "1", "user": api.user(5), "option_ids": [0]}})
    api.push_update(api.make_text_update(42, 42, "正常消息"))

    [got] = await inbox.wait(1)
    await api.wait_for(lambda: not api.pending_updates)

    assert got.text == "正常消息"
    assert len(inbox.attempts) == 1


async def test_download_and_size_limit(api: FakeBotAPI, start_transport: StartTransport) -> None:
    transport, _ = await start_transport(max_file_size=1000)
    small = api.add_file(b"a" * 1000, "ok.txt")
    big = api.add_file(b"b" * 1001, "big.txt")

    assert await transport.download(small) == b"a" * 1000
    try:
        await transport.download(big)
    except Exception as exc:
        from bot.transports.telegram_common import FileTooLarge

        assert isinstance(exc, FileTooLarge)
    else:
        raise AssertionError("a file over max_file_size was downloaded")
    assert api.calls("getFile")[-1].params["file_id"] == big


def test_both_transports_share_capabilities() -> None:
    from bot.transports.telegram_aiogram import AiogramTransport
    from bot.transports.telegram_ptb import PTBTransport

    for cls in (AiogramTransport, PTBTransport):
        assert issubclass(cls, TelegramTransportBase)
        caps = cls.capabilities
        assert cls.name == "telegram" and caps.max_text == 4096
        assert caps.inline_buttons and caps.reply_keyboard and caps.edit_messages and caps.files
        assert (caps.global_rate, caps.per_chat_interval, caps.group_per_minute) == (30, 1.0, 20)
