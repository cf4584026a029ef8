"""What /metrics reports: one Prometheus registry per App (so several Apps in one process never share
counters), the transport wrapper that times sends, and the outbox figures read at scrape time. The HTTP
side (/healthz, /metrics, the optional listener) is bot/transports/ops_http.py."""

from __future__ import annotations

import time
from collections import Counter as Tally
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from bot.transports.base import OutMessage, RetryAfter, Sent, Transport
from storage.models import OutboxMessage

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker


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
