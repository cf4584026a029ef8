"""The composition root: builds engine, dispatcher, outbox, transports and scheduler; starts them in
order and stops them in reverse."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.config import Settings
from bot.dispatch import Dispatcher, SystemClock
from bot.metrics import MeteredTransport, Metrics
from bot.outbox import Outbox, SharedSendWindow
from bot.poll_lease import PollLease, polls
from bot.transports.base import Transport
from bot.transports.ops_http import OpsServer, routes
from handlers.context import Clock, Prefs
from handlers.types import Incoming
from storage.engine import make_engine, make_sessionmaker, upgrade_async

log = logging.getLogger("bangfu.app")


def prefs_from(settings: Settings) -> Prefs:
    from pathlib import Path

    from handlers.faq import DEFAULT_FAQ, faq_from_file

    r = settings.reminders
    faq_path = Path(settings.app.faq_file).resolve() if settings.app.faq_file else DEFAULT_FAQ
    return Prefs(tz=settings.tz, max_text_chars=settings.limits.max_text_chars,
                 max_file_bytes=settings.limits.max_file_bytes,
                 attach_window_minutes=settings.limits.attach_window_minutes, quiet_start=r.quiet_start,
                 quiet_end=r.quiet_end, cadence_days=dict(r.cadence_days),
                 training_hours_before=tuple(r.training_hours_before), faq=faq_from_file(str(faq_path)))


def bot_commands() -> list[tuple[str, str]]:
    from handlers.routes import menu

    return menu()


def telegram_transport(settings: Settings) -> Transport | None:
    t = settings.telegram
    if t.token is None:
        return None
    host, _, port = t.listen.rpartition(":")
    kw: dict[str, Any] = dict(
        api_base=t.api_base, webhook_url=t.webhook_url,
        webhook_secret=t.webhook_secret.get_secret_value() if t.webhook_secret else None,
        listen_host=host, listen_port=int(port), webhook_path=t.webhook_path, commands=bot_commands(),
        poll_timeout=t.poll_timeout, max_file_size=settings.limits.max_file_bytes,
        poll_concurrency=1 if settings.database.url.startswith("sqlite") else 8,
    )
    token = t.token.get_secret_value()
    if t.framework == "ptb":
        from bot.transports.telegram_ptb import PTBTransport

        return PTBTransport(token, **kw)
    from bot.transports.telegram_aiogram import AiogramTransport

    return AiogramTransport(token, **kw)


def wecom_transport(settings: Settings) -> Transport | None:
    w = settings.wecom
    if not w.enabled:
        return None
    from bot.transports.wecom import WeComTransport

    host, _, port = w.listen.rpartition(":")
    assert w.secret and w.token and w.aes_key
    return WeComTransport(
        w.corp_id, w.agent_id, w.secret.get_secret_value(), w.token.get_secret_value(),
        w.aes_key.get_secret_value(), api_base=w.api_base, listen_host=host, listen_port=int(port),
        robots={k: v.get_secret_value() for k, v in w.robots.items()},
    )


def warm_up_parser() -> None:
    from datetime import UTC, datetime

    from handlers.text import parse

    parse("今天去大坝村王德明家，缺棉被两床", datetime.now(UTC))


class App:
    def __init__(self, settings: Settings, *, clock: Clock | None = None,
                 transports: list[Transport] | None = None, with_scheduler: bool = True,
                 engine: AsyncEngine | None = None) -> None:
        self.settings = settings
        self.clock = clock or SystemClock()
        self._given_transports = transports
        self.with_scheduler = with_scheduler
        self.engine = engine
        self.sessionmaker: async_sessionmaker[AsyncSession] | None = None
        self.transports: list[Transport] = []
        self.dispatcher: Dispatcher | None = None
        self.outbox: Outbox | None = None
        self.scheduler: Any = None
        self.metrics = Metrics()
        self.ops_server: OpsServer | None = None
        self._started: list[Any] = []
        self._registry_warm_up: asyncio.Task[None] | None = None

    def configured_transports(self) -> list[Transport]:
        if self._given_transports is not None:
            return list(self._given_transports)
        return [t for t in (telegram_transport(self.settings), wecom_transport(self.settings)) if t is not None]

    async def build(self) -> None:
        """Everything but the transports' network side: usable by the demo and by tests."""
        await upgrade_async(self.settings.database.url)
        if self.engine is None:
            self.engine = make_engine(self.settings.database.url)
        self.sessionmaker = make_sessionmaker(self.engine)
        self.transports = self.configured_transports()
        shared = SharedSendWindow(self.settings.redis.url) if self.settings.redis.url else None
        self.outbox = Outbox(self.sessionmaker, {t.name: MeteredTransport(t, self.metrics)
                                                 for t in self.transports}, shared=shared)
        self.dispatcher = Dispatcher(
            self.sessionmaker, prefs_from(self.settings), clock=self.clock,
            inline_buttons={t.name: t.capabilities.inline_buttons for t in self.transports},
            user_messages_per_minute=self.settings.limits.user_messages_per_minute,
            on_outbox=self.outbox.notify, redis_url=self.settings.redis.url,
        )

    async def start(self) -> None:
        if self.dispatcher is None:
            await self.build()
        assert self.outbox is not None and self.dispatcher is not None
        # Load the segmenter's dictionary before the first update arrives: done lazily, the first
        # message would block the loop for a second or more (past WeCom's 5 s callback limit under load).
        await asyncio.to_thread(warm_up_parser)
        # And the household registry, in the background (its indexing in a thread when large): the channels
        # start without waiting for it, and the first visit finds it built instead of building it.
        self._registry_warm_up = asyncio.create_task(self._warm_up_registry())
        for t in self.transports:
            if polls(t) and self.engine is not None:
                lease = PollLease(self.engine, t.token)  # type: ignore[attr-defined]
                await lease.acquire()
                self._started.append(lease)
        self.outbox.start()
        self._started.append(self.outbox)
        ops = routes(self.metrics, lambda: self.engine, lambda: self.sessionmaker)
        for t in self.transports:
            if getattr(t, "serves_http", lambda: False)():
                t.http_routes = ops  # type: ignore[attr-defined]
        listen = self.settings.app.metrics_listen
        if listen:
            host, _, port = listen.rpartition(":")
            self.ops_server = OpsServer(ops, host, int(port))
            await self.ops_server.start()
            self._started.append(self.ops_server)
        for t in self.transports:
            await t.start(self.handle)
            self._started.append(t)
            log.info("channel %s started", t.name)
        if self.with_scheduler:
            from bot.scheduler import start_scheduler

            self.scheduler = await start_scheduler(self)
            if self.scheduler is not None:
                self._started.append(self.scheduler)
                self.metrics.watch_scheduler(self.scheduler)

    async def handle(self, inc: Incoming) -> None:
        """What the transports call: the dispatcher, counted for /metrics."""
        assert self.dispatcher is not None
        try:
            await self.dispatcher.handle(inc)
        except BaseException:
            self.metrics.errors.labels(inc.channel).inc()
            raise
        finally:
            self.metrics.updates.labels(inc.channel).inc()

    async def _warm_up_registry(self) -> None:
        from handlers.resolver import warm_up

        assert self.sessionmaker is not None
        try:
            async with self.sessionmaker() as s:
                await warm_up(s)
        except Exception:  # the first update builds it then
            log.exception("registry warm-up failed")

    async def stop(self) -> None:
        task = self._registry_warm_up
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for part in reversed(self._started):
            try:
                await part.stop()
            except Exception:
                log.exception("error while stopping %s", part)
        self._started.clear()
        if self.engine is not None:
            await self.engine.dispose()
