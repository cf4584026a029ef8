"""Operations endpoints: GET /healthz (alive, and the database answers) and GET /metrics (Prometheus text).

Served on the webhook or WeCom server of a process, or on a small listener of its own
(`[app] metrics_listen`, off by default) for polling deployments. One registry per App, so that several
Apps in one process (tests) never share counters.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter as Tally
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select, text

from bot.transports.base import OutMessage, RetryAfter, Sent, Transport
from storage.models import OutboxMessage

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric
    from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

log = logging.getLogger("bangfu.metrics")
HEALTH_TIMEOUT = 3.0


class _SchedulerCollector(Collector):
    """Leadership and jobs run, read from the scheduler at scrape time (it keeps them already)."""

    def __init__(self, scheduler: Callable[[], Any]) -> None:
        self._scheduler = scheduler

    def collect(self) -> Iterable[Metric]:
        sched = self._scheduler()
        leader = GaugeMetricFamily("bangfu_scheduler_leader", "1 while this process runs the scheduled jobs")
        leader.add_metric([], 1.0 if sched is not None and getattr(sched, "is_leader", False) else 0.0)
        yield leader
        jobs = CounterMetricFamily("bangfu_scheduler_jobs_run", "Scheduled job runs completed by this process",
                                   labels=["job"])
        for name, n in sorted(Tally(r[0] for r in (getattr(sched, "runs", None) or [])).items()):
            jobs.add_metric([name], float(n))
        yield jobs


class Metrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.updates = Counter("bangfu_updates_handled", "Incoming updates handled", ["channel"], registry=r)
        self.errors = Counter("bangfu_update_errors", "Updates whose handling failed (not confirmed)",
                              ["channel"], registry=r)
        self.backlog = Gauge("bangfu_outbox_backlog", "Outbox rows waiting to be sent (pending or sending)",
                             registry=r)
        self.backlog_age = Gauge("bangfu_outbox_oldest_age_seconds", "Age of the oldest waiting outbox row",
                                 registry=r)
        self.send_seconds = Histogram("bangfu_send_seconds", "Time one send to a channel took", ["channel"],
                                      registry=r, buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
        self.retry_after = Counter("bangfu_send_retry_after", "Sends refused with 429 / retry-after", ["channel"],
                                   registry=r)
        self.send_failures = Counter("bangfu_send_failures", "Sends that raised any other error", ["channel"],
                                     registry=r)
        self._scheduler: Any = None
        r.register(_SchedulerCollector(lambda: self._scheduler))

    def watch_scheduler(self, scheduler: Any) -> None:
        self._scheduler = scheduler

    async def refresh_outbox(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        waiting = OutboxMessage.status.in_(("pending", "sending"))
        async with sessionmaker() as s:
            n, oldest = (await s.execute(select(func.count(), func.min(OutboxMessage.created_at))
                                         .where(waiting))).one()
        self.backlog.set(int(n))
        if oldest is None:
            self.backlog_age.set(0)
        else:
            oldest = oldest if oldest.tzinfo else oldest.replace(tzinfo=UTC)
            self.backlog_age.set(max(0.0, (datetime.now(UTC) - oldest).total_seconds()))


class MeteredTransport:
    """What the outbox sends through: the transport itself, with each send timed and 429s counted."""

    def __init__(self, inner: Transport, metrics: Metrics) -> None:
        self._inner = inner
        self._metrics = metrics
        self.name = inner.name
        self.capabilities = inner.capabilities

    async def send(self, msg: OutMessage) -> Sent:
        t = time.perf_counter()
        try:
            return await self._inner.send(msg)
        except RetryAfter:
            self._metrics.retry_after.labels(self.name).inc()
            raise
        except Exception:
            self._metrics.send_failures.labels(self.name).inc()
            raise
        finally:
            self._metrics.send_seconds.labels(self.name).observe(time.perf_counter() - t)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def routes(metrics: Metrics, engine: Callable[[], AsyncEngine | None],
           sessionmaker: Callable[[], async_sessionmaker[AsyncSession] | None]) -> list[web.RouteDef]:
    async def healthz(request: web.Request) -> web.Response:
        eng = engine()
        try:
            if eng is None:
                raise RuntimeError("not started")

            async def ping() -> None:
                async with eng.connect() as conn:
                    await conn.execute(text("SELECT 1"))

            await asyncio.wait_for(ping(), HEALTH_TIMEOUT)
        except Exception as e:  # noqa: BLE001 - any failure is "unhealthy", named in one word
            return web.json_response({"status": "error", "database": type(e).__name__}, status=503)
        return web.json_response({"status": "ok", "database": "ok"})

    async def metrics_view(request: web.Request) -> web.Response:
        sm = sessionmaker()
        if sm is not None:
            try:
                await asyncio.wait_for(metrics.refresh_outbox(sm), HEALTH_TIMEOUT)
            except Exception:  # noqa: BLE001 - the other figures are still worth serving
                log.warning("outbox figures unavailable for /metrics", exc_info=True)
        body = generate_latest(metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    return [web.get("/healthz", healthz), web.get("/metrics", metrics_view)]


class OpsServer:
    """The small listener for deployments without a webhook or WeCom server of their own."""

    def __init__(self, route_defs: list[web.RouteDef], host: str, port: int) -> None:
        self._routes = route_defs
        self._host, self._port = host, port
        self._runner: web.AppRunner | None = None

    @property
    def port(self) -> int | None:
        if self._runner is None or not self._runner.addresses:
            return None
        return int(self._runner.addresses[0][1])

    async def start(self) -> None:
        app = web.Application()
        app.add_routes(self._routes)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, self._host, self._port).start()
        log.info("health and metrics on http://%s:%s/healthz and /metrics", self._host, self.port)

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
