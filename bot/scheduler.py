"""APScheduler 3.11 (AsyncIOScheduler) jobs that only tick: each opens a session and transaction and asks a
handler what is due. The only module that knows APScheduler. Owns leader election (PostgreSQL advisory
lock on a dedicated connection) and the catch-up of fires missed while no scheduler was running."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from bot.config import Settings
from handlers import broadcast, digest, reminders, trainings
from handlers.context import Clock, Prefs
from storage.messages import purge_inbox_text

log = logging.getLogger("bangfu.scheduler")

# pg_try_advisory_lock key: one scheduler per database. ASCII "bangfu-s".
LOCK_KEY = 0x62616E6766752D73
RETRY_SECONDS = 15.0  # how often a follower tries to take over, and the leader checks its lock
REPORT_SECONDS = 20.0  # how often finished broadcast batches are looked for

# (session, now, scheduled fire time) → rows written
JobFn = Callable[[AsyncSession, datetime, datetime], Awaitable[int]]


class AppLike(Protocol):
    settings: Settings
    clock: Clock
    engine: AsyncEngine | None
    sessionmaker: async_sessionmaker[AsyncSession] | None
    outbox: Any


def cron(expr: str, tz: Any) -> CronTrigger:
    """Five-field crontab. Note APScheduler 3 numbers days of week from Monday=0; use names (mon)."""
    return CronTrigger.from_crontab(expr, timezone=tz)


def last_fire_time(trigger: CronTrigger, now: datetime, lookback: timedelta = timedelta(days=8)) -> datetime | None:
    """The latest fire time at or before `now` (APScheduler 3 only computes forward, so walk forward)."""
    span = lookback
    while span <= timedelta(days=800):
        t: datetime | None = trigger.get_next_fire_time(None, now - span)
        last = None
        while t is not None and t <= now:
            last = t
            t = trigger.get_next_fire_time(None, t + timedelta(microseconds=1))
        if last is not None:
            return last
        span *= 4
    return None


def previous_fire_time(trigger: CronTrigger, fire: datetime) -> datetime | None:
    return last_fire_time(trigger, fire - timedelta(microseconds=1))


@dataclass
class Job:
    name: str
    trigger: CronTrigger | IntervalTrigger
    fn: JobFn
    catch_up: bool = True


class Scheduler:
    """Runs the jobs while it holds leadership. `start()` makes one attempt (and the catch-up) before
    returning; a background task keeps retrying (follower) or checking the lock (leader)."""

    def __init__(self, *, settings: Settings, sessionmaker: async_sessionmaker[AsyncSession], engine: AsyncEngine,
                 clock: Clock, prefs: Prefs, notify: Callable[[], None] | None = None,
                 retry_seconds: float = RETRY_SECONDS, report_seconds: float = REPORT_SECONDS) -> None:
        self.settings = settings
        self.sessionmaker = sessionmaker
        self.engine = engine
        self.clock = clock
        self.prefs = prefs
        self.notify = notify
        self.retry_seconds = retry_seconds
        self.grace = timedelta(hours=settings.digest.misfire_grace_hours)
        self.tz = settings.tz
        self.jobs = self._jobs(report_seconds)
        self.aps: AsyncIOScheduler | None = None
        self.is_leader = False
        self._lock_conn: AsyncConnection | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self.runs: list[tuple[str, datetime, int]] = []  # (job, fire time, rows): for logs and tests

    # ---------------------------------------------------------------- jobs

    def _jobs(self, report_seconds: float) -> dict[str, Job]:
        s, tz = self.settings, self.tz
        robots = tuple(s.wecom.robots) if s.wecom.enabled else ()
        bulletin_trigger = cron(s.digest.bulletin_cron, tz)

        async def morning(session: AsyncSession, now: datetime, fire: datetime) -> int:
            return await reminders.morning_reminders(session, now=now, prefs=self.prefs, day=fire.date())

        async def weekly(session: AsyncSession, now: datetime, fire: datetime) -> int:
            return await digest.weekly_digests(session, now=now, prefs=self.prefs,
                                               week_start=digest.previous_week(fire.date()))

        async def bulletin(session: AsyncSession, now: datetime, fire: datetime) -> int:
            prev = previous_fire_time(bulletin_trigger, fire)
            days = max(1, (fire.date() - prev.date()).days) if prev is not None else 2
            return await digest.bulletins(session, now=now, prefs=self.prefs, days=days, robots=robots,
                                          day=fire.date())

        async def reports(session: AsyncSession, now: datetime, fire: datetime) -> int:
            return await broadcast.delivery_reports(session, now=now)

        async def training(session: AsyncSession, now: datetime, fire: datetime) -> int:
            return await trainings.due_training_reminders(session, now=now, prefs=self.prefs)

        async def retention(session: AsyncSession, now: datetime, fire: datetime) -> int:
            days = s.privacy.inbox_text_retention_days
            return 0 if days is None else await purge_inbox_text(session, before=now - timedelta(days=days))

        jobs = [Job("weekly_digest", cron(s.digest.weekly_cron, tz), weekly),
                Job("bulletin", bulletin_trigger, bulletin),
                Job("broadcast_reports", IntervalTrigger(seconds=report_seconds, timezone=tz), reports,
                    catch_up=False),
                # Training reminders are due at times of their own (a day and two hours before each
                # session), so this ticks often; the ledger keeps each reminder single.
                Job("training_reminders", IntervalTrigger(seconds=60, timezone=tz), training, catch_up=False),
                Job("inbox_retention", cron("30 3 * * *", tz), retention)]
        if s.reminders.enabled:
            jobs.insert(0, Job("reminders", cron(s.reminders.morning_cron, tz), morning))
        return {j.name: j for j in jobs}

    def _now(self) -> datetime:
        return self.clock.now().astimezone(self.tz)

    async def run_job(self, name: str, fire: datetime | None = None) -> int:
        """One tick: a session and a transaction around the handler. Safe to repeat (the ledger)."""
        job = self.jobs[name]
        now = self._now()
        if fire is None:
            fire = last_fire_time(job.trigger, now) if isinstance(job.trigger, CronTrigger) else now
            fire = fire or now
        async with self.sessionmaker() as session, session.begin():
            n = await job.fn(session, now, fire)
        self.runs.append((name, fire, n))
        if n:
            log.info("%s (%s): %d outbox rows", name, fire.isoformat(timespec="minutes"), n)
            if self.notify is not None:
                self.notify()
        return n

    async def _tick(self, name: str) -> None:
        try:
            await self.run_job(name)
        except Exception:
            log.exception("scheduled job %s failed; it runs again at its next time", name)

    async def catch_up(self) -> None:
        """A fire missed while no scheduler ran (down, or a leader change) runs once now if it is
        within the misfire grace; a fire that did happen finds its ledger rows and sends nothing."""
        now = self._now()
        for job in self.jobs.values():
            if not job.catch_up or not isinstance(job.trigger, CronTrigger):
                continue
            fire = last_fire_time(job.trigger, now)
            if fire is not None and now - fire <= self.grace:
                log.info("catching up %s scheduled at %s", job.name, fire.isoformat(timespec="minutes"))
                try:
                    await self.run_job(job.name, fire)
                except Exception:
                    log.exception("catch-up of %s failed", job.name)

    # ---------------------------------------------------------------- leadership

    async def _try_lead(self) -> bool:
        if self.engine.dialect.name != "postgresql":
            # SQLite means one process; should a second run anyway, the ledger still sends once.
            return True
        conn = await self.engine.connect()
        try:
            # Autocommit: a session-level lock needs no open transaction, and an idle-in-transaction
            # connection held for days would block vacuum.
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            got = (await conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": LOCK_KEY})).scalar_one()
        except Exception:
            await conn.close()
            raise
        if not got:
            await conn.close()
            return False
        self._lock_conn = conn
        return True

    async def _lock_alive(self) -> bool:
        if self._lock_conn is None:
            return self.engine.dialect.name != "postgresql"
        try:
            await self._lock_conn.execute(text("SELECT 1"))
            return True
        except Exception:
            log.warning("lost the scheduler lock connection; stepping down", exc_info=True)
            return False

    async def _become_leader(self) -> None:
        self.is_leader = True
        aps = AsyncIOScheduler(timezone=self.tz)
        grace = max(1, int(self.grace.total_seconds()))
        for job in self.jobs.values():
            aps.add_job(self._tick, job.trigger, args=[job.name], id=job.name, name=job.name,
                        misfire_grace_time=grace, coalesce=True, max_instances=1, replace_existing=True)
        aps.start()
        self.aps = aps
        log.info("scheduler is the leader; jobs: %s", ", ".join(self.jobs))
        await self.catch_up()

    async def _step_down(self) -> None:
        self.is_leader = False
        if self.aps is not None:
            self.aps.shutdown(wait=False)
            self.aps = None
        if self._lock_conn is not None:
            conn, self._lock_conn = self._lock_conn, None
            try:
                # Closing returns the connection to the pool; unlock first so the pool does not
                # hand a lock-holding connection to someone else.
                await conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": LOCK_KEY})
                await conn.close()
            except Exception:
                # A broken connection: drop it outright; the server ends the session and the lock.
                with contextlib.suppress(Exception):
                    await conn.invalidate()

    async def _attempt(self) -> None:
        try:
            if await self._try_lead():
                await self._become_leader()
            else:
                log.debug("another process runs the scheduler; retrying in %ss", self.retry_seconds)
        except Exception:
            log.exception("scheduler election failed; retrying")

    async def _loop(self) -> None:
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.retry_seconds)
            if self._stopping.is_set():
                break
            if self.is_leader:
                if not await self._lock_alive():
                    await self._step_down()
            else:
                await self._attempt()

    async def start(self) -> None:
        self._stopping.clear()
        await self._attempt()
        self._task = asyncio.create_task(self._loop(), name="scheduler-election")

    async def stop(self) -> None:
        self._stopping.set()
        if self._task is not None:
            await self._task
            self._task = None
        await self._step_down()


def make_scheduler(app: AppLike, **kw: Any) -> Scheduler:
    from bot.app import prefs_from

    assert app.sessionmaker is not None and app.engine is not None, "build the app first"
    notify = app.outbox.notify if app.outbox is not None else None
    return Scheduler(settings=app.settings, sessionmaker=app.sessionmaker, engine=app.engine, clock=app.clock,
                     prefs=prefs_from(app.settings), notify=notify, **kw)


async def start_scheduler(app: AppLike, **kw: Any) -> Scheduler:
    """Called by App.start(); returns the running scheduler (follower or leader), stopped by App.stop()."""
    sched = make_scheduler(app, **kw)
    await sched.start()
    return sched


async def run_scheduler(settings: Settings) -> None:
    """`bangfu scheduler`: the scheduler alone (its rows are delivered by the outbox of `bangfu run`)."""
    from bot.app import App

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):  # as `bangfu run`: docker stop / systemd send SIGTERM
        loop.add_signal_handler(sig, stop.set)
    app = App(settings, transports=[], with_scheduler=False)
    await app.build()
    sched = await start_scheduler(app)
    try:
        await stop.wait()
    finally:
        await sched.stop()
        await app.stop()
