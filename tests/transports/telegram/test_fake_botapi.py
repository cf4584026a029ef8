"""The fake Bot API itself: wire formats, long polling, webhooks, failure injection and flood limits."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from tests.fakes.botapi import FakeBotAPI, render_html
from tests.transports.telegram.conftest import TOKEN


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def call(http: aiohttp.ClientSession, api: FakeBotAPI, method: str, *, token: str = TOKEN,
               json_body: dict[str, object] | None = None, form: dict[str, str] | None = None,
               ) -> tuple[int, dict[str, object]]:
    url = f"{api.base_url}/bot{token}/{method}"
    async with http.post(url, json=json_body, data=form) as resp:
        return resp.status, await resp.json()


async def test_auth_and_unknown_method(api: FakeBotAPI, http: aiohttp.ClientSession) -> None:
    assert await call(http, api, "getMe", token="1:wrong") == (
        401, {"ok": False, "error_code": 401, "description": "Unauthorized"})
    assert await call(http, api, "sendSticker") == (
        404, {"ok": False, "error_code": 404, "description": "Not Found: method not found"})
    async with http.get(f"{api.base_url}/bot{TOKEN}/getMe") as resp:
        me = await resp.json()
    assert me["ok"] and me["result"]["is_bot"] and me["result"]["id"] == 123456789


async def test_json_and_form_bodies_and_message_ids(api: FakeBotAPI, http: aiohttp.ClientSession) -> None:
    markup = {"inline_keyboard": [[{"text": "a", "callback_data": "b"}]]}
    status, first = await call(http, api, "sendMessage", json_body={"chat_id": 5, "text": "x", "reply_markup": markup})
    status2, second = await call(http, api, "sendMessage",
                                 form={"chat_id": "5", "text": "y", "reply_markup": json.dumps(markup)})

    assert status == status2 == 200
    m1, m2 = first["result"], second["result"]
    assert isinstance(m1, dict) and isinstance(m2, dict)
    assert m2["message_id"] == m1["message_id"] + 1 and m1["reply_markup"] == m2["reply_markup"] == markup
    assert m1["chat"] == {"id": 5, "type": "private", "first_name": "张", "last_name": "三"}
    assert api.calls("sendMessage")[1].params["chat_id"] == 5


async def test_html_is_parsed_like_telegram() -> None:
    assert render_html("a &lt;b&gt; &amp; <b>粗</b>") == ("a <b> & 粗", [{"type": "bold", "offset": 8, "length": 1}])
    for bad in ("<x>hi</x>", "a < b", "<b>open"):
        with pytest.raises(Exception, match="can't parse entities"):
            render_html(bad)


async def test_long_poll_returns_when_an_update_arrives(api: FakeBotAPI, http: aiohttp.ClientSession) -> None:
    started = time.monotonic()
    poll = asyncio.create_task(call(http, api, "getUpdates", json_body={"timeout": 5}))
    await asyncio.sleep(0.2)
    uid = api.push_update(api.make_text_update(5, 5, "hi"))
    status, body = await poll

    assert status == 200 and [u["update_id"] for u in body["result"]] == [uid]  # type: ignore[union-attr]
    assert time.monotonic() - started < 2
    # Not confirmed until an offset past it is sent.
    assert len((await call(http, api, "getUpdates", json_body={"offset": uid}))[1]["result"]) == 1  # type: ignore[arg-type]
    assert (await call(http, api, "getUpdates", json_body={"offset": uid + 1}))[1]["result"] == []
    assert api.pending_updates == []


async def test_get_updates_conflicts_with_webhook(api: FakeBotAPI, http: aiohttp.ClientSession) -> None:
    await call(http, api, "setWebhook", json_body={"url": "http://127.0.0.1:1/hook", "secret_token": "abc"})
    status, body = await call(http, api, "getUpdates")
    assert status == 409 and "webhook is active" in str(body["description"])
    assert (await call(http, api, "getWebhookInfo"))[1]["result"]["url"] == "http://127.0.0.1:1/hook"  # type: ignore[index]
    await call(http, api, "deleteWebhook")
    assert (await call(http, api, "getUpdates"))[0] == 200


async def test_failure_injection(api: FakeBotAPI, http: aiohttp.ClientSession) -> None:
    api.fail_next("sendMessage", status=429, retry_after=3, count=2)
    for _ in range(2):
        status, body = await call(http, api, "sendMessage", json_body={"chat_id": 5, "text": "x"})
        assert status == 429 and body["parameters"] == {"retry_after": 3}
    assert (await call(http, api, "sendMessage", json_body={"chat_id": 5, "text": "x"}))[0] == 200
    assert api.count_429 == 2

    api.fail_for(0.3, status=500)
    assert (await call(http, api, "getMe"))[0] == 500
    await asyncio.sleep(0.35)
    assert (await call(http, api, "getMe"))[0] == 200


async def test_flood_limits_when_enforced(http: aiohttp.ClientSession) -> None:
    async with FakeBotAPI(token=TOKEN, enforce_limits=True, group_per_minute=3) as api:
        assert (await call(http, api, "sendMessage", json_body={"chat_id": 5, "text": "1"}))[0] == 200
        status, body = await call(http, api, "sendMessage", json_body={"chat_id": 5, "text": "2"})
        assert status == 429 and body["parameters"]["retry_after"] >= 1  # type: ignore[index]
        assert (await call(http, api, "sendMessage", json_body={"chat_id": 6, "text": "other"}))[0] == 200
        for i in range(3):
            assert (await call(http, api, "sendMessage", json_body={"chat_id": -100, "text": str(i)}))[0] == 200
        assert (await call(http, api, "sendMessage", json_body={"chat_id": -100, "text": "4"}))[0] == 429
        assert api.count_429 == 2
        await asyncio.sleep(1.0)
        assert (await call(http, api, "sendMessage", json_body={"chat_id": 5, "text": "3"}))[0] == 200


async def test_upload_get_file_and_download(api: FakeBotAPI, http: aiohttp.ClientSession) -> None:
    form = aiohttp.FormData(quote_fields=False)  # as aiogram sends it
    form.add_field("chat_id", "5")
    form.add_field("document", b"\x00\x01data", filename="报告.pdf", content_type="application/pdf")
    async with http.post(f"{api.base_url}/bot{TOKEN}/sendDocument", data=form) as resp:
        doc = (await resp.json())["result"]["document"]
    assert doc["file_name"] == "报告.pdf" and doc["file_size"] == 6

    _, info = await call(http, api, "getFile", json_body={"file_id": doc["file_id"]})
    path = info["result"]["file_path"]  # type: ignore[index]
    async with http.get(f"{api.base_url}/file/bot{TOKEN}/{path}") as resp:
        assert resp.status == 200 and await resp.read() == b"\x00\x01data"


async def test_deliver_webhook_sends_the_secret(api: FakeBotAPI, http: aiohttp.ClientSession) -> None:
    seen: list[tuple[str | None, dict[str, object]]] = []

    async def hook(request: web.Request) -> web.Response:
        seen.append((request.headers.get("X-Telegram-Bot-Api-Secret-Token"), await request.json()))
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        await call(http, api, "setWebhook", json_body={"url": f"http://127.0.0.1:{port}/hook", "secret_token": "t0k"})
        status = await api.deliver_webhook(api.make_text_update(5, 5, "hi"))
    finally:
        await runner.cleanup()

    assert status == 204
    [(secret, update)] = seen
    assert secret == "t0k" and update["message"]["text"] == "hi"  # type: ignore[index]
    assert isinstance(update["update_id"], int)
