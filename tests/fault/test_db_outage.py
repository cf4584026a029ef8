"""The database goes away mid-run and comes back: no update is lost, none is processed twice.

A small asyncio TCP proxy sits between the bot and PostgreSQL; `cut()` drops every connection and refuses
new ones, `restore()` lets them through again. Through the dispatcher directly (the cut lands in the
middle of a handler's transaction) and through the real aiogram transport against the fake Bot API, in
webhook mode (5xx, so Telegram redelivers) and polling mode (the offset is not confirmed).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

import handlers.visits as visits
from bot.dispatch import Dispatcher
from bot.outbox import Outbox
from bot.transports.telegram_aiogram import AiogramTransport
from handlers.context import Prefs
from handlers.types import ChatRef, Incoming
from storage.engine import make_engine, make_sessionmaker
from storage.models import ChatIdentity, InboxMessage, OutboxMessage, Visit
from tests.conftest import TZ
from tests.fakes.botapi import FakeBotAPI
from tests.fault.conftest import free_port
from tests.harness import make_bot, seed_world

pytestmark = pytest.mark.pg

TOKEN = "123456789:AAFakeTokenForTestsOnly_abcdefghijk"
USER = 4242
VISIT = "今天去大坝村张桂英家，缺棉被两床"


class TcpProxy:
    """127.0.0.1:<port> → upstream, with a switch."""

    def __init__(self, host: str, port: int) -> None:
        self.upstream = (host, port)
        self.down = False
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def cut(self) -> None:
        self.down = True
        for w in list(self._writers):
            with contextlib.suppress(Exception):
                w.transport.abort()
        self._writers.clear()

    def restore(self) -> None:
        self.down = False

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.down:
            writer.transport.abort()
            return
        try:
            ur, uw = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update((writer, uw))
        for src, dst in ((reader, uw), (ur, writer)):
            t = asyncio.create_task(self._pipe(src, dst))
            self._tasks.add(t)
            t.add_done_callback(self._tasks.discard)

    async def _pipe(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        try:
            while data := await src.read(65536):
                dst.write(data)
                await dst.drain()
        except (ConnectionError, OSError, asyncio.CancelledError):
            pass
        finally:
            with contextlib.suppress(Exception):
                dst.transport.abort()
            self._writers.discard(dst)


@dataclass
class Env:
    proxy: TcpProxy
    engine: AsyncEngine
    sm: async_sessionmaker[AsyncSession]

    async def count(self, model: type, *where: object) -> int:
        async with self.sm() as s:
            return int((await s.execute(select(func.count()).select_from(model).where(*where))).scalar_one())


@pytest.fixture
async def env(pg_url: str) -> AsyncIterator[Env]:
    u = make_url(pg_url)
    proxy = TcpProxy(u.host or "127.0.0.1", u.port or 5432)
    await proxy.start()
    proxied = u.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    # A short connect timeout: with the database gone, an update fails fast instead of hanging.
    engine = make_engine(proxied, connect_args={"timeout": 3})
    yield Env(proxy, engine, make_sessionmaker(engine))
    await engine.dispose()
    await proxy.stop()


async def test_cut_mid_transaction_then_redelivered_once(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    bot = await make_bot(env.sm)
    await bot.bind("u1", "李明")
    real_add_visit = visits.add_visit
    cuts = []

    async def add_visit_then_lose_db(*a, **kw):  # noqa: ANN002, ANN003, ANN202
        if not cuts:
            cuts.append(1)
            env.proxy.cut()  # the database vanishes while the handler is writing the visit
        return await real_add_visit(*a, **kw)

    monkeypatch.setattr(visits, "add_visit", add_visit_then_lose_db)
    inc = Incoming(chat=ChatRef(bot.transport.name, "chat-u1"), sender_id="u1", message_id="m1", text=VISIT)
    with pytest.raises(Exception):  # noqa: B017 - whatever the driver raises; the transport must not confirm
        await bot.dispatcher.handle(inc)
    # Still down: the redelivery fails the same way and writes nothing.
    with pytest.raises(Exception):  # noqa: B017
        await asyncio.wait_for(bot.dispatcher.handle(inc), 10)

    env.proxy.restore()
    assert await env.count(InboxMessage) == 0  # the whole update rolled back, not half of it
    await bot.dispatcher.handle(inc)  # the platform's redelivery
    await bot.dispatcher.handle(inc)  # and a late duplicate of it
    out = await bot.flush()
    assert await env.count(Visit) == 1
    assert await env.count(InboxMessage) == 1
    assert len([m for m in out if "已记录走访" in m.text]) == 1


async def _wire(env: Env, api: FakeBotAPI, **kw: object) -> tuple[AiogramTransport, Outbox]:
    world = await seed_world(env.sm)
    async with env.sm() as s, s.begin():
        s.add(ChatIdentity(person_id=world.people["李明"].id, channel="telegram", external_id=str(USER),
                           chat_id=str(USER), display_name="李明"))
    transport = AiogramTransport(TOKEN, api_base=api.base_url, poll_timeout=1, **kw)  # type: ignore[arg-type]
    outbox = Outbox(env.sm, {"telegram": transport}, poll_interval=0.05)
    dispatcher = Dispatcher(env.sm, Prefs(tz=TZ), user_messages_per_minute=1000, on_outbox=outbox.notify)
    outbox.start()
    await transport.start(dispatcher.handle)
    return transport, outbox


def _cards(api: FakeBotAPI) -> list[str]:
    return [m["text"] for m in api.messages_to(USER) if "已记录走访" in m.get("text", "")]


async def test_webhook_answers_5xx_while_the_database_is_down(env: Env) -> None:
    async with FakeBotAPI(token=TOKEN) as api:
        port = free_port()
        transport, outbox = await _wire(env, api, webhook_url=f"http://127.0.0.1:{port}/telegram/webhook",
                                        webhook_secret="s3cret", listen_port=port)
        try:
            update = api.make_text_update(USER, USER, VISIT)
            update["update_id"] = 9001
            env.proxy.cut()
            assert await api.deliver_webhook(update) == 500
            assert await api.deliver_webhook(update) == 500  # Telegram retries; still down
            env.proxy.restore()
            assert await api.deliver_webhook(update) == 200
            assert await api.deliver_webhook(update) == 200  # a duplicate delivery is a no-op
            await api.wait_for(lambda: len(_cards(api)) >= 1, 10)
            await asyncio.sleep(0.3)
            assert len(_cards(api)) == 1
            assert await env.count(Visit) == 1
        finally:
            await transport.stop()
            await outbox.stop()


async def test_polling_does_not_confirm_while_the_database_is_down(env: Env) -> None:
    async with FakeBotAPI(token=TOKEN) as api:
        transport, outbox = await _wire(env, api)
        try:
            env.proxy.cut()
            uid = api.push_update(api.make_text_update(USER, USER, VISIT))
            # Give the poller time to fetch, fail and fetch again (backoff 0.5 s, 1 s, ...).
            await api.wait_for(lambda: len(api.calls("getUpdates")) >= 4, 10)
            assert [u["update_id"] for u in api.pending_updates] == [uid]  # not confirmed
            assert _cards(api) == []
            env.proxy.restore()
            await api.wait_for(lambda: len(_cards(api)) >= 1 and not api.pending_updates, 15)
            await asyncio.sleep(0.3)
            assert len(_cards(api)) == 1
            assert await env.count(Visit) == 1
            assert await env.count(OutboxMessage, OutboxMessage.status != "sent") == 0
        finally:
            await transport.stop()
            await outbox.stop()
