"""Spreadsheets in and out: household/pairing import from .xlsx/.csv (validate everything, then one bulk
transaction) and exports of visits, households, needs and sign-ups to .xlsx/.csv with personal data masked."""

from __future__ import annotations

import csv
import io
import re
import unicodedata
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, tzinfo
from decimal import Decimal
from typing import Any, Literal

from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from handlers.xlsx import Sheet, sheets_to_csv, sheets_to_xlsx
from storage import registry
from storage.models import (
    HOUSEHOLD_TYPES,
    AuditLog,
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
from storage.registry import Counts
from storage.reports import counted_visit, raised_by_live_visit

MAX_HOUSEHOLD_SIZE = 30
MAX_DATA_ROWS = 200_000

# --- columns -------------------------------------------------------------------------------------------------

# Canonical header for each field, in template order: the generator writes exactly these.
HEADERS: dict[str, str] = {
    "district": "区县",
    "township": "乡镇",
    "village": "村",
    "group": "组",
    "head_name": "户主姓名",
    "size": "家庭人口",
    "htype": "户类型",
    "poverty_cause": "致贫原因",
    "phone": "联系电话",
    "id_number": "身份证号",
    "cadre_name": "帮扶责任人",
    "cadre_phone": "责任人电话",
    "cadre_org": "责任人单位",
    "cadre_title": "责任人职务",
}
REQUIRED = ("township", "village", "head_name")

_ALIASES: dict[str, tuple[str, ...]] = {
    "district": ("区", "县", "区县", "县区", "区/县", "县/区", "县(区)", "区(县)", "县(市、区)", "县(市区)",
                 "所属区县", "所属县区"),
    "township": ("乡镇", "乡(镇)", "镇(乡)", "乡镇(街道)", "乡(镇、街道)", "乡镇街道", "镇", "乡", "镇(街道)",
                 "乡镇名称", "所属乡镇", "乡镇/街道", "街道"),
    "village": ("村", "行政村", "村名", "村(社区)", "村(居)", "村居", "社区", "行政村(社区)", "村委会", "所属村",
                "村名称", "村/社区"),
    "group": ("组", "村民组", "村民小组", "小组", "组别", "自然村(组)", "组名", "所属组"),
    "head_name": ("户主姓名", "户主", "户主名", "户主名字", "户主姓名(必填)", "姓名(户主)"),
    "size": ("家庭人口", "人口", "人数", "家庭人数", "人口数", "家庭人口数", "户人口数", "家庭成员数", "家庭人口(人)"),
    "htype": ("户类型", "户别", "户类别", "户属性", "农户类型", "类型", "帮扶对象类型", "户籍属性"),
    "poverty_cause": ("致贫原因", "主要致贫原因", "致贫(返贫)原因", "风险类型", "返贫致贫风险", "致贫风险"),
    "phone": ("联系电话", "电话", "户主电话", "手机", "手机号", "手机号码", "联系方式", "户主联系电话", "户主手机号"),
    "id_number": ("身份证号", "身份证号码", "户主身份证号", "户主身份证号码", "证件号码", "身份证"),
    "cadre_name": ("帮扶责任人", "帮扶人", "责任人", "帮扶干部", "结对帮扶人", "帮扶责任人姓名", "包保干部",
                   "帮扶联系人", "帮扶责任人(姓名)"),
    "cadre_phone": ("责任人电话", "帮扶人电话", "帮扶责任人电话", "责任人联系电话", "帮扶干部电话",
                    "帮扶责任人联系电话", "责任人手机"),
    "cadre_org": ("责任人单位", "帮扶人单位", "帮扶责任人单位", "工作单位", "帮扶单位", "单位", "所在单位",
                  "帮扶干部单位"),
    "cadre_title": ("责任人职务", "帮扶人职务", "帮扶责任人职务", "职务", "帮扶干部职务", "职务(职级)"),
}

# Monitoring sub-types (三类户) are all 监测户 for cadence and reporting.
_HTYPE_ALIASES = {
    **{t: t for t in HOUSEHOLD_TYPES},
    "脱贫人口": "脱贫户", "已脱贫户": "脱贫户", "脱贫不稳定户": "监测户", "边缘易致贫户": "监测户",
    "突发严重困难户": "监测户", "监测对象": "监测户", "一般农户": "一般户", "普通户": "一般户", "非贫困户": "一般户",
    "低保": "低保户", "特困": "特困户", "特困供养户": "特困户",
}


def _norm_header(h: Any) -> str:
    s = unicodedata.normalize("NFKC", str(h or ""))
    s = re.sub(r"\s+", "", s).replace("（", "(").replace("）", ")").strip("*:：")
    return s.removesuffix("(必填)").removesuffix("(选填)")


ALIASES: dict[str, str] = {_norm_header(a): f for f, names in _ALIASES.items() for a in (*names, HEADERS[f])}


# --- errors and results --------------------------------------------------------------------------------------


class SpreadsheetError(Exception):
    """The file as a whole cannot be used (unreadable, unknown format, required column missing)."""


class UnknownUnitError(SpreadsheetError):
    pass


@dataclass(frozen=True, slots=True)
class RowError:
    row: int  # as the spreadsheet numbers it, header included
    message: str

    def __str__(self) -> str:
        return f"第{self.row}行: {self.message}"


class RowErrors(Exception):
    """Some rows are bad; nothing was imported."""

    def __init__(self, errors: Sequence[RowError]) -> None:
        super().__init__(f"{len(errors)} bad rows")
        self.errors = list(errors)


@dataclass(slots=True)
class ImportResult:
    rows: int = 0
    households: Counts = field(default_factory=Counts)
    cadres: Counts = field(default_factory=Counts)
    pairings: Counts = field(default_factory=Counts)
    units_created: int = 0
    warnings: list[str] = field(default_factory=list)
    dry_run: bool = False

    @property
    def changed(self) -> int:
        return self.households.changed + self.cadres.changed + self.pairings.changed + self.units_created

    def summary_lines(self) -> list[str]:
        h, c, p = self.households, self.cadres, self.pairings
        head = "试导入（未写入）/ dry run, nothing written" if self.dry_run else "导入完成 / import done"
        return [
            f"{head}: {self.rows} 行 rows",
            f"  户 households: 新增 {h.created} created, 更新 {h.updated} updated, 未变 {h.unchanged} unchanged",
            f"  帮扶责任人 cadres: 新增 {c.created} created, 更新 {c.updated} updated, 未变 {c.unchanged} unchanged",
            f"  结对 pairings: 新增 {p.created} created, 解除 {p.removed} removed, 未变 {p.unchanged} unchanged",
            f"  单位/村/组 org units: 新增 {self.units_created} created",
            f"  合计 {self.changed} changed",
        ]


# --- reading -------------------------------------------------------------------------------------------------


@dataclass(slots=True)
class Table:
    header_row: int  # 1-based spreadsheet row number of the header
    header: list[Any]
    rows: list[tuple[int, list[Any]]]  # (spreadsheet row number, cells)


def read_table(data: bytes, filename: str = "") -> Table:
    """Read the first sheet of an .xlsx, or a .csv in UTF-8 / UTF-8-BOM / GBK / GB18030 / UTF-16."""
    name = filename.lower()
    if data[:4] == b"PK\x03\x04":
        grid = _read_xlsx(data)
    elif data[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1":
        raise SpreadsheetError("这是旧版 .xls 文件，请在 Excel/WPS 中另存为 .xlsx 或 .csv 再导入 (old .xls format not supported)")
    elif name.endswith((".xlsx", ".xlsm")):
        raise SpreadsheetError("文件不是有效的 .xlsx (not a valid .xlsx file)")
    elif name.endswith((".csv", ".txt", ".tsv")) or not name or _looks_textual(data):
        grid = _read_csv(data)
    else:
        raise SpreadsheetError("无法识别的文件格式，请使用 .xlsx 或 .csv (unknown format)")
    return _find_header(grid)


def _looks_textual(data: bytes) -> bool:
    return b"\x00" not in data[:4096] or data[:2] in (b"\xff\xfe", b"\xfe\xff")


def _read_xlsx(data: bytes) -> Iterator[list[Any]]:
    from openpyxl import load_workbook

    try:
        wb = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as e:
        raise SpreadsheetError(f"无法读取 .xlsx 文件 (unreadable xlsx: {type(e).__name__})") from e
    ws = wb.worksheets[0] if wb.worksheets else None
    if ws is None:
        raise SpreadsheetError("工作簿里没有工作表 (no worksheet)")
    return _xlsx_rows(wb, ws)


def _xlsx_rows(wb: Any, ws: Any) -> Iterator[list[Any]]:
    try:
        for row in ws.iter_rows(values_only=True):
            yield list(row)
    finally:
        wb.close()


def decode_text(data: bytes) -> str:
    """WPS and Excel in China save CSV as GBK/GB18030 unless told otherwise; UTF-8 (with or without BOM) and
    Excel's "Unicode text" (UTF-16) also occur. Strict decoding in that order picks the right one: GBK text is
    almost never valid UTF-8."""
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", errors="strict")
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return data.decode("utf-16")
    for enc in ("utf-8", "gb18030"):
        try:
            return data.decode(enc)
        except UnicodeDecodeError:
            continue
    raise SpreadsheetError("无法识别文件编码，请另存为 UTF-8 或 GBK 编码的 CSV (unknown text encoding)")


def _read_csv(data: bytes) -> Iterator[list[Any]]:
    try:
        text = decode_text(data)
    except UnicodeDecodeError as e:
        raise SpreadsheetError("文件编码有误 (bad text encoding)") from e
    first = next((ln for ln in text.splitlines() if ln.strip()), "")
    delim = max(",\t;", key=first.count) if first else ","
    if first and first.count(delim) == 0:
        delim = ","
    return (list(r) for r in csv.reader(io.StringIO(text, newline=""), delimiter=delim))


def _find_header(grid: Iterable[list[Any]]) -> Table:
    # Real sheets often start with a title row ("西秀区2026年帮扶台账") or a blank line before the header.
    it = iter(grid)
    seen: list[list[Any]] = []
    header_idx = -1
    for i, row in enumerate(it):
        seen.append(row)
        hits = {ALIASES.get(_norm_header(c)) for c in row} - {None}
        if len(hits & {"township", "village", "head_name"}) >= 2:
            header_idx = i
            break
        if i >= 9:
            break
    if header_idx < 0:
        raise SpreadsheetError(
            "找不到表头：前10行里没有“乡镇”“村”“户主姓名”这样的列名 (no header row found)"
        )
    rows: list[tuple[int, list[Any]]] = []
    for n, row in enumerate(it, start=header_idx + 2):
        if any(v is not None and str(v).strip() for v in row):
            rows.append((n, row))
            if len(rows) > MAX_DATA_ROWS:
                raise SpreadsheetError(f"行数超过 {MAX_DATA_ROWS}，请分文件导入 (too many rows)")
    return Table(header_row=header_idx + 1, header=seen[header_idx], rows=rows)


def map_columns(header: Sequence[Any]) -> dict[str, int]:
    """field → column index. The first column wins when two map to the same field; unknown columns are ignored."""
    out: dict[str, int] = {}
    for i, h in enumerate(header):
        f = ALIASES.get(_norm_header(h))
        if f is not None and f not in out:
            out[f] = i
    missing = [HEADERS[f] for f in REQUIRED if f not in out]
    if missing:
        raise SpreadsheetError(f"表头缺少必填列：{'、'.join(missing)} (missing required columns)")
    return out


# --- validating ----------------------------------------------------------------------------------------------

_WS = re.compile(r"\s+")
_MOBILE = re.compile(r"1[3-9]\d{9}")
_LANDLINE = re.compile(r"0\d{9,11}")
_SPLIT_PEOPLE = re.compile(r"[、,，;；/／\s]+")
_CN_DIGITS = "零一二三四五六七八九"


@dataclass(slots=True)
class Cadre:
    name: str
    phone: str | None
    org: str | None
    title: str | None

    @property
    def key(self) -> str:
        return registry.person_key(self.name, self.phone, self.org)


@dataclass(slots=True)
class HouseholdRow:
    line: int
    district: str
    township: str
    village: str
    group: str | None
    head_name: str
    values: dict[str, Any]  # optional household fields present in the file
    cadres: list[Cadre]

    @property
    def chain(self) -> tuple[str, ...]:
        base = (self.district, self.township, self.village)
        return (*base, self.group) if self.group else base


@dataclass(slots=True)
class ParsedFile:
    rows: list[HouseholdRow]
    columns: set[str]
    data_rows: int
    warnings: list[str]


def _text(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    if isinstance(v, datetime):
        return v.date().isoformat() if v.time() == time(0) else v.isoformat(sep=" ")
    return unicodedata.normalize("NFKC", str(v)).strip()


def _name(v: Any) -> str:
    # Names are padded for alignment in many sheets ("王  明"); Chinese names contain no spaces.
    return _WS.sub("", _text(v))


def _place(v: Any) -> str:
    return _WS.sub("", _text(v))


def normalise_group(v: str) -> str:
    """"1" / "1组" / "01组" → "一组", so one group is one unit whichever way it was typed."""
    m = re.fullmatch(r"0*(\d{1,2})(组|村民组|村民小组)?", v)
    if not m:
        return v
    n = int(m.group(1))
    if n == 0:
        return v
    if n < 10:
        cn = _CN_DIGITS[n]
    else:
        tens, ones = divmod(n, 10)
        cn = ("" if tens == 1 else _CN_DIGITS[tens]) + "十" + (_CN_DIGITS[ones] if ones else "")
    return f"{cn}组"


def parse_phone(v: Any) -> str | None:
    """A mobile (11 digits) or a landline with area code, normalised; None if it does not look like one."""
    s = re.sub(r"[\s\-()（）—]", "", _text(v))
    if s.startswith("+86"):
        s = s[3:]
    elif len(s) == 13 and s.startswith("86"):
        s = s[2:]
    if _MOBILE.fullmatch(s):
        return s
    if _LANDLINE.fullmatch(s):
        area = 3 if s[1] in "12" else 4
        return f"{s[:area]}-{s[area:]}"
    return None


def parse_size(v: Any) -> int | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        n = v
    elif isinstance(v, float):
        if not v.is_integer():
            return None
        n = int(v)
    else:
        m = re.fullmatch(r"(\d{1,3})(\.0+)?\s*(人|口)?", _text(v))
        if not m:
            return None
        n = int(m.group(1))
    return n if 1 <= n <= MAX_HOUSEHOLD_SIZE else None


def _cadre_level(c: Cadre, row: HouseholdRow) -> tuple[str | None, tuple[str, ...] | None]:
    """Pairing level (district/department/township/village) and the unit a cadre belongs to, guessed from
    单位/职务. Stationed first secretaries belong to the village whatever unit sent them."""
    org, title = c.org or "", c.title or ""
    if not org and not title:
        return None, None
    village_chain = (row.district, row.township, row.village)
    township_chain = (row.district, row.township)
    level: str
    if row.village in org or re.search(r"(村委会?|村民委员会|村党?支部|村党总支|居委会|社区)$", org):
        level = "village"
    elif row.township in org or (
        not re.match(r".{0,4}?[区县市]", org)
        and re.search(r"(镇|乡|街道)(人民政府|政府|党委|办事处|.{0,8}(站|所|中心))$", org)
    ):
        level = "township"
    elif re.fullmatch(r".{0,6}?[区县](委|人民政府|政府|人大常委会|人大|政协|纪委|委员会)?", org) or (
        re.search(r"(区|县)(长|委书记|委副书记|委常委)", title)
    ):
        level = "district"
    elif org:
        level = "department"
    else:
        level = "village" if re.search(r"村|支书|主任|会计", title) else "township"
    if "第一书记" in title or "驻村" in title:
        return level, village_chain
    if level == "village":
        return level, village_chain
    if level == "township":
        return level, township_chain
    return level, (row.district,)


def _role(title: str | None) -> str:
    return "secretary" if title and "第一书记" in title else "cadre"


def _validate_row(line: int, cells: list[Any], cols: dict[str, int], district: str,
                  errors: list[RowError]) -> HouseholdRow | None:
    def get(f: str) -> Any:
        i = cols.get(f)
        return cells[i] if i is not None and i < len(cells) else None

    problems: list[str] = []
    township, village, head = _place(get("township")), _place(get("village")), _name(get("head_name"))
    dist = _place(get("district")) or district
    for label, v in (("乡镇", township), ("村", village), ("户主姓名", head)):
        if not v:
            problems.append(f"缺少{label}")
    if head and len(head) > 32:
        problems.append("户主姓名过长")
    group = normalise_group(_place(get("group"))) or None
    values: dict[str, Any] = {}
    if "size" in cols:
        raw = get("size")
        if _text(raw) == "":
            values["size"] = None
        else:
            size = parse_size(raw)
            if size is None:
                problems.append(f"家庭人口“{_text(raw)}”应为 1–{MAX_HOUSEHOLD_SIZE} 的整数")
            values["size"] = size
    if "htype" in cols:
        raw_t = _place(get("htype"))
        ht = _HTYPE_ALIASES.get(raw_t) if raw_t else None
        if raw_t and ht is None:
            problems.append(f"户类型“{raw_t}”无法识别（可填：{'、'.join(HOUSEHOLD_TYPES)}）")
        values["htype"] = ht  # empty means 一般户, decided after merging duplicate rows
    if "poverty_cause" in cols:
        pc = _text(get("poverty_cause"))
        if len(pc) > 64:
            problems.append("致贫原因超过64字")
        values["poverty_cause"] = pc or None
    if "phone" in cols:
        raw = get("phone")
        if _text(raw):
            ph = parse_phone(raw)
            if ph is None:
                problems.append(f"联系电话“{_text(raw)}”不像电话号码")
            values["phone"] = ph
        else:
            values["phone"] = None
    if "id_number" in cols:
        raw = get("id_number")
        s = _text(raw).upper()
        if isinstance(raw, float) or (isinstance(raw, int) and len(s) >= 15):
            problems.append("身份证号被存成了数字（Excel会丢失后几位），请把该列设为“文本”后重新填写")
        elif s and not registry.is_valid_id_number(s):
            problems.append("身份证号不是有效的18位号码（长度或校验位不对）")
        values["id_number"] = s or None

    cadres: list[Cadre] = []
    names = [n for n in _SPLIT_PEOPLE.split(_text(get("cadre_name"))) if n]
    if names:
        raw_phones = [p for p in re.split(r"[、,，;；/／]+", _text(get("cadre_phone"))) if p.strip()]
        phones: list[str | None] = []
        for rp in raw_phones:
            ph = parse_phone(rp)
            if ph is None:
                problems.append(f"责任人电话“{rp.strip()}”不像电话号码")
            phones.append(ph)
        if phones and len(phones) != len(names):
            problems.append(f"帮扶责任人有{len(names)}人，但责任人电话有{len(phones)}个")
            phones = []
        org = _place(get("cadre_org")) or None
        title = _place(get("cadre_title")) or None
        for i, n in enumerate(names):
            if len(n) > 32:
                problems.append(f"帮扶责任人“{n}”姓名过长")
            cadres.append(Cadre(name=n, phone=phones[i] if phones else None, org=org, title=title))
    elif _text(get("cadre_phone")):
        problems.append("填了责任人电话但没有帮扶责任人姓名")
    for label, v in (("区县", dist), ("乡镇", township), ("村", village), ("组", group or "")):
        if len(v) > 64:
            problems.append(f"{label}名称过长")

    if problems:
        errors.append(RowError(line, "；".join(problems)))
        return None
    return HouseholdRow(line=line, district=dist, township=township, village=village, group=group,
                        head_name=head, values=values, cadres=cadres)


def parse_table(table: Table, *, district: str) -> ParsedFile:
    """Validate every row; raise RowErrors listing all bad rows. Rows describing the same household (one row
    per cadre is a common layout) are merged; they must not disagree."""
    cols = map_columns(table.header)
    errors: list[RowError] = []
    by_key: dict[tuple[str, ...], HouseholdRow] = {}
    warnings: list[str] = []
    for line, cells in table.rows:
        row = _validate_row(line, cells, cols, district, errors)
        if row is None:
            continue
        key = (*row.chain[:3], row.group or "", row.head_name)
        first = by_key.get(key)
        if first is None:
            by_key[key] = row
            continue
        clash = [HEADERS[f] for f, v in row.values.items() if v is not None and first.values.get(f) not in (None, v)]
        if clash:
            errors.append(RowError(line, f"与第{first.line}行是同一户（{row.village}{row.group or ''}{row.head_name}），"
                                         f"但{'、'.join(clash)}不一致"))
            continue
        for f, v in row.values.items():
            if first.values.get(f) is None:
                first.values[f] = v
        known = {c.key for c in first.cadres}
        first.cadres.extend(c for c in row.cadres if c.key not in known)
    if errors:
        errors.sort(key=lambda e: e.row)
        raise RowErrors(errors)
    if "htype" in cols:
        for row in by_key.values():
            row.values["htype"] = row.values["htype"] or "一般户"
    return ParsedFile(rows=list(by_key.values()), columns=set(cols), data_rows=len(table.rows), warnings=warnings)


# --- importing -----------------------------------------------------------------------------------------------


async def import_spreadsheet(
    session: AsyncSession, data: bytes, filename: str = "", *, district: str,
    actor: str = "import", dry_run: bool = False,
) -> ImportResult:
    """Validate the whole file, then upsert org units, households, cadres and pairings in `session`.

    Raises SpreadsheetError (file unusable) or RowErrors (bad rows) before writing anything. The caller
    commits, or rolls back for a dry run. Columns absent from the file leave the stored values alone; an empty
    帮扶责任人 cell leaves that household's pairings alone."""
    parsed = parse_table(read_table(data, filename), district=district)
    return await import_parsed(session, parsed, actor=actor, dry_run=dry_run)


async def import_parsed(session: AsyncSession, parsed: ParsedFile, *, actor: str = "import",
                        dry_run: bool = False) -> ImportResult:
    result = ImportResult(rows=parsed.data_rows, warnings=list(parsed.warnings), dry_run=dry_run)
    chains: set[tuple[str, ...]] = {r.chain for r in parsed.rows}
    people_units: dict[str, tuple[str | None, tuple[str, ...] | None]] = {}
    people: dict[str, Cadre] = {}
    for r in parsed.rows:
        for c in r.cadres:
            first = people.get(c.key)
            if first is None:
                people[c.key] = c
                people_units[c.key] = _cadre_level(c, r)
                if people_units[c.key][1]:
                    chains.add(people_units[c.key][1] or ())
            elif (c.title and first.title and c.title != first.title) or (c.org and first.org and c.org != first.org):
                result.warnings.append(
                    f"第{r.line}行: 帮扶责任人{c.name}的单位/职务与前面不同，沿用第一次出现的"
                )
    units = await registry.ensure_units(session, chains)
    result.units_created = units.created

    hh_rows: list[dict[str, Any]] = []
    for r in parsed.rows:
        village_id = units.ids[r.chain[:3]]
        hh_rows.append({
            "natural_key": registry.household_key(village_id, r.group, r.head_name),
            "village_id": village_id, "unit_id": units.ids[r.chain], "head_name": r.head_name, **r.values,
        })
    hh = await registry.upsert_households(session, hh_rows)
    result.households = hh.counts

    person_rows: list[dict[str, Any]] = []
    has_org_info = bool({"cadre_org", "cadre_title"} & parsed.columns)
    for key, c in people.items():
        row: dict[str, Any] = {"natural_key": key, "name": c.name, "phone": c.phone}
        if "cadre_org" in parsed.columns:
            row["org_name"] = c.org
        if "cadre_title" in parsed.columns:
            row["title"] = c.title
            row["role"] = _role(c.title)
        level, chain = people_units[key]
        if has_org_info and level is not None and chain is not None:
            row["level"] = level
            row["unit_id"] = units.ids[chain]
        person_rows.append(row)
    ppl = await registry.upsert_people(session, person_rows)
    result.cadres = ppl.counts

    wanted: dict[int, set[int]] = {}
    for r, hr in zip(parsed.rows, hh_rows, strict=True):
        if r.cadres:
            wanted.setdefault(hh.ids[hr["natural_key"]], set()).update(ppl.ids[c.key] for c in r.cadres)
    result.pairings = await registry.sync_pairings(session, wanted)

    if result.changed and not dry_run:
        session.add(AuditLog(actor=actor, action="import_households", detail={
            "rows": result.rows, "households": _counts_dict(result.households),
            "cadres": _counts_dict(result.cadres), "pairings": _counts_dict(result.pairings),
            "units_created": result.units_created,
        }))
        await session.flush()
    return result


def _counts_dict(c: Counts) -> dict[str, int]:
    return {"created": c.created, "updated": c.updated, "unchanged": c.unchanged, "removed": c.removed}


# --- exporting -----------------------------------------------------------------------------------------------

ExportKind = Literal["visits", "households", "needs", "signups"]
EXPORT_KINDS: tuple[ExportKind, ...] = ("visits", "households", "needs", "signups")

NEED_STATUS = {"open": "未解决", "met": "已解决", "done": "已解决", "cancelled": "已取消", "dropped": "已取消"}
SIGNUP_STATUS = {"confirmed": "已报名", "placeholder": "占位待补名", "waitlisted": "候补", "cancelled": "已取消",
                 "attended": "已参加", "no_show": "未到"}
_ENROLLED = ("confirmed", "placeholder", "attended", "no_show")


async def resolve_unit(session: AsyncSession, name: str) -> OrgUnit:
    """The one unit called `name` ("大坝村", or "旧州镇/大坝村" to disambiguate)."""
    units = await registry.find_units_by_name(session, name)
    if not units:
        raise UnknownUnitError(f"找不到单位“{name}” (unknown unit)")
    if len(units) > 1:
        labels = []
        for u in units[:10]:
            labels.append(registry.unit_label(u, await registry.unit_ancestors(session, u)))
        raise UnknownUnitError(
            f"“{name}”有{len(units)}个同名单位，请写成 乡镇/村 的形式：{'，'.join(labels)} (ambiguous unit)"
        )
    return units[0]


def _day_start(d: date, tz: tzinfo) -> datetime:
    return datetime.combine(d, time(0), tzinfo=tz).astimezone(UTC)


def _fmt_qty(q: Decimal | None) -> str:
    if q is None:
        return ""
    s = format(q.normalize(), "f")
    return s


def _local(dt: datetime | None, tz: tzinfo) -> datetime | None:
    return dt.astimezone(tz).replace(tzinfo=None) if dt is not None else None


async def build_sheets(session: AsyncSession, kind: ExportKind, *, since: date | None = None,
                       unit: str | None = None, tz: tzinfo) -> list[Sheet]:
    """The rows of an export as plain values (dates as date/datetime in local time); phones masked,
    ID numbers never included. Raises UnknownUnitError for a unit name that matches nothing or several."""
    scope = await resolve_unit(session, unit) if unit else None
    if kind == "visits":
        return [await _visits(session, since, scope, tz)]
    if kind == "households":
        return [await _households(session, since, scope, tz)]
    if kind == "needs":
        return [await _needs(session, since, scope, tz)]
    if kind == "signups":
        return await _signups(session, since, scope, tz)
    raise ValueError(f"unknown export {kind!r}")


async def _visits(session: AsyncSession, since: date | None, scope: OrgUnit | None, tz: tzinfo) -> Sheet:
    vil, town = aliased(OrgUnit), aliased(OrgUnit)
    stmt = (
        select(Visit.id, Visit.visit_date, town.name, vil.name, Household.head_name, Visit.visit_type, Person.name,
               Visit.raw_text, Visit.outcome)
        .join(Household, Household.id == Visit.household_id)
        .join(vil, vil.id == Household.village_id)
        .outerjoin(town, town.id == vil.parent_id)
        .join(Person, Person.id == Visit.cadre_id)
        .where(Visit.deleted.is_(False))
        .order_by(Visit.visit_date, Visit.id)
    )
    if since:
        stmt = stmt.where(Visit.visit_date >= since)
    if scope is not None:
        stmt = stmt.where(registry.in_subtree(Household.unit_id, scope))
    visits = (await session.execute(stmt)).all()
    ids = [v[0] for v in visits]
    needs: dict[int, list[str]] = {}
    follow: dict[int, list[str]] = {}
    for i in range(0, len(ids), 5000):
        chunk = ids[i:i + 5000]
        for vid, item, qty, unit in (await session.execute(
            select(Need.visit_id, Need.item, Need.qty, Need.unit).where(Need.visit_id.in_(chunk)).order_by(Need.id)
        )):
            needs.setdefault(vid, []).append(f"{item}{' ' + _fmt_qty(qty) + (unit or '') if qty is not None else ''}")
        for vid, action, due, due_raw in (await session.execute(
            select(FollowUp.visit_id, FollowUp.action, FollowUp.due, FollowUp.due_raw)
            .where(FollowUp.visit_id.in_(chunk)).order_by(FollowUp.id)
        )):
            when = due.isoformat() if due else (due_raw or "")
            follow.setdefault(vid, []).append(f"{action}（{when}）" if when else action)
    rows = [
        [d, t or "", v, h, vt if outcome == "met" else f"{vt}（未遇）", cadre, "；".join(needs.get(vid, [])),
         "；".join(follow.get(vid, [])), registry.mask_personal_text(raw)]
        for vid, d, t, v, h, vt, cadre, raw, outcome in visits
    ]
    return Sheet("走访记录", ["日期", "乡镇", "村", "户主", "走访方式", "帮扶责任人", "需求", "后续", "原文"], rows)


async def _households(session: AsyncSession, since: date | None, scope: OrgUnit | None, tz: tzinfo) -> Sheet:
    vil, town, grp = aliased(OrgUnit), aliased(OrgUnit), aliased(OrgUnit)
    last = (select(Visit.household_id, func.max(Visit.visit_date).label("d"))
            .where(counted_visit()).group_by(Visit.household_id).subquery())
    open_needs = (select(Need.household_id, func.count().label("n"))
                  .where(Need.status == "open", raised_by_live_visit(Need.visit_id))
                  .group_by(Need.household_id).subquery())
    conds = [Household.status == "active"]
    if since:
        conds.append(Household.updated_at >= _day_start(since, tz))
    if scope is not None:
        conds.append(registry.in_subtree(Household.unit_id, scope))
    stmt = (
        select(Household.id, town.name, vil.name, grp.name, Household.head_name, Household.size, Household.htype,
               Household.poverty_cause, Household.phone, last.c.d, open_needs.c.n)
        .join(vil, vil.id == Household.village_id)
        .outerjoin(town, town.id == vil.parent_id)
        .outerjoin(grp, and_(grp.id == Household.unit_id, grp.level == "group"))
        .outerjoin(last, last.c.household_id == Household.id)
        .outerjoin(open_needs, open_needs.c.household_id == Household.id)
        .where(*conds)
        .order_by(town.name, vil.name, grp.name, Household.head_name, Household.id)
    )
    households = (await session.execute(stmt)).all()
    cadres: dict[int, list[str]] = {}
    pstmt = (select(Pairing.household_id, Person.name).join(Person, Person.id == Pairing.person_id)
             .join(Household, Household.id == Pairing.household_id).where(*conds).order_by(Pairing.id))
    for hid, name in (await session.execute(pstmt)):
        cadres.setdefault(hid, []).append(name)
    rows = [
        [t or "", v, g or "", head, size, htype, cause or "", registry.mask_phone(phone), "、".join(cadres.get(hid, [])),
         lastd, n or 0]
        for hid, t, v, g, head, size, htype, cause, phone, lastd, n in households
    ]
    return Sheet("帮扶户", ["乡镇", "村", "组", "户主姓名", "家庭人口", "户类型", "致贫原因", "联系电话", "帮扶责任人",
                         "最近走访", "未解决需求数"], rows)


async def _needs(session: AsyncSession, since: date | None, scope: OrgUnit | None, tz: tzinfo) -> Sheet:
    vil = aliased(OrgUnit)
    stmt = (
        select(Need.raised_on, vil.name, Household.head_name, Need.category, Need.item, Need.qty, Need.unit,
               Need.status, Need.met_at)
        .join(Household, Household.id == Need.household_id)
        .join(vil, vil.id == Household.village_id)
        .join(Visit, Visit.id == Need.visit_id)
        .where(Visit.deleted.is_(False))
        .order_by(Need.raised_on, Need.id)
    )
    if since:
        stmt = stmt.where(Need.raised_on >= since)
    if scope is not None:
        stmt = stmt.where(registry.in_subtree(Household.unit_id, scope))
    rows = []
    for raised, v, head, cat, item, qty, unit, status, met_at in (await session.execute(stmt)):
        local_met = _local(met_at, tz)
        rows.append([raised, v, head, cat, item, float(qty) if qty is not None else None, unit or "",
                     NEED_STATUS.get(status, status), local_met.date() if local_met else None])
    return Sheet("需求清单", ["登记日期", "村", "户主", "类别", "需求", "数量", "单位", "状态", "解决日期"], rows)


async def _signups(session: AsyncSession, since: date | None, scope: OrgUnit | None, tz: tzinfo) -> list[Sheet]:
    vil = aliased(OrgUnit)
    stmt = (
        select(Course.name, TrainingSession.id, TrainingSession.starts_at, TrainingSession.place,
               Signup.participant_name, func.coalesce(vil.name, Signup.village_name), Signup.phone, Signup.status,
               Person.name)
        .join(TrainingSession, TrainingSession.id == Signup.session_id)
        .join(Course, Course.id == TrainingSession.course_id)
        .outerjoin(Household, Household.id == Signup.household_id)
        .outerjoin(vil, vil.id == func.coalesce(Signup.village_id, Household.village_id))
        .outerjoin(Person, Person.id == Signup.cadre_id)
        .where(TrainingSession.status != "draft")
        .order_by(TrainingSession.starts_at, Course.name, Signup.id)
    )
    if since:
        stmt = stmt.where(TrainingSession.starts_at >= _day_start(since, tz))
    if scope is not None:
        stmt = stmt.where(registry.in_subtree(func.coalesce(Signup.village_id, Household.unit_id), scope))
    rows = []
    per_course: dict[str, dict[str, Any]] = {}
    for course, sid, starts, place, pname, v, phone, status, cadre in (await session.execute(stmt)):
        rows.append([course, _local(starts, tz), place, pname or ("（待补名）" if status == "placeholder" else ""),
                     v or "", registry.mask_phone(phone), SIGNUP_STATUS.get(status, status), cadre or ""])
        c = per_course.setdefault(course, {"sessions": set(), "enrolled": 0, "waitlisted": 0, "attended": 0})
        c["sessions"].add(sid)
        c["enrolled"] += status in _ENROLLED
        c["waitlisted"] += status == "waitlisted"
        c["attended"] += status == "attended"
    if scope is None:
        # Without a unit filter, count every session held, including those nobody signed up for.
        sstmt = (select(Course.name, TrainingSession.id).join(Course, Course.id == TrainingSession.course_id)
                 .where(TrainingSession.status.not_in(("draft", "cancelled"))))
        if since:
            sstmt = sstmt.where(TrainingSession.starts_at >= _day_start(since, tz))
        for course, sid in (await session.execute(sstmt)):
            per_course.setdefault(course, {"sessions": set(), "enrolled": 0, "waitlisted": 0, "attended": 0})[
                "sessions"].add(sid)
    summary = [[course, len(c["sessions"]), c["enrolled"], c["waitlisted"], c["attended"]]
               for course, c in sorted(per_course.items())]
    return [
        Sheet("培训报名", ["培训", "开班时间", "地点", "姓名", "村", "电话", "状态", "报名人"], rows),
        Sheet("按培训汇总", ["培训", "期数", "报名人数", "候补人数", "参加人次"], summary),
    ]


async def export_csv(session: AsyncSession, kind: ExportKind, *, since: date | None = None, unit: str | None = None,
                     tz: tzinfo) -> str:
    return sheets_to_csv(await build_sheets(session, kind, since=since, unit=unit, tz=tz))


async def export_xlsx(session: AsyncSession, kind: ExportKind, *, since: date | None = None,
                      unit: str | None = None, tz: tzinfo) -> bytes:
    return sheets_to_xlsx(await build_sheets(session, kind, since=since, unit=unit, tz=tz))
