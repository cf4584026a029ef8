"""Formula injection: a text that starts with =, +, - or @ comes back from every report path (digest workbook,
each export kind, training roster, sample data) as a plain string cell, and the CSV exports quote it."""

from __future__ import annotations

import io
from datetime import date, datetime, timedelta

import pytest
from openpyxl import load_workbook

from handlers.context import Prefs
from handlers.digest import build_digest
from handlers.spreadsheets import export_csv, export_xlsx
from handlers.trainings import roster_xlsx
from storage.models import Course, FollowUp, Household, Need, Signup, TrainingSession, Visit
from tests.conftest import TZ
from tests.harness import seed_world

EVIL = ("=cmd|' /C calc'!A0", "+SUM(1,2)", "-2+3", "@SUM(A1)")
WEEK = date(2026, 11, 23)


@pytest.fixture
async def world(sqlite_url):
    """The harness world plus one row of each kind whose text is a formula."""
    from storage.engine import make_engine, make_sessionmaker

    eng = make_engine(sqlite_url)
    sm = make_sessionmaker(eng)
    w = await seed_world(sm)
    async with sm() as s, s.begin():
        hh = w.households["王德明@大坝村"]
        cadre = w.people["李明"]
        row = await s.get(Household, hh.id)
        assert row is not None
        row.poverty_cause = EVIL[1]
        # logged inside the week: the digest counts only what was recorded by the week's end
        v = Visit(source_key="f:1", cadre_id=cadre.id, household_id=hh.id, visit_date=WEEK, raw_text=EVIL[0],
                  created_at=datetime(2026, 11, 23, 10, tzinfo=TZ))
        s.add(v)
        await s.flush()
        s.add_all([
            Need(visit_id=v.id, household_id=hh.id, category="生活物资", item=EVIL[2], raised_on=WEEK),
            FollowUp(visit_id=v.id, household_id=hh.id, action=EVIL[0], due=WEEK + timedelta(days=1)),
        ])
        course = Course(name="蜜蜂养殖")
        s.add(course)
        await s.flush()
        ts = TrainingSession(course_id=course.id, starts_at=datetime(2026, 11, 26, 9, tzinfo=TZ), place=EVIL[3])
        s.add(ts)
        await s.flush()
        s.add(Signup(session_id=ts.id, participant_name=EVIL[0], village_id=w.villages["大坝村"].id))
    yield sm, w, ts.id
    await eng.dispose()


def _cells(data: bytes) -> dict[str, tuple[str, object]]:
    """Every cell whose value is one of EVIL, by value: (data_type, value)."""
    wb = load_workbook(io.BytesIO(data))
    found: dict[str, tuple[str, object]] = {}
    for ws in wb:
        for row in ws.iter_rows():
            for c in row:
                if c.value in EVIL:  # a formula cell loads with the same text and data_type "f"
                    found[str(c.value)] = (c.data_type, c.value)
    return found


def _assert_text(data: bytes, *expected: str) -> None:
    found = _cells(data)
    for evil in expected:
        assert found.get(evil) == ("s", evil), (evil, found.get(evil))


async def test_digest_workbook_keeps_formulas_as_text(world):
    sm, w, _ = world
    async with sm() as s:
        d = await build_digest(s, unit=w.township, week_start=WEEK, prefs=Prefs(tz=TZ), today=WEEK + timedelta(days=7))
    _assert_text(d.xlsx, EVIL[0], EVIL[2])  # 逾期跟进 事项, 未解决需求 内容


@pytest.mark.parametrize(("kind", "expected"), [
    ("visits", (EVIL[0],)),
    ("households", (EVIL[1],)),
    ("needs", (EVIL[2],)),
    ("signups", (EVIL[0], EVIL[3])),
])
async def test_every_export_keeps_formulas_as_text(world, kind, expected):
    sm, _, _ = world
    async with sm() as s:
        _assert_text(await export_xlsx(s, kind, tz=TZ), *expected)
        text = await export_csv(s, kind, tz=TZ)
    for evil in expected:
        assert f"'{evil}" in text or f"\"'{evil}" in text, (evil, text)


async def test_roster_keeps_formulas_as_text(world):
    sm, _, ts_id = world
    async with sm() as s:
        _name, data, n = await roster_xlsx(s, ts_id, full_phones=True)
    assert n == 1
    _assert_text(data, EVIL[0])


def test_sample_data_keeps_formulas_as_text(tmp_path):
    from bot.sampledata import generate_rows, write_csv, write_xlsx

    rows = generate_rows(households=6, cadres=2, seed=3)
    rows[0]["户主姓名"] = EVIL[0]
    rows[1]["致贫原因"] = EVIL[2]
    data = write_xlsx(rows, tmp_path / "s.xlsx", title="西秀区帮扶花名册").read_bytes()
    _assert_text(data, EVIL[0], EVIL[2])
    wb = load_workbook(io.BytesIO(data))
    assert wb.active is not None and wb.active.freeze_panes == "A3"  # below the title and the header
    text = write_csv(rows, tmp_path / "s.csv").read_text(encoding="utf-8-sig")
    assert f"'{EVIL[2]}" in text
