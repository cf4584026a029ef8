"""`bangfu course add|list|reopen` and `bangfu roster` against a SQLite file."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

from click.testing import CliRunner
from openpyxl import load_workbook
from sqlalchemy import select

from storage import trainings as st
from storage.engine import make_engine, make_sessionmaker
from storage.models import Household, TrainingSession
from tests.conftest import FIXED_NOW
from tests.harness import seed_world


def test_course_cli(sqlite_url: str, tmp_path: Path) -> None:
    from bot.cli import main
    from bot.cli_training import COMMANDS

    for c in COMMANDS:  # the lead registers these in bot/cli.py; done here so the test stands alone
        main.add_command(c)
    cfg = tmp_path / "empty.toml"
    cfg.write_text("", encoding="utf-8")
    runner = CliRunner(env={"BANGFU_DATABASE__URL": sqlite_url, "BANGFU_CONFIG": str(cfg)})

    def cli(*args: str) -> str:
        res = runner.invoke(main, list(args), catch_exceptions=False)
        assert res.exit_code == 0, res.output
        return res.output

    out = cli("course", "add", "刺梨种植", "--start", "2030-12-05 09:00", "--place", "镇农技站", "--capacity", "40",
              "--quota-per-village", "5", "--deadline", "2030-12-01", "--eligible", "脱贫户,监测户", "--age", "18-55")
    assert "已创建培训场次 1：" in out and "签到码" in out
    bad = runner.invoke(main, ["course", "add", "电工", "--start", "2030-12-05", "--capacity", "5",
                               "--eligible", "富裕户"])
    assert bad.exit_code == 2 and "富裕户" in bad.output
    assert "刺梨种植" in cli("course", "list") and "已报 0/40" in cli("course", "list")

    async def check_and_seed() -> None:
        eng = make_engine(sqlite_url)
        sm = make_sessionmaker(eng)
        try:
            world = await seed_world(sm)
            async with sm() as s, s.begin():
                ts = (await s.execute(select(TrainingSession))).scalar_one()
                local = ts.starts_at.astimezone(FIXED_NOW.tzinfo)
                assert (local.hour, ts.capacity, ts.village_quota) == (9, 40, 5)
                assert ts.eligibility == {"htypes": ["脱贫户", "监测户"], "priority": False, "age": [18, 55]}
                assert ts.deadline is not None and ts.deadline.astimezone(FIXED_NOW.tzinfo).hour == 23
                h = (await s.execute(select(Household).where(Household.head_name == "张桂英"))).scalar_one()
                h.phone = "13712345678"
                p = st.Participant(name="张桂英", village_id=world.villages["大坝村"].id, village_name="大坝村",
                                   household_id=h.id, htype=h.htype)
                assert (await st.sign_up(s, ts_id=ts.id, participant=p, cadre_id=None, now=FIXED_NOW)).outcome \
                    == "confirmed"
                ts.deadline = FIXED_NOW - timedelta(days=1)
        finally:
            await eng.dispose()

    asyncio.run(check_and_seed())
    assert "open for sign-up until" in cli("course", "reopen", "1", "--until", "2030-12-03")

    out_file = tmp_path / "roster.xlsx"
    assert "1 rows written" in cli("roster", "1", "-o", str(out_file))
    rows = list(load_workbook(out_file).active.iter_rows(values_only=True))
    assert rows == [("姓名", "村", "户", "电话", "状态"), ("张桂英", "大坝村", "张桂英户（脱贫户）", "137****5678", "已报名")]
    cli("roster", "1", "-o", str(out_file), "--full-phones")
    assert list(load_workbook(out_file).active.iter_rows(values_only=True))[1][3] == "13712345678"
    missing = runner.invoke(main, ["roster", "99", "-o", str(out_file)])
    assert missing.exit_code == 1 and "no training session 99" in missing.output
