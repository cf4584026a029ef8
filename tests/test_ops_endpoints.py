"""/healthz and /metrics on the Telegram webhook server of a running App (the polling listener is covered by
tests/e2e/test_run_subprocess.py), and /healthz turning 503 when the database does not answer."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import aiohttp

from bot.app import App
from bot.config import load_settings
from bot.metrics import Metrics
from bot.transports.ops_http import OpsServer, routes
from storage.engine import make_engine
from tests.fakes.botapi import FakeBotAPI

TOKEN = "123456789:AAFakeTokenForTestsOnly_abcdefghijk"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _get(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as http, http.get(url) as r:
        return r.status, await r.text()


async def test_webhook_server_answers_health_and_metrics(tmp_path: Path) -> None:
    port = _port()
    async with FakeBotAPI(token=TOKEN) as api:
        settings = load_settings(environ={
            "BANGFU_DATABASE__URL": f"sqlite+aiosqlite:///{tmp_path / 'b.db'}", "BANGFU_TELEGRAM__TOKEN": TOKEN,
            "BANGFU_TELEGRAM__API_BASE": api.base_url, "BANGFU_TELEGRAM__LISTEN": f"127.0.0.1:{port}",
            "BANGFU_TELEGRAM__WEBHOOK_URL": f"http://127.0.0.1:{port}/telegram/webhook",
            "BANGFU_TELEGRAM__WEBHOOK_SECRET": "s3cret-for-tests", "BANGFU_APP__DATA_DIR": str(tmp_path)})
        app = App(settings, with_scheduler=False)
        await app.start()
        try:
            assert app.ops_server is None  # no extra listener: the webhook server carries them
            status, body = await _get(f"http://127.0.0.1:{port}/healthz")
            assert status == 200 and '"database": "ok"' in body
            status, text = await _get(f"http://127.0.0.1:{port}/metrics")
            assert status == 200
            assert re.search(r"^bangfu_outbox_backlog 0\.0$", text, re.M), text
            assert "bangfu_scheduler_leader 0.0" in text  # this App runs no scheduler
            # The webhook itself still refuses a call without the secret.
            async with aiohttp.ClientSession() as http, http.post(f"http://127.0.0.1:{port}/telegram/webhook",
                                                                  json={}) as r:
                assert r.status == 401
        finally:
            await app.stop()


async def test_healthz_is_503_when_the_database_does_not_answer() -> None:
    engine = make_engine("postgresql+asyncpg://nobody@127.0.0.1:9/none")
    server = OpsServer(routes(Metrics(), lambda: engine, lambda: None), "127.0.0.1", 0)
    await server.start()
    try:
        status, body = await _get(f"http://127.0.0.1:{server.port}/healthz")
        assert status == 503 and '"status": "error"' in body
        status, _ = await _get(f"http://127.0.0.1:{server.port}/metrics")
        assert status == 200
    finally:
        await server.stop()
        await engine.dispose()


async def test_wecom_callback_server_answers_health_and_metrics(tmp_path: Path) -> None:
    """The WeCom callback server carries the same routes (no WeCom API call is needed to start it)."""
    import base64
    import hashlib

    from bot.transports.wecom import WeComTransport

    aes = base64.b64encode(hashlib.sha256(b"ops test key").digest()).decode()[:43]
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'w.db'}")
    transport = WeComTransport("ww0123456789abcdef", "1000002", "secret-x", "tok", aes,
                               api_base="http://127.0.0.1:9", listen_host="127.0.0.1", listen_port=0)
    assert transport.serves_http()
    transport.http_routes = routes(Metrics(), lambda: engine, lambda: None)

    async def ignore(_inc: object) -> None:
        return None

    await transport.start(ignore)
    try:
        status, body = await _get(f"http://127.0.0.1:{transport.port}/healthz")
        assert status == 200 and '"database": "ok"' in body
        status, text = await _get(f"http://127.0.0.1:{transport.port}/metrics")
        assert status == 200 and "bangfu_updates_handled" in text
    finally:
        await transport.stop()
        await engine.dispose()
