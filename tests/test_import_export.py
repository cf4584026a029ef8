"""Spreadsheet import (validation, idempotent re-import, header variants, encodings) and export (masking,
filters, CSV/XLSX shape), plus the `bangfu import / export / sample` commands."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from click.testing import CliRunner
from openpyxl import Workbook, load_workbook
from sqlalchemy import func, select

from bot.sampledata import generate_rows, write_csv, write_xlsx
from handlers.spreadsheets import (
    RowErrors,
    SpreadsheetError,
    UnknownUnitError,
    build_sheets,
    export_csv,
    export_xlsx,
    import_spreadsheet,
    normalise_group,
    parse_phone,
)
from storage.models import (
    Course,
    FollowUp,
    Household,
    Need,
    OrgUnit,
    Pairing,
    Person,
    Signup,
    TrainingSession,
    Visit,
)
from tests.conftest import TZ

HEADER = "乡镇,村,组,户主姓名,家庭人口,户类型,致贫原因,联系电话,身份证号,帮扶责任人,责任人电话,责任人单位,责任人职务"
SMALL_CSV = "\r\n".join([
    HEADER,
    "双堡镇,大坝村,一组,王德明,4,脱贫户,因病,13812345678,11010519491231002X,张志强,13900001111,区财政局,驻村第一书记",
    "双堡镇,大坝村,二组,李秀英,2,监测户,因残,0851-3312345,,张志强,13900001111,区财政局,驻村第一书记",
    "旧州镇,大坝村,,杨光荣,5,一般户,,15000002222,,刘文华,13700003333,旧州镇人民政府,副镇长",
    "旧州镇,水井村,1组,吴桂兰,3,,,,,刘文华,13700003333,旧州镇人民政府,副镇长",
]) + "\r\n"
ID_NUMBER = "11010519491231002X"


async def _count(session, model) -> int:
    return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def _import(session, data: bytes, name: str = "f.csv", **kw):
    kw.setdefault("district", "西秀区")
    result = await import_spreadsheet(session, data, name, **kw)
    await session.commit()
    return result


# --- import ----------------------------------------------------------------------------------------------------


async def test_import_generated_file_counts(session, tmp_path):
    rows = generate_rows(households=240, cadres=48, villages=5, seed=7)
    path = write_xlsx(rows, tmp_path / "hh.xlsx")
    result = await _import(session, path.read_bytes(), path.name)

    cadres = {(r["帮扶责任人"], r["责任人电话"]) for r in rows}
    units = (1 + len({r["乡镇"] for r in rows}) + len({(r["乡镇"], r["村"]) for r in rows})
             + len({(r["乡镇"], r["村"], r["组"]) for r in rows}))
    assert (result.households.created, result.households.updated) == (240, 0)
    assert result.cadres.created == len(cadres) == 48
    assert result.pairings.created == 240
    assert result.units_created == units
    assert await _count(session, Household) == 240
    assert await _count(session, Person) == 48
    assert await _count(session, Pairing) == 240
    assert await _count(session, OrgUnit) == units
    # One 第一书记 per village, and the import makes them secretaries stationed in that village.
    secretaries = (await session.scalars(select(Person).where(Person.role == "secretary"))).all()
    assert len(secretaries) == 5
    levels = dict((await session.execute(select(OrgUnit.id, OrgUnit.level))).all())
    assert {levels[p.unit_id] for p in secretaries} == {"village"}
    ids = set((await session.scalars(select(Household.id_number))).all()) - {None}
    assert ids == {r["身份证号"] for r in rows} - {""}


async def test_reimport_changes_nothing(session, tmp_path):
    rows = generate_rows(households=120, cadres=30, seed=3)
    data = write_xlsx(rows, tmp_path / "hh.xlsx").read_bytes()
    await _import(session, data, "hh.xlsx")
    stamp = datetime(2020, 1, 1, tzinfo=UTC)
    for h in (await session.scalars(select(Household))).all():
        h.updated_at = stamp
    await session.commit()

    again = await _import(session, data, "hh.xlsx")
    assert again.changed == 0
    assert (again.households.unchanged, again.cadres.unchanged, again.pairings.unchanged) == (120, 30, 120)
    assert "合计 0 changed" in again.summary_lines()[-1]
    assert await session.scalar(select(func.max(Household.updated_at))) == stamp
    assert await _count(session, Household) == 120


async def test_reimport_with_edits_counts_only_the_edits(session):
    await _import(session, SMALL_CSV.encode())
    edited = (SMALL_CSV.replace("王德明,4,", "王德明,6,")
              .replace("旧州镇,水井村,1组,吴桂兰,3,,,,,刘文华,13700003333,旧州镇人民政府,副镇长",
                       "旧州镇,水井村,1组,吴桂兰,3,,,,,张志强,13900001111,区财政局,驻村第一书记"))
    res = await _import(session, edited.encode())
    assert (res.households.updated, res.households.unchanged, res.households.created) == (1, 3, 0)
    assert (res.pairings.created, res.pairings.removed, res.pairings.unchanged) == (1, 1, 3)
    assert res.cadres.changed == 0
    wu = await session.scalar(select(Household).where(Household.head_name == "吴桂兰"))
    names = (await session.scalars(
        select(Person.name).join(Pairing, Pairing.person_id == Person.id).where(Pairing.household_id == wu.id)
    )).all()
    assert names == ["张志强"]
    assert await session.scalar(select(Household.size).where(Household.head_name == "王德明")) == 6


async def test_small_file_values_land(session):
    await _import(session, SMALL_CSV.encode())
    hh = {h.head_name: h for h in (await session.scalars(select(Household))).all()}
    assert hh["王德明"].phone == "13812345678" and hh["王德明"].id_number == ID_NUMBER
    assert hh["李秀英"].phone == "0851-3312345" and hh["李秀英"].htype == "监测户"
    assert hh["吴桂兰"].htype == "一般户"  # empty cell
    group = await session.get(OrgUnit, hh["吴桂兰"].unit_id)
    assert group.name == "一组" and group.level == "group"  # "1组" normalised
    assert hh["杨光荣"].unit_id == hh["杨光荣"].village_id  # no group
    # Two different 大坝村 (one per township) are two villages.
    assert hh["王德明"].village_id != hh["杨光荣"].village_id
    people = {p.name: p for p in (await session.scalars(select(Person))).all()}
    zhang, liu = people["张志强"], people["刘文华"]
    assert zhang.role == "secretary" and zhang.org_name == "区财政局" and zhang.level == "department"
    assert (await session.get(OrgUnit, zhang.unit_id)).name == "大坝村"
    assert liu.role == "cadre" and liu.level == "township"
    assert (await session.get(OrgUnit, liu.unit_id)).name == "旧州镇"
    assert zhang.natural_key == "张志强|13900001111"


async def test_header_variants_title_row_and_extra_columns(session):
    wb = Workbook()
    ws = wb.active
    ws.append(["西秀区2026年帮扶台账"])
    ws.append([])
    ws.append(["序号", "乡（镇）", "行政村", "村民组", "户主", "人数", "户别", "电话", "帮扶人", "帮扶人电话",
               "工作单位", "职务", "备注"])
    ws.append([1, "宁谷镇", "水井村", "三组", "罗  小兵", 3, "脱贫户", 13812340000, "韦国华", "13900002222",
               "宁谷镇人民政府", "干部", "搬迁户"])
    ws.append([2, "宁谷镇", "水井村", "三组", "潘玉梅", "4人", "边缘易致贫户", "", "", "", "", "", ""])
    buf = io.BytesIO()
    wb.save(buf)
    res = await _import(session, buf.getvalue(), "台账.xlsx")
    assert res.households.created == 2 and res.cadres.created == 1 and res.pairings.created == 1
    hh = {h.head_name: h for h in (await session.scalars(select(Household))).all()}
    assert set(hh) == {"罗小兵", "潘玉梅"}
    assert hh["罗小兵"].phone == "13812340000" and hh["罗小兵"].size == 3
    assert hh["潘玉梅"].size == 4 and hh["潘玉梅"].htype == "监测户"


async def test_other_header_spellings(session):
    text = ("区县,乡镇（街道）,村名,户主名,家庭人数,联系电话,身份证号码,帮扶责任人,责任人电话,无关列\n"
            "普定县,马官镇,新寨村,王明,2,13800000000,,周杰,13900000000,x\n")
    res = await _import(session, text.encode())
    assert res.households.created == 1
    district = await session.scalar(select(OrgUnit).where(OrgUnit.level == "district"))
    assert district.name == "普定县"  # the column beats --district


async def test_one_bad_row_imports_nothing(session):
    lines = SMALL_CSV.split("\r\n")
    lines[2] = lines[2].replace(",2,监测户,", ",0,监测户,")  # spreadsheet row 3
    lines[4] = lines[4].replace("吴桂兰,3,,", "吴桂兰,3,贫困户,")  # row 5
    lines.insert(4, "旧州镇,,,,,,,1380000,110105194912310021,,,,")  # row 5, pushing 吴桂兰 to row 6
    with pytest.raises(RowErrors) as e:
        await import_spreadsheet(session, "\r\n".join(lines).encode(), "f.csv", district="西秀区")
    errs = [str(x) for x in e.value.errors]
    assert [x.row for x in e.value.errors] == [3, 5, 6]
    assert errs[0].startswith("第3行: ") and "家庭人口" in errs[0]
    assert "缺少村" in errs[1] and "缺少户主姓名" in errs[1] and "联系电话" in errs[1] and "身份证号" in errs[1]
    assert "户类型“贫困户”" in errs[2]
    await session.rollback()
    assert await _count(session, Household) == 0
    assert await _count(session, OrgUnit) == 0


@pytest.mark.parametrize(("cell", "ok"), [
    ("13812345678", True), ("138 1234 5678", True), ("+8613812345678", True), ("0851-3312345", True),
    ("12345", False), ("1381234567", False), ("23812345678", False), ("电话待补", False),
])
def test_phone_shapes(cell, ok):
    assert (parse_phone(cell) is not None) is ok


def test_group_names():
    assert [normalise_group(x) for x in ("1", "01组", "一组", "12组", "20", "大寨组")] == [
        "一组", "一组", "一组", "十二组", "二十组", "大寨组"]


async def test_duplicate_rows_merge_cadres_and_flag_conflicts(session):
    base = SMALL_CSV.split("\r\n")[:2]
    second_cadre = base[1].replace("张志强,13900001111,区财政局,驻村第一书记", "赵丽,13600001111,区教育局,科员")
    res = await _import(session, "\r\n".join([*base, second_cadre]).encode())
    assert res.households.created == 1 and res.cadres.created == 2 and res.pairings.created == 2

    clash = base[1].replace("王德明,4,", "王德明,5,")
    with pytest.raises(RowErrors) as e:
        await import_spreadsheet(session, "\r\n".join([*base, clash]).encode(), "f.csv", district="西秀区")
    assert str(e.value.errors[0]).startswith("第3行: 与第2行是同一户") and "家庭人口" in str(e.value.errors[0])


async def test_gbk_csv(session, tmp_path):
    rows = generate_rows(households=30, cadres=6, seed=11, id_numbers=False)
    path = write_csv(rows, tmp_path / "wps.csv", encoding="gbk")
    raw = path.read_bytes()
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    res = await _import(session, raw, "wps.csv")
    assert res.households.created == 30
    assert set((await session.scalars(select(Household.head_name))).all()) == {r["户主姓名"] for r in rows}
    tab_gb18030 = SMALL_CSV.replace(",", "\t").encode("gb18030")
    with pytest.raises(RowErrors):  # tab-separated and GB18030: read fine, then the same rows validate
        await import_spreadsheet(session, tab_gb18030.replace(b"\t4\t", b"\t99\t"), "x.txt", district="西秀区")


@pytest.mark.parametrize(("data", "name", "msg"), [
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 100, "old.xls", ".xls"),
    (b"PK\x03\x04 not really a zip", "x.xlsx", "xlsx"),
    (b"\x00\x01\x02\x03binary", "x.bin", "unknown format"),
    ("姓名,年龄\n王明,3\n".encode(), "x.csv", "表头"),
    ("乡镇,村,户主\n".encode("gbk").replace("户主".encode("gbk"), b"x"), "x.csv", "户主姓名"),
])
async def test_unusable_files(session, data, name, msg):
    with pytest.raises(SpreadsheetError) as e:
        await import_spreadsheet(session, data, name, district="西秀区")
    assert msg in str(e.value)


# --- export ----------------------------------------------------------------------------------------------------


async def _seed_activity(session):
    """SMALL_CSV plus visits, needs, follow-ups and one training with sign-ups."""
    await _import(session, SMALL_CSV.encode())
    hh = {h.head_name: h for h in (await session.scalars(select(Household))).all()}
    ppl = {p.name: p for p in (await session.scalars(select(Person))).all()}
    zhang, liu = ppl["张志强"], ppl["刘文华"]

    def visit(key, head, cadre, day, raw, **kw):
        v = Visit(source_key=key, cadre_id=cadre.id, household_id=hh[head].id, visit_date=day, raw_text=raw, **kw)
        session.add(v)
        return v

    v1 = visit("k1", "王德明", zhang, date(2026, 11, 1), f"王德明电话13812345678，身份证{ID_NUMBER}，缺棉被2床")
    v2 = visit("k2", "杨光荣", liu, date(2026, 11, 20), "=HYPERLINK(\"http://x\")", visit_type="电话回访")
    visit("k3", "吴桂兰", liu, date(2026, 10, 15), "已撤销", deleted=True)
    visit("k4", "李秀英", zhang, date(2026, 11, 22), "都好")
    await session.flush()
    session.add_all([
        Need(visit_id=v1.id, household_id=v1.household_id, category="生活物资", item="棉被", qty=Decimal("2.00"),
             unit="床", raised_on=date(2026, 11, 1)),
        Need(visit_id=v2.id, household_id=v2.household_id, category="医疗", item="慢病卡", raised_on=date(2026, 11, 20),
             status="met", met_at=datetime(2026, 11, 23, 17, 0, tzinfo=UTC)),  # 24 Nov in Shanghai
        FollowUp(visit_id=v1.id, household_id=v1.household_id, action="联系民政办", due=date(2026, 11, 28)),
    ])
    course = Course(name="电商培训")
    session.add(course)
    await session.flush()
    ts = TrainingSession(course_id=course.id, starts_at=datetime(2026, 12, 1, 2, 0, tzinfo=UTC), place="双堡镇政府")
    old = TrainingSession(course_id=course.id, starts_at=datetime(2026, 9, 1, 2, 0, tzinfo=UTC), place="旧州镇")
    session.add_all([ts, old])
    await session.flush()
    session.add_all([
        Signup(session_id=ts.id, participant_name="王德明", village_id=hh["王德明"].village_id,
               household_id=hh["王德明"].id, phone="13812345678", cadre_id=zhang.id),
        Signup(session_id=ts.id, participant_name="杨光荣", household_id=hh["杨光荣"].id, status="attended",
               cadre_id=liu.id),
        Signup(session_id=ts.id, status="placeholder", village_name="外村", cadre_id=liu.id),
        Signup(session_id=old.id, participant_name="吴桂兰", village_id=hh["吴桂兰"].village_id, status="attended"),
    ])
    await session.commit()


def _csv_rows(text: str) -> list[list[str]]:
    assert text.startswith("\ufeff")
    return list(csv.reader(io.StringIO(text[1:], newline="")))


async def test_export_households_csv_masks_and_omits_ids(session):
    await _seed_activity(session)
    text = await export_csv(session, "households", tz=TZ)
    assert "\r\n" in text and "\n" not in text.replace("\r\n", "")
    rows = _csv_rows(text)
    assert rows[0] == ["乡镇", "村", "组", "户主姓名", "家庭人口", "户类型", "致贫原因", "联系电话", "帮扶责任人",
                       "最近走访", "未解决需求数"]
    by_head = {r[3]: r for r in rows[1:]}
    assert len(by_head) == 4
    assert by_head["王德明"] == ["双堡镇", "大坝村", "一组", "王德明", "4", "脱贫户", "因病", "138****5678", "张志强",
                              "2026-11-01", "1"]
    assert by_head["李秀英"][7] == "0851-***2345"
    assert by_head["吴桂兰"][9] == "" and by_head["吴桂兰"][2] == "一组"  # its only visit was deleted
    assert by_head["杨光荣"][10] == "0"  # its need was met
    assert ID_NUMBER not in text and "身份证" not in text
    assert not re.search(r"1[3-9]\d{9}", text)


async def test_export_visits_filters_and_text_masking(session):
    await _seed_activity(session)
    [sheet] = await build_sheets(session, "visits", tz=TZ)
    assert sheet.headers == ["日期", "乡镇", "村", "户主", "走访方式", "帮扶责任人", "需求", "后续", "原文"]
    assert [r[3] for r in sheet.rows] == ["王德明", "杨光荣", "李秀英"]  # deleted one excluded, by date
    first = sheet.rows[0]
    assert first[:6] == [date(2026, 11, 1), "双堡镇", "大坝村", "王德明", "入户走访", "张志强"]
    assert first[6] == "棉被 2床" and first[7] == "联系民政办（2026-11-28）"
    assert "13812345678" not in first[8] and ID_NUMBER not in first[8] and "138****5678" in first[8]

    since = await build_sheets(session, "visits", since=date(2026, 11, 10), tz=TZ)
    assert [r[3] for r in since[0].rows] == ["杨光荣", "李秀英"]
    shuangbao = await build_sheets(session, "visits", unit="双堡镇", tz=TZ)
    assert [r[3] for r in shuangbao[0].rows] == ["王德明", "李秀英"]
    both = await build_sheets(session, "visits", unit="旧州镇/大坝村", since=date(2026, 11, 10), tz=TZ)
    assert [r[3] for r in both[0].rows] == ["杨光荣"]
    group = await build_sheets(session, "visits", unit="双堡镇/二组", tz=TZ)
    assert [r[3] for r in group[0].rows] == ["李秀英"]

    with pytest.raises(UnknownUnitError) as e:
        await build_sheets(session, "visits", unit="大坝村", tz=TZ)
    assert "双堡镇/大坝村" in str(e.value) and "旧州镇/大坝村" in str(e.value)
    with pytest.raises(UnknownUnitError):
        await build_sheets(session, "visits", unit="花溪村", tz=TZ)

    csv_text = await export_csv(session, "visits", tz=TZ)
    assert "'=HYPERLINK" in csv_text  # would run as a formula in Excel otherwise


async def test_export_households_unit_and_since(session):
    await _seed_activity(session)
    [sheet] = await build_sheets(session, "households", unit="旧州镇", tz=TZ)
    assert sorted(r[3] for r in sheet.rows) == ["吴桂兰", "杨光荣"]
    [future] = await build_sheets(session, "households", since=date(2099, 1, 1), tz=TZ)
    assert future.rows == []
    [past] = await build_sheets(session, "households", since=date(2000, 1, 1), tz=TZ)
    assert len(past.rows) == 4


async def test_export_needs(session):
    await _seed_activity(session)
    [sheet] = await build_sheets(session, "needs", tz=TZ)
    assert sheet.headers == ["登记日期", "村", "户主", "类别", "需求", "数量", "单位", "状态", "解决日期"]
    assert sheet.rows == [
        [date(2026, 11, 1), "大坝村", "王德明", "生活物资", "棉被", 2.0, "床", "未解决", None],
        [date(2026, 11, 20), "大坝村", "杨光荣", "医疗", "慢病卡", None, "", "已解决", date(2026, 11, 24)],
    ]
    [only] = await build_sheets(session, "needs", unit="双堡镇", tz=TZ)
    assert [r[2] for r in only.rows] == ["王德明"]
    [late] = await build_sheets(session, "needs", since=date(2026, 11, 2), tz=TZ)
    assert [r[2] for r in late.rows] == ["杨光荣"]


async def test_export_signups_and_summary(session):
    await _seed_activity(session)
    roster, summary = await build_sheets(session, "signups", since=date(2026, 11, 1), tz=TZ)
    assert roster.headers == ["培训", "开班时间", "地点", "姓名", "村", "电话", "状态", "报名人"]
    assert roster.rows[0] == ["电商培训", datetime(2026, 12, 1, 10, 0), "双堡镇政府", "王德明", "大坝村",
                              "138****5678", "已报名", "张志强"]
    assert [r[3:5] for r in roster.rows[1:]] == [["杨光荣", "大坝村"], ["（待补名）", "外村"]]
    assert summary.rows == [["电商培训", 1, 3, 0, 1]]
    _all, summary_all = await build_sheets(session, "signups", tz=TZ)
    assert summary_all.rows == [["电商培训", 2, 4, 0, 2]]
    scoped, _ = await build_sheets(session, "signups", unit="双堡镇", tz=TZ)
    assert [r[3] for r in scoped.rows] == ["王德明"]


async def test_export_xlsx_opens_with_header(session):
    await _seed_activity(session)
    data = await export_xlsx(session, "visits", tz=TZ)
    wb = load_workbook(io.BytesIO(data))
    ws = wb.worksheets[0]
    assert ws.title == "走访记录" and ws.freeze_panes == "A2"
    header = [c.value for c in ws[1]]
    assert header == ["日期", "乡镇", "村", "户主", "走访方式", "帮扶责任人", "需求", "后续", "原文"]
    assert all(c.font.bold for c in ws[1])
    assert ws.column_dimensions["I"].width > ws.column_dimensions["A"].width
    assert ws["A2"].value == datetime(2026, 11, 1) and ws["D2"].value == "王德明"
    formula = ws["I3"]
    assert formula.value.startswith("=HYPERLINK") and formula.data_type == "s"
    signups = load_workbook(io.BytesIO(await export_xlsx(session, "signups", tz=TZ)))
    assert signups.sheetnames == ["培训报名", "按培训汇总"]
    assert ID_NUMBER not in (await export_csv(session, "visits", tz=TZ))


# --- CLI -------------------------------------------------------------------------------------------------------


@pytest.fixture
def cli(db_url, tmp_path):
    from bot.cli import main

    cfg = tmp_path / "empty.toml"
    cfg.write_text("", encoding="utf-8")
    runner = CliRunner(env={"BANGFU_DATABASE__URL": db_url, "BANGFU_CONFIG": str(cfg)})

    def invoke(*args: str):
        return runner.invoke(main, list(args), catch_exceptions=False)

    return invoke


def test_cli_import_and_noop_reimport(cli, tmp_path):
    path = tmp_path / "hh.xlsx"
    write_xlsx(generate_rows(households=60, cadres=12, seed=5), path)
    first = cli("import", str(path))
    assert first.exit_code == 0, first.stderr
    assert "新增 60 created" in first.stdout
    assert not re.search(r"(?<!\d)0 changed", first.stdout)
    dry = cli("import", str(path), "--dry-run")
    assert dry.exit_code == 0 and "dry run" in dry.stdout
    second = cli("import", str(path))
    assert second.exit_code == 0
    assert re.search(r"(?<!\d)0 changed", second.stdout)
    assert "未变 60 unchanged" in second.stdout


def test_cli_dry_run_writes_nothing(cli, tmp_path):
    path = tmp_path / "hh.csv"
    path.write_text(SMALL_CSV, encoding="utf-8")
    dry = cli("import", str(path), "--dry-run")
    assert dry.exit_code == 0 and "新增 4 created" in dry.stdout
    real = cli("import", str(path))
    assert "新增 4 created" in real.stdout  # the dry run left nothing behind


def test_cli_bad_rows_exit_1(cli, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text(SMALL_CSV.replace("杨光荣,5,", "杨光荣,五十,"), encoding="utf-8-sig")
    res = cli("import", str(path))
    assert res.exit_code == 1
    assert "第4行: " in res.stderr and "nothing imported" in res.stderr
    ok = cli("import", str(tmp_path / "bad.csv").replace("bad", "missing"))
    assert ok.exit_code == 2 and "cannot read" in ok.stderr


def test_cli_unknown_format_exit_2(cli, tmp_path):
    path = tmp_path / "old.xls"
    path.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 64)
    res = cli("import", str(path))
    assert res.exit_code == 2 and ".xls" in res.stderr and len(res.stderr.strip().splitlines()) == 1


def test_cli_export(cli, tmp_path):
    path = tmp_path / "hh.csv"
    path.write_text(SMALL_CSV, encoding="utf-8")
    assert cli("import", str(path)).exit_code == 0
    out = cli("export", "households", "--format", "csv", "--unit", "旧州镇")
    assert out.exit_code == 0
    raw = out.stdout_bytes
    assert raw.startswith(b"\xef\xbb\xbf") and b"\r\n" in raw
    rows = _csv_rows(raw.decode("utf-8"))
    assert rows[0][:4] == ["乡镇", "村", "组", "户主姓名"] and sorted(r[3] for r in rows[1:]) == ["吴桂兰", "杨光荣"]
    assert "15000002222" not in raw.decode("utf-8")

    assert cli("export", "visits", "--format", "xlsx").exit_code == 2
    unknown = cli("export", "visits", "--unit", "花溪村")
    assert unknown.exit_code == 2 and "花溪村" in unknown.stderr
    target = tmp_path / "out" / "needs.xlsx"
    res = cli("export", "needs", "-o", str(target), "--since", "2026-01-01")
    assert res.exit_code == 0, res.stderr
    assert load_workbook(target).worksheets[0]["A1"].value == "登记日期"
    assert cli("export", "needs", "--since", "2026-13-01").exit_code == 2


def test_cli_sample_is_deterministic(tmp_path):
    from bot.cli import main

    runner = CliRunner()
    out = tmp_path / "s.csv"
    res = runner.invoke(main, ["sample", "-o", str(out), "--households", "50", "--cadres", "10", "--seed", "9"])
    assert res.exit_code == 0, res.output
    text = out.read_text(encoding="utf-8-sig")
    assert text.splitlines()[0] == HEADER
    again = tmp_path / "t.csv"
    runner.invoke(main, ["sample", "-o", str(again), "--households", "50", "--cadres", "10", "--seed", "9"])
    assert again.read_bytes() == out.read_bytes()
    assert runner.invoke(main, ["sample", "-o", str(out), "--households", "10", "--cadres", "10"]).exit_code == 2


def test_generator_shape():
    rows = generate_rows(households=300, cadres=60, seed=1)
    per_cadre: dict[tuple[str, str], int] = {}
    for r in rows:
        key = (r["帮扶责任人"], r["责任人电话"])
        per_cadre[key] = per_cadre.get(key, 0) + 1
    assert len(per_cadre) == 60 and min(per_cadre.values()) >= 3 and max(per_cadre.values()) <= 8
    villages = {(r["乡镇"], r["村"]) for r in rows}
    firsts = {(r["乡镇"], r["村"]) for r in rows if r["责任人职务"] == "驻村第一书记"}
    assert firsts == villages
    keys = [(r["乡镇"], r["村"], r["组"], r["户主姓名"]) for r in rows]
    assert len(set(keys)) == len(keys)
    assert rows == generate_rows(households=300, cadres=60, seed=1)
    assert rows != generate_rows(households=300, cadres=60, seed=2)
