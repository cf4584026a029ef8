"""A past week's digest is the same whenever it is made: every figure is as of the end of the week.

W48 is built on the Monday after it; then life goes on (the open need is met, the overdue follow-up is
done, a visit dated inside W48 is logged late with a new need, W49 brings visits, needs and sign-ups) and
W48 is built again three weeks later, with the clock frozen there. Text, XLSX cell values and the data
behind the chart (and the PNG bytes) must not change. A week that has not ended is refused."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime, timedelta

import pytest
from click.testing import CliRunner
from openpyxl import load_workbook
from sqlalchemy import select

from handlers.digest import UnfinishedWeekError, build_digest
from storage.models import FollowUp, Need, Signup, TrainingSession, Visit
from tests.conftest import TZ
from tests.test_digest import MON_W49, PREFS, W48, seed_activity


def _cells(xlsx: bytes) -> dict[str, list[tuple[object, ...]]]:
    wb = load_workbook(io.BytesIO(xlsx))
    return {ws.title: list(ws.iter_rows(values_only=True)) for ws in wb}


async def test_week_48_is_the_same_three_weeks_later(sessionmaker) -> None:
    w = await seed_activity(sessionmaker)
    async with sessionmaker() as s:
        first = await build_digest(s, unit=w.township, week_start=W48, prefs=PREFS, today=MON_W49.date())
    assert first.stats.needs_open == 2 and first.stats.overdue_followups == 1  # something that can change
    assert "本周新报名 1 人" in first.text  # 丙 signed up during W48 (and cancelled later)

    later = datetime(2026, 12, 3, 15, tzinfo=TZ).astimezone(UTC)
    h = w.households
    async with sessionmaker() as s, s.begin():
        need = (await s.execute(select(Need).where(Need.item == "棉被"))).scalar_one()
        need.status, need.met_at = "met", later
        fu = (await s.execute(select(FollowUp).where(FollowUp.action == "联系施工队"))).scalar_one()
        fu.done_at = later
        # Logged on 3 December about a visit on 27 November (inside W48), with a need.
        late = Visit(source_key="late", cadre_id=w.people["李明"].id, household_id=h["张桂英"].id,
                     visit_date=W48 + timedelta(days=4), created_at=later, updated_at=later)
        s.add(late)
        # W49 activity.
        w49 = Visit(source_key="w49", cadre_id=w.people["李明"].id, household_id=h["王德明@高坡村"].id,
                    visit_date=date(2026, 12, 1), created_at=later, updated_at=later)
        s.add(w49)
        await s.flush()
        s.add_all([Need(visit_id=late.id, household_id=late.household_id, category="教育", item="学费",
                        raised_on=late.visit_date),
                   Need(visit_id=w49.id, household_id=w49.household_id, category="就业", item="务工",
                        raised_on=w49.visit_date),
                   FollowUp(visit_id=late.id, household_id=late.household_id, action="问学校", due=W48)])
        ts = (await s.execute(select(TrainingSession))).scalars().first()
        assert ts is not None
        s.add(Signup(session_id=ts.id, participant_name="戊", village_id=w.villages["大坝村"].id,
                     status="confirmed", created_at=later))

    async with sessionmaker() as s:
        again = await build_digest(s, unit=w.township, week_start=W48, prefs=PREFS, today=date(2026, 12, 21))
        # The same figures are what today's view would differ on: the changes did land.
        now_view = await build_digest(s, unit=w.township, week_start=date(2026, 11, 30), prefs=PREFS,
                                      today=date(2026, 12, 21))
    assert now_view.stats.visits == 1 and now_view.stats.needs_open >= 2

    assert again.text == first.text
    assert _cells(again.xlsx) == _cells(first.xlsx)
    for attr in ("daily", "daily_prev", "by_unit", "child_level", "unit_name", "week_start"):
        assert getattr(again.stats, attr) == getattr(first.stats, attr), attr
    assert again.png == first.png


async def test_an_unfinished_or_future_week_is_refused(sessionmaker) -> None:
    w = await seed_activity(sessionmaker)
    async with sessionmaker() as s:
        for today in (W48, W48 + timedelta(days=6)):  # its Monday, its Sunday
            with pytest.raises(UnfinishedWeekError) as e:
                await build_digest(s, unit=w.township, week_start=W48, prefs=PREFS, today=today)
            assert "2026-W48" in str(e.value) and "\n" not in str(e.value)
        with pytest.raises(UnfinishedWeekError):
            await build_digest(s, unit=w.township, week_start=date(2099, 1, 5), prefs=PREFS, today=MON_W49.date())


def test_cli_refuses_a_future_week_with_one_line(sqlite_url, monkeypatch) -> None:
    import asyncio

    from bot.cli import main
    from storage.engine import make_engine, make_sessionmaker

    async def seed() -> None:
        eng = make_engine(sqlite_url)
        try:
            await seed_activity(make_sessionmaker(eng))
        finally:
            await eng.dispose()

    asyncio.run(seed())
    monkeypatch.setenv("BANGFU_DATABASE__URL", sqlite_url)
    res = CliRunner().invoke(main, ["digest", "--unit", "双堡镇", "--week", "2099-W01"])
    assert res.exit_code == 2, res.output
    assert res.stderr.count("\n") == 1 and "2099-W01 还没有结束" in res.stderr and not res.stdout
