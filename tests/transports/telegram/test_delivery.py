"""Delivery semantics: an update is confirmed only once on_update returned, in polling and webhook mode."""

from __future__ import annotations

import asyncio
import socket

from bot.transports.base import OutMessage
from tests.fakes.botapi import FakeBotAPI
from tests.transports.telegram.conftest import StartTransport

SECRET = "s3cret-Token_1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_start_sets_commands_and_polls(api: FakeBotAPI, start_transport: StartTransport) -> None:
    _, inbox = await start_transport(commands=[("start", "开始使用"), ("visit", "记录走访")])
    api.push_update(api.make_text_update(42, 42, "hi"))
    await inbox.wait(1)

    assert api.commands == [{"command": "start", "description": "开始使用"},
                            {"command": "visit", "description": "记录走访"}]
    methods = [c.method for c in api.sent]
    assert methods.index("getMe") < methods.index("deleteWebhook") < methods.index("getUpdates")
    assert api.calls("getUpdates")[0].params.get("timeout") == 1


async def test_set_my_commands_failing_does_not_stop_the_bot(api: FakeBotAPI,
                                                             start_transport: StartTransport) -> None:
    api.fail_next("setMyCommands", status=500)
    transport, inbox = await start_transport(commands=[("start", "开始使用")])
    api.push_update(api.make_text_update(42, 42, "还在吗"))

    [got] = await inbox.wait(1)

    assert got.text == "还在吗"
    assert [c.status for c in api.calls("setMyCommands")] == [500]
    assert (await transport.send(OutMessage(chat=got.chat, text="在"))).message_id is not None


async def test_malformed_update_is_skipped(api: FakeBotAPI, start_transport: StartTransport) -> None:
    _, inbox = await start_transport()
    api.push_update(api.make_text_update(42, 42, "第一条"))
    bad = api.push_update({"message": {"oops": 1}})
    api.push_update(api.make_text_update(42, 42, "第二条"))

    first, second = await inbox.wait(2)
    await api.wait_for(lambda: not api.pending_updates)

    assert (first.text, second.text) == ("第一条", "第二条")
    assert second.raw is not None and second.raw["update_id"] == bad + 1
    assert len(inbox.attempts) == 2
    # The loop goes on polling after the skip.
    api.push_update(api.make_text_update(42, 42, "第三条"))
    assert (await inbox.wait(3))[2].text == "第三条"


async def test_failed_update_is_redelivered_not_skipped(api: FakeBotAPI, start_transport: StartTransport) -> None:
    _, inbox = await start_transport()
    api.push_update(api.make_text_update(42, 42, "之前"))
    await inbox.wait(1)
    inbox.fail_remaining = 2
    first_id = api.push_update(api.make_text_update(42, 42, "重要记录"))
    api.push_update(api.make_text_update(42, 42, "后一条"))

    await inbox.wait(2, attempts=True, timeout=5)
    # While it fails, the update stays unconfirmed on the server.
    assert api.pending_updates[0]["update_id"] == first_id
    done = await inbox.wait(3, timeout=10)

    assert [i.text for i in done] == ["之前", "重要记录", "后一条"]
    assert [i.text for i in inbox.attempts] == ["之前", "重要记录", "重要记录", "重要记录", "后一条"]
    assert {i.raw["update_id"] for i in inbox.attempts[1:4] if i.raw} == {first_id}
    # It was fetched again from the server (offset not advanced past it), not replayed from memory.
    refetches = [c for c in api.calls("getUpdates") if c.params.get("offset") == first_id]
    assert len(refetches) >= 2


async def test_failing_update_blocks_later_ones(api: FakeBotAPI, start_transport: StartTransport) -> None:
    _, inbox = await start_transport()
    inbox.fail_remaining = 1
    api.push_update(api.make_text_update(42, 42, "A"))
    api.push_update(api.make_text_update(42, 42, "B"))

    await inbox.wait(1, attempts=True)
    await asyncio.sleep(0.2)  # inside the 0.5 s backoff

    assert [i.text for i in inbox.attempts] == ["A"]
    assert len(api.pending_updates) == 2
    assert [i.text for i in await inbox.wait(2)] == ["A", "B"]


async def test_stop_lets_the_update_in_hand_finish(api: FakeBotAPI, start_transport: StartTransport) -> None:
    transport, inbox = await start_transport()

    async def slow(_incoming: object) -> None:
        await asyncio.sleep(0.4)

    inbox.hook = slow
    api.push_update(api.make_text_update(42, 42, "慢"))
    await inbox.wait(1, attempts=True)

    await transport.stop()

    assert [i.text for i in inbox.items] == ["慢"]
    assert api.pending_updates == []  # confirmed on the way out


async def test_webhook_mode(api: FakeBotAPI, start_transport: StartTransport) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/telegram/webhook"
    _, inbox = await start_transport(webhook_url=url, webhook_secret=SECRET, listen_port=port)

    assert api.webhook_url == url and api.webhook_secret == SECRET
    status = await api.deliver_webhook(api.make_text_update(42, 42, "经 webhook"))
    [got] = await inbox.wait(1)

    assert status == 200 and got.text == "经 webhook"
    assert api.calls("getUpdates") == [] and api.calls("deleteWebhook") == []


async def test_webhook_rejects_bad_secret_and_bad_json(api: FakeBotAPI, start_transport: StartTransport) -> None:
    port = free_port()
    _, inbox = await start_transport(webhook_url=f"http://127.0.0.1:{port}/telegram/webhook",
                                     webhook_secret=SECRET, listen_port=port)
    update = api.make_text_update(42, 42, "伪造")

    assert await api.deliver_webhook(update, secret="wrong") == 401
    assert await api.deliver_webhook(update, secret=None) == 401
    assert await api.deliver_webhook(update, secret=SECRET + "x") == 401
    assert await api.deliver_webhook(b"{not json") == 400
    assert await api.deliver_webhook({"update_id": 99, "message": {"oops": 1}}) == 200  # logged, skipped
    assert inbox.attempts == []


async def test_webhook_failure_answers_500_then_redelivery_works(api: FakeBotAPI,
                                                                 start_transport: StartTransport) -> None:
    port = free_port()
    _, inbox = await start_transport(webhook_url=f"http://127.0.0.1:{port}/telegram/webhook",
                                     webhook_secret=SECRET, listen_port=port)
    inbox.fail_remaining = 1
    update = api.make_callback_update(42, 42, "v:1:ok", message_id=3, callback_id="777")
    update["update_id"] = 500

    assert await api.deliver_webhook(update) == 500
    assert api.calls("answerCallbackQuery") == []  # not answered while unprocessed
    assert await api.deliver_webhook(update) == 200
    assert [i.dedup_key for i in inbox.items] == ["cb:777"]
    await api.wait_sent(1, "answerCallbackQuery")


async def test_webhook_without_configured_secret_gets_one(api: FakeBotAPI, start_transport: StartTransport) -> None:
    port = free_port()
    _, inbox = await start_transport(webhook_url=f"http://127.0.0.1:{port}/telegram/webhook", listen_port=port)

    assert api.webhook_secret and len(api.webhook_secret) >= 32
    assert await api.deliver_webhook(api.make_text_update(42, 42, "x"), secret=None) == 401
    assert await api.deliver_webhook(api.make_text_update(42, 42, "y")) == 200
    assert [i.text for i in inbox.items] == ["y"]
