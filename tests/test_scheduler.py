"""The scheduler on a fixed clock: fire-time arithmetic, catch-up of a missed digest exactly once across
restarts, APScheduler actually ticking, and two schedulers on one PostgreSQL with one leader."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.app import prefs_from
from bot.config import Settings
from bot.scheduler import Scheduler, cron, last_fire_time, previous_fire_time, start_scheduler
from storage.engine import make_engine, make_sessionmaker
from storage.models import ChatIdentity, InboxMessage, OutboxMessage, Person, SendLedger
from tests.conftest import TZ, FixedClock, _truncate_and_dispose
from tests.harness import seed_world

MON = datetime(2026, 11, 30, 10, 0, tzinfo=TZ)  # 90 minutes after the 08:30 digest time


def settings(url: str, **digest: object) -> Settings:
    return Settings.model_validate({"database": {"url": url}, "digest": {"misfire_grace_hours": 12, **digest}})


def app_for(url: str, clock: FixedClock) -> SimpleNamespace:
    """What start_scheduler needs from an App, with its own engine (as a second process would have)."""
    engine = make_engine(url)
    return SimpleNamespace(settings=settings(url), clock=clock, engine=engine,
                           sessionmaker=make_sessionmaker(engine), outbox=None)


async def seed(sm) -> None:
    w = await seed_world(sm)
    async with sm() as s, s.begin():
        s.add(Person(natural_key="区督查|x", name="区督查", role="supervisor", unit_id=w.district.id))
        await s.flush()
        for p in await s.scalars(select(Person).where(Person.role == "supervisor")):
            s.add(ChatIdentity(person_id=p.id, channel="telegram", external_id=f"s{p.id}", chat_id=f"chat-s{p.id}"))


async def digests(engine: AsyncEngine) -> dict[str, int]:
    """outbox text rows per chat that start a weekly digest."""
    async with make_sessionmaker(engine)() as s:
        rows = (await s.execute(select(OutboxMessage.chat_id, OutboxMessage.payload))).all()
    out: dict[str, int] = {}
    for chat, payload in rows:
        if "帮扶周报" in (payload.get("text") or ""):
            out[chat] = out.get(chat, 0) + 1
    return out


def test_fire_times():
    weekly = cron("30 8 * * mon", TZ)
    assert last_fire_time(weekly, datetime(2026, 11, 25, 10, tzinfo=TZ)) == datetime(2026, 11, 23, 8, 30, tzinfo=TZ)
    assert last_fire_time(weekly, datetime(2026, 11, 23, 8, 30, tzinfo=TZ)) == datetime(2026, 11, 23, 8, 30, tzinfo=TZ)
    two_day = cron("0 9 */2 * *", TZ)
    fire = last_fire_time(two_day, datetime(2026, 11, 26, 12, tzinfo=TZ))
    assert fire == datetime(2026, 11, 25, 9, tzinfo=TZ)
    assert previous_fire_time(two_day, fire) == datetime(2026, 11, 23, 9, tzinfo=TZ)
    monthly = cron("0 9 1 * *", TZ)  # longer than the first lookback
    assert last_fire_time(monthly, datetime(2026, 11, 30, tzinfo=TZ)) == datetime(2026, 11, 1, 9, tzinfo=TZ)


async def test_restart_after_missed_time_sends_exactly_one_digest(sqlite_url):
    clock = FixedClock(MON)
    first = app_for(sqlite_url, clock)
    await seed(first.sessionmaker)
    sched = await start_scheduler(first)
    assert sched.is_leader and sched.aps is not None
    assert {j.id for j in sched.aps.get_jobs()} == {"reminders", "weekly_digest", "bulletin", "broadcast_reports",
                                                   "training_reminders", "inbox_retention"}
    await sched.stop()
    assert await digests(first.engine) == {"chat-s3": 1, "chat-s5": 1}
    await first.engine.dispose()

    clock.advance(hours=3)  # restarted later the same morning: the ledger holds
    again = app_for(sqlite_url, clock)
    sched = await start_scheduler(again)
    await sched.stop()
    assert await digests(again.engine) == {"chat-s3": 1, "chat-s5": 1}
    async with again.sessionmaker() as s:
        n = (await s.execute(select(func.count()).select_from(SendLedger)
                             .where(SendLedger.kind == "weekly_digest"))).scalar_one()
    assert n == 2
    await again.engine.dispose()


async def test_no_catch_up_past_the_grace(sqlite_url):
    app = app_for(sqlite_url, FixedClock(MON + timedelta(hours=13)))  # 21:30: 13h after 08:30
    await seed(app.sessionmaker)
    sched = await start_scheduler(app)
    await sched.stop()
    assert await digests(app.engine) == {}
    await app.engine.dispose()


async def test_apscheduler_ticks_the_broadcast_report_job(sqlite_url):
    """The interval job really runs under APScheduler: a finished broadcast batch gets its report."""
    app = app_for(sqlite_url, FixedClock(MON))
    await seed(app.sessionmaker)
    async with app.sessionmaker() as s, s.begin():
        inbox = InboxMessage(channel="telegram", chat_id="chat-s3", message_key="9", sender_id="s3", kind="message",
                             text="广播 明天开会")
        s.add(inbox)
        await s.flush()
        s.add(OutboxMessage(channel="telegram", chat_id="-100", is_group=True, payload={"text": "x"},
                            status="sent", batch=f"bc:{inbox.id}"))
    sched = Scheduler(settings=app.settings, sessionmaker=app.sessionmaker, engine=app.engine, clock=app.clock,
                      prefs=prefs_from(app.settings),
                      report_seconds=0.1)
    await sched.start()
    try:
        for _ in range(50):
            if any(name == "broadcast_reports" and n for name, _, n in sched.runs):
                break
            await asyncio.sleep(0.05)
    finally:
        await sched.stop()
    async with app.sessionmaker() as s:
        texts = [p["text"] for p in (await s.scalars(select(OutboxMessage.payload)
                                                    .where(OutboxMessage.chat_id == "chat-s3")))]
    assert any(t.startswith("广播送达报告") and "已送达1" in t for t in texts)
    await app.engine.dispose()


@pytest.fixture
def pg_url(pg_server_url):
    yield pg_server_url
    asyncio.run(_truncate_and_dispose(make_engine(pg_server_url)))


@pytest.mark.pg
async def test_two_schedulers_on_postgresql_send_one_digest_per_supervisor(pg_url):
    clock = FixedClock(MON)
    a, b = app_for(pg_url, clock), app_for(pg_url, clock)
    await seed(a.sessionmaker)
    sa, sb = await asyncio.gather(start_scheduler(a, retry_seconds=0.1), start_scheduler(b, retry_seconds=0.1))
    try:
        assert sorted([sa.is_leader, sb.is_leader]) == [False, True]
        leader, follower = (sa, sb) if sa.is_leader else (sb, sa)
        assert await digests(a.engine) == {"chat-s3": 1, "chat-s5": 1}

        # Even if both ran the job at once (no lock), the ledger lets one through.
        clock.advance(minutes=5)
        assert sorted(await asyncio.gather(leader.run_job("weekly_digest"), follower.run_job("weekly_digest"))) == [0, 0]

        # The leader stops; the follower takes over, catches up, and still sends nothing twice.
        await leader.stop()
        for _ in range(50):
            if follower.is_leader:
                break
            await asyncio.sleep(0.05)
        assert follower.is_leader
        assert any(name == "weekly_digest" for name, _, _ in follower.runs)
        assert await digests(a.engine) == {"chat-s3": 1, "chat-s5": 1}
    finally:
        await sa.stop()
        await sb.stop()
        await a.engine.dispose()
        await b.engine.dispose()
