"""Weekly digests and two-day bulletins: the SQL aggregates on a small known world, scope, privacy of
group messages, the PNG/XLSX attachments, once-only sends and `bangfu digest`."""

from __future__ import annotations

import asyncio
import io
import warnings
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from handlers.context import Prefs
from handlers.digest import build_digest, bulletins, iso_week, parse_week, previous_week, weekly_digests
from storage.models import (
    ChatGroup,
    ChatIdentity,
    Course,
    FollowUp,
    Need,
    OutboxMessage,
    Person,
    SendLedger,
    Signup,
    TrainingSession,
    Visit,
)
from tests.conftest import TZ
from tests.harness import World, seed_world

PREFS = Prefs(tz=TZ)
W48 = date(2026, 11, 23)  # Monday of 2026-W48
W47 = W48 - timedelta(days=7)
MON_W49 = datetime(2026, 11, 30, 8, 30, tzinfo=TZ)


async def seed_activity(sm) -> World:
    """双堡镇 (大坝村, 高坡村) and 旧州镇 (水井村); visits in W47 and W48, needs, follow-ups, a training."""
    w = await seed_world(sm)
    p, h = w.people, w.households
    n = iter(range(1, 10_000))
    async with sm() as s, s.begin():
        def v(hh: str, day: date, cadre: str = "李明", deleted: bool = False) -> Visit:
            # Logged the evening of the visit, as the bot would record it (created_at is "known since").
            at = datetime.combine(day, datetime.min.time(), TZ).replace(hour=19).astimezone(UTC)
            x = Visit(source_key=f"d:{next(n)}", cadre_id=p[cadre].id, household_id=h[hh].id, visit_date=day,
                      deleted=deleted, created_at=at, updated_at=at)
            s.add(x)
            return x

        # W48: 4 visits to 3 双堡镇 households (+1 deleted, +1 in 旧州镇); W47: 2 visits.
        a = v("王德明@大坝村", W48)
        b = v("王德明@大坝村", W48 + timedelta(days=2))
        c = v("马德忠", W48 + timedelta(days=6))
        v("张桂英", W48 + timedelta(days=1))
        v("张桂英", W48 + timedelta(days=3), deleted=True)
        v("韦国祥", W48 + timedelta(days=1), cadre="赵芳")
        old = v("王德明@高坡村", W47 + timedelta(days=4))
        v("马德忠", W47)
        await s.flush()
        met_at = datetime(2026, 11, 26, 15, tzinfo=TZ).astimezone(UTC)
        s.add_all([
            Need(visit_id=a.id, household_id=a.household_id, category="生活物资", item="棉被", raised_on=W48),
            Need(visit_id=b.id, household_id=b.household_id, category="医疗", item="慢病药", raised_on=W48,
                 status="met", met_at=met_at),
            Need(visit_id=old.id, household_id=old.household_id, category="住房", item="屋顶漏雨",
                 raised_on=W47 + timedelta(days=4)),
            FollowUp(visit_id=old.id, household_id=old.household_id, action="联系施工队", due=W48 + timedelta(days=2)),
            FollowUp(visit_id=c.id, household_id=c.household_id, action="复查", due=W48 + timedelta(days=20)),
        ])
        course = Course(name="蜜蜂养殖")
        s.add(course)
        await s.flush()
        ts = TrainingSession(course_id=course.id, starts_at=datetime(2026, 11, 26, 9, tzinfo=TZ), place="镇政府")
        s.add(ts)
        await s.flush()
        vill = w.villages
        signed = datetime(2026, 11, 20, 10, tzinfo=TZ)  # W47: sign-ups made before the week of the session
        s.add_all([
            Signup(session_id=ts.id, participant_name="甲", village_id=vill["大坝村"].id, status="attended",
                   created_at=signed),
            Signup(session_id=ts.id, participant_name="乙", village_id=vill["高坡村"].id, status="no_show",
                   created_at=signed),
            Signup(session_id=ts.id, participant_name="丙", village_id=vill["大坝村"].id, status="cancelled",
                   created_at=datetime(2026, 11, 24, 10, tzinfo=TZ)),
            Signup(session_id=ts.id, participant_name="丁", village_id=vill["水井村"].id, status="attended",
                   created_at=signed),
        ])
        s.add(ChatIdentity(person_id=p["周督查"].id, channel="telegram", external_id="sup", chat_id="chat-sup"))
    return w


def test_weeks():
    assert iso_week(W48) == "2026-W48" and parse_week("2026-W48") == W48 and parse_week("2026w48") == W48
    assert previous_week(MON_W49.date()) == W48
    assert previous_week(date(2026, 11, 29)) == W47  # a Sunday is still inside W48
    with pytest.raises(ValueError):
        parse_week("2026-48")


async def test_digest_figures_for_a_township(sessionmaker):
    w = await seed_activity(sessionmaker)
    async with sessionmaker() as s:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a missing CJK glyph is a warning: fail on it
            d = await build_digest(s, unit=w.township, week_start=W48, prefs=PREFS, today=MON_W49.date())
    st = d.stats
    assert (st.visits, st.visits_prev, st.households_visited) == (4, 2, 3)
    assert st.daily == [1, 1, 1, 0, 0, 0, 1] and st.daily_prev == [1, 0, 0, 0, 1, 0, 0]
    # 4 households in 双堡镇; at Sunday's end 王德明@高坡村 (脱贫户, 30d) was visited 9 days ago: not due;
    # 马德忠 (监测户, 7d) visited that Sunday: not due; all four covered.
    assert (st.households, st.households_due) == (4, 0)
    assert [(u.name, u.households, u.visited, u.due) for u in st.by_unit] == [("大坝村", 2, 2, 0), ("高坡村", 2, 1, 0)]
    assert st.needs == {"生活物资": (1, 0, 1), "医疗": (1, 1, 0), "住房": (0, 0, 1)}
    assert st.oldest_needs[0][1:4] == ("住房", "屋顶漏雨", "高坡村")
    assert st.overdue_followups == 1
    assert (st.trainings_held, st.signups, st.attended) == (1, 2, 1)  # 水井村 is 旧州镇's; cancelled isn't one
    assert "走访 4 户次（上周 2，↑100%），走到 3 户" in d.text
    assert "最久未解决：住房·屋顶漏雨（高坡村，" in d.text
    assert "王德明" not in d.text and "1391234" not in d.text
    assert d.png[:8] == b"\x89PNG\r\n\x1a\n"
    from openpyxl import load_workbook

    wb = load_workbook(io.BytesIO(d.xlsx))
    assert {"概况", "村", "到期未访农户", "逾期跟进", "未解决需求"} <= set(wb.sheetnames)
    rows = list(wb["逾期跟进"].iter_rows(values_only=True))
    assert rows[1][1:5] == ("高坡村", "王德明", "联系施工队", "李明")
    all_cells = " ".join(str(c) for ws in wb for r in ws.iter_rows(values_only=True) for c in r if c)
    assert "13912345678" not in all_cells and "520402" not in all_cells


@pytest.fixture
async def lite_sm(sqlite_url):
    """SQLite only, for tests whose SQL the PostgreSQL runs of the others already cover."""
    from storage.engine import make_engine, make_sessionmaker

    eng = make_engine(sqlite_url)
    yield make_sessionmaker(eng)
    await eng.dispose()


async def test_district_digest_counts_both_townships_and_due_households(lite_sm):
    sessionmaker = lite_sm
    w = await seed_activity(sessionmaker)
    async with sessionmaker() as s:
        d = await build_digest(s, unit=w.district, week_start=W48 + timedelta(days=35), prefs=PREFS)
    st = d.stats
    assert st.visits == 0 and st.households == 5
    assert [u.name for u in st.by_unit] == ["双堡镇", "旧州镇"]
    # Five weeks on, every household is past its cadence except none: all 5 due.
    assert st.households_due == 5 and [u.due for u in st.by_unit] == [4, 1]
    assert len(d.detail.due_households) == 5


async def test_weekly_digest_goes_to_each_supervisor_once(sessionmaker):
    w = await seed_activity(sessionmaker)
    async with sessionmaker() as s, s.begin():  # a second supervisor of the same township, and one unbound
        twin = Person(natural_key="吴督查|x", name="吴督查", role="supervisor", unit_id=w.township.id)
        s.add_all([twin, Person(natural_key="无号|x", name="无号", role="supervisor", unit_id=w.township.id)])
        await s.flush()
        s.add(ChatIdentity(person_id=twin.id, channel="wecom", external_id="wu", chat_id="wu"))
    async with sessionmaker() as s, s.begin():
        assert await weekly_digests(s, now=MON_W49, prefs=PREFS) == 2
    async with sessionmaker() as s, s.begin():
        assert await weekly_digests(s, now=MON_W49 + timedelta(hours=2), prefs=PREFS) == 0
    async with sessionmaker() as s:
        out = list((await s.execute(select(OutboxMessage).order_by(OutboxMessage.id))).scalars())
        led = list((await s.execute(select(SendLedger))).scalars())
    assert [(r.chat_id, r.file_kind) for r in out] == [
        ("chat-sup", None), ("chat-sup", "photo"), ("chat-sup", "document"),
        ("wu", None), ("wu", "photo"), ("wu", "document")]
    assert not any(r.is_group for r in out)
    assert out[0].payload["text"].startswith("📊 双堡镇 帮扶周报 2026-W48")
    assert {(x.kind, x.period) for x in led} == {("weekly_digest", "2026-W48")} and len(led) == 2


async def test_bulletin_totals_only_to_bulletin_groups_and_robots(sessionmaker):
    w = await seed_activity(sessionmaker)
    async with sessionmaker() as s, s.begin():
        s.add_all([ChatGroup(channel="telegram", chat_id="-100", title="双堡镇群", unit_id=w.township.id),
                   ChatGroup(channel="telegram", chat_id="-300", title="闲聊群", bulletins=False)])
    now = datetime(2026, 11, 27, 9, tzinfo=TZ)  # three days: covers Tue 24 – Thu 26
    async with sessionmaker() as s, s.begin():
        assert await bulletins(s, now=now, prefs=PREFS, days=3, robots=["区群"]) == 2
    async with sessionmaker() as s, s.begin():
        assert await bulletins(s, now=now, prefs=PREFS, days=3, robots=["区群"]) == 0
    async with sessionmaker() as s:
        out = {r.chat_id: r for r in (await s.execute(select(OutboxMessage))).scalars()}
    assert set(out) == {"-100", "robot:区群"} and all(r.is_group for r in out.values())
    town, robot = out["-100"].payload["text"], out["robot:区群"].payload["text"]
    assert town.startswith("📢 双堡镇 帮扶通报（11月24日–11月26日）")
    assert "走访 2 户次，走到 2 户" in town  # 张桂英 on the 24th, 王德明@大坝村 on the 25th
    assert "需求新增 0 条，解决 1 条" in town  # the medicine, met on the 26th
    assert "按期走访覆盖 75%（共 4 户）" in town  # 马德忠 (监测户) last seen the 16th
    assert "培训 1 场，报名 2 人，到场 1 人" in town
    assert "走访 3 户次" in robot  # the robot sees the whole deployment, 旧州镇 too
    for t in (town, robot):
        assert not any(name in t for name in ("王德明", "马德忠", "张桂英", "韦国祥", "李明", "赵芳", "大坝村"))


def test_cli_digest_prints_and_writes_files(sqlite_url, tmp_path, monkeypatch):
    from click.testing import CliRunner

    from bot.cli import main
    from bot.cli_digest import COMMANDS
    from storage.engine import make_engine, make_sessionmaker

    async def seed() -> None:
        eng = make_engine(sqlite_url)
        try:
            await seed_activity(make_sessionmaker(eng))
        finally:
            await eng.dispose()

    asyncio.run(seed())
    for c in COMMANDS:  # the lead registers these in bot/cli.py; do it here so the test stands alone
        main.add_command(c)
    monkeypatch.setenv("BANGFU_DATABASE__URL", sqlite_url)
    out_dir = tmp_path / "out"
    res = CliRunner().invoke(main, ["digest", "--unit", "双堡镇", "--week", "2026-W48", "--out", str(out_dir),
                                    "--send"])
    assert res.exit_code == 0, res.output
    assert "📊 双堡镇 帮扶周报 2026-W48" in res.stdout
    assert sorted(p.name for p in out_dir.iterdir()) == ["周报-双堡镇-2026-W48.png", "周报-双堡镇-2026-W48.xlsx"]
    assert "queued for 1 supervisor" in res.stderr
    res = CliRunner().invoke(main, ["digest", "--unit", "双堡镇", "--week", "2026-W48", "--out", str(out_dir),
                                    "--send"])
    assert res.exit_code == 0 and "nothing queued" in res.stderr
    res = CliRunner().invoke(main, ["digest", "--unit", "无此镇", "--week", "2026-W48"])
    assert res.exit_code == 2 and "找不到单位" in res.stderr
    assert Path(out_dir).exists()
