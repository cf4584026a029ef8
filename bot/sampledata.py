"""A deterministic (seeded) generator of an invented but realistic Guizhou district register: townships,
villages, groups, households and their cadres at four levels, as rows with the import's Chinese headers.

Every person, phone and ID number here is invented. ID numbers use the area code 520499, which no county
has, so a generated number can never be a real person's."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from bot.config import DEFAULT_DISTRICT
from handlers.xlsx import Sheet, sheet_to_csv_text, sheets_to_xlsx

DISTRICT = DEFAULT_DISTRICT

# Township names in the style of (and partly taken from) 西秀区's real townships.
TOWNSHIPS = (
    "双堡镇", "旧州镇", "七眼桥镇", "大西桥镇", "蔡官镇", "轿子山镇", "宁谷镇", "幺铺镇", "宋旗镇", "龙宫镇",
    "东屯乡", "岩腊乡", "刘官乡", "黄腊乡", "鸡场乡", "杨武乡", "新场乡", "大屯乡",
)
# Village names are built from these: a qualifier and a landform/settlement word, as in 大坝村 or 石门寨村.
VILLAGE_HEADS = (
    "大", "小", "新", "老", "上", "下", "中", "高", "黄", "白", "红", "青", "石", "水", "龙", "杨", "松", "竹",
    "茶", "凉", "马", "牛", "羊", "鸡", "猫", "金", "桃", "杉", "沙", "岩", "坡", "河", "板", "营", "余", "鲍",
)
VILLAGE_TAILS = (
    "坝", "寨", "屯", "堡", "坡", "冲", "湾", "井", "关", "哨", "营", "旗", "场", "田", "山", "岩", "桥", "庄",
    "林", "塘", "院", "园", "洞", "水", "头", "口",
)
VILLAGE_CLASSICS = (
    "大坝村", "高坡村", "水井村", "茶园村", "红岩村", "石门村", "新寨村", "老寨村", "青山村", "白岩村", "龙井村",
    "杨柳村", "竹林村", "松林村", "凉水村", "河湾村", "坡脚村", "田坝村", "半坡村", "沙坝村", "马场村", "羊场村",
    "岩脚村", "槽子村", "营盘村", "哨上村", "鲍家屯村", "云山屯村", "本寨村", "九溪村",
)
GROUP_NAMES = ("一组", "二组", "三组", "四组", "五组", "六组", "七组", "八组", "九组", "十组", "十一组", "十二组")

# Common in the province, including the Buyi (韦 班 蒙 卢 陆) and Miao (龙 杨 潘 吴 石) surnames; weights rough.
SURNAMES = (
    ("王", 9), ("李", 8), ("张", 7), ("刘", 6), ("陈", 6), ("杨", 7), ("黄", 4), ("吴", 5), ("罗", 4), ("韦", 3),
    ("潘", 3), ("龙", 3), ("周", 3), ("赵", 3), ("何", 2), ("胡", 2), ("徐", 2), ("郭", 2), ("石", 3), ("金", 1),
    ("蒙", 1), ("班", 1), ("卢", 2), ("陆", 2), ("汪", 2), ("田", 2), ("宋", 1), ("付", 1), ("邓", 2), ("冯", 1),
)
GIVEN_FIRST = (
    "德", "国", "正", "永", "光", "兴", "小", "秀", "桂", "玉", "志", "建", "明", "成", "启", "家", "廷", "应",
    "朝", "忠", "世", "开", "学", "文", "海", "天", "绍", "仕", "春", "金", "长", "红", "会", "兰", "俊", "祖",
)
GIVEN_SECOND = (
    "明", "华", "勇", "福", "荣", "旺", "芳", "英", "兰", "梅", "强", "国", "亮", "林", "发", "贵", "富", "祥",
    "忠", "军", "平", "安", "春", "云", "辉", "刚", "才", "美", "珍", "琴", "莲", "武", "友", "江", "清", "菊",
)

HOUSEHOLD_TYPES = (("脱贫户", 55), ("监测户", 12), ("一般户", 29), ("低保户", 3), ("特困户", 1))
POVERTY_CAUSES = (
    ("因病", 24), ("因残", 14), ("因学", 10), ("缺劳力", 12), ("缺技术", 12), ("缺资金", 12), ("因灾", 4),
    ("交通条件落后", 4), ("自身发展动力不足", 5), ("缺土地", 3),
)
HOUSEHOLD_SIZES = ((1, 6), (2, 14), (3, 20), (4, 24), (5, 18), (6, 10), (7, 5), (8, 3))

DEPARTMENTS = (
    "区教育局", "区卫生健康局", "区农业农村局", "区人力资源和社会保障局", "区财政局", "区水务局", "区交通运输局",
    "区住房和城乡建设局", "区民政局", "区乡村振兴局", "区自然资源局", "区市场监督管理局", "区统计局", "区审计局",
    "区林业局", "区商务局", "区医疗保障局", "区残疾人联合会", "区供销合作社", "区委组织部", "区委宣传部",
)
DEPARTMENT_TITLES = ("科员", "一级科员", "四级主任科员", "股长", "副局长", "办公室主任", "干部", "专技人员")
TOWNSHIP_TITLES = ("党委委员", "副{kind}长", "人大主席", "武装部长", "党政办主任", "农业服务中心主任", "驻村干部",
                   "干部", "组织委员", "宣传委员")
VILLAGE_TITLES = ("村党支部书记", "村委会主任", "村委委员", "村监委会主任", "村文书", "村会计", "网格员")
DISTRICT_TITLES = (("{d}委", "区委常委"), ("{d}人民政府", "副区长"), ("{d}人大常委会", "副主任"),
                   ("{d}政协", "副主席"))
LEVEL_WEIGHTS = (("district", 8), ("department", 37), ("township", 30), ("village", 25))

COLUMNS = ("乡镇", "村", "组", "户主姓名", "家庭人口", "户类型", "致贫原因", "联系电话", "身份证号", "帮扶责任人",
           "责任人电话", "责任人单位", "责任人职务")
FAKE_AREA_CODE = "520499"
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
MOBILE_PREFIXES = ("130", "131", "132", "133", "135", "136", "137", "138", "139", "150", "151", "152", "155",
                   "157", "158", "159", "166", "173", "177", "178", "180", "181", "182", "183", "185", "186",
                   "187", "188", "189", "191", "198", "199")


def _pick(rng: random.Random, weighted: Sequence[tuple[Any, int]]) -> Any:
    return rng.choices([v for v, _ in weighted], weights=[w for _, w in weighted])[0]


def person_name(rng: random.Random) -> str:
    surname: str = _pick(rng, SURNAMES)
    if rng.random() < 0.25:
        return surname + rng.choice(GIVEN_SECOND)
    return surname + rng.choice(GIVEN_FIRST) + rng.choice(GIVEN_SECOND)


def village_names(rng: random.Random, n: int) -> list[str]:
    """`n` distinct village names, classics first (shuffled), then built ones."""
    pool = list(VILLAGE_CLASSICS)
    rng.shuffle(pool)
    out: list[str] = []
    seen: set[str] = set()
    while len(out) < n:
        name = pool.pop() if pool else f"{rng.choice(VILLAGE_HEADS)}{rng.choice(VILLAGE_TAILS)}村"
        if name not in seen:
            seen.add(name)
            out.append(name)
    return out


class _Phones:
    """Invented, unique mobile numbers (and a few 0851 landlines for households)."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.used: set[str] = set()

    def mobile(self) -> str:
        while True:
            n = self.rng.choice(MOBILE_PREFIXES) + f"{self.rng.randrange(10 ** 8):08d}"
            if n not in self.used:
                self.used.add(n)
                return n

    def landline(self) -> str:
        while True:
            n = f"0851-3{self.rng.randrange(10 ** 6):06d}"
            if n not in self.used:
                self.used.add(n)
                return n


def fake_id_number(rng: random.Random) -> str:
    born = date(1938, 1, 1) + timedelta(days=rng.randrange(365 * 64))
    first17 = f"{FAKE_AREA_CODE}{born:%Y%m%d}{rng.randrange(1000):03d}"
    check = "10X98765432"[sum(int(c) * w for c, w in zip(first17, _ID_WEIGHTS, strict=True)) % 11]
    return first17 + check


def _chunk_sizes(rng: random.Random, households: int, cadres: int) -> list[int]:
    """`cadres` sizes in 3..8 summing to `households`, jittered so they are not all equal."""
    base, rem = divmod(households, cadres)
    sizes = [base + 1] * rem + [base] * (cadres - rem)
    for _ in range(cadres * 3):
        i, j = rng.randrange(cadres), rng.randrange(cadres)
        if i != j and sizes[i] > 3 and sizes[j] < 8:
            sizes[i] -= 1
            sizes[j] += 1
    rng.shuffle(sizes)
    return sizes


def _split(rng: random.Random, total: int, parts: int, spread: float = 0.4) -> list[int]:
    weights = [rng.uniform(1 - spread, 1 + spread) for _ in range(parts)]
    raw = [total * w / sum(weights) for w in weights]
    out = [max(1, int(r)) for r in raw]
    i = 0
    while sum(out) < total:
        out[i % parts] += 1
        i += 1
    while sum(out) > total:
        k = max(range(parts), key=out.__getitem__)
        out[k] -= 1
    return out


def generate_rows(households: int = 300, cadres: int = 60, villages: int | None = None, seed: int = 2026, *,
                  district: str = DISTRICT, id_numbers: bool = True,
                  include_district: bool = False) -> list[dict[str, str]]:
    """One row per household, keyed by the import's Chinese headers; every cadre pairs with 3–8 households."""
    if cadres < 1 or not 3 * cadres <= households <= 8 * cadres:
        raise ValueError(f"{households} households cannot give {cadres} cadres 3–8 households each")
    rng = random.Random(seed)
    phones = _Phones(rng)
    n_villages = villages or max(1, round(households / 45))
    n_villages = min(n_villages, households)
    n_towns = min(len(TOWNSHIPS), n_villages, math.ceil(n_villages / 12) + 2)
    towns = rng.sample(TOWNSHIPS, n_towns)
    names = village_names(rng, n_villages)
    village_list = [(towns[i % n_towns], names[i]) for i in range(n_villages)]
    village_list.sort(key=lambda tv: (towns.index(tv[0]), tv[1]))

    hh: list[dict[str, str]] = []
    for (town, village), count in zip(village_list, _split(rng, households, n_villages), strict=True):
        n_groups = max(1, min(len(GROUP_NAMES), rng.randint(3, 9), count))
        for group, gcount in zip(GROUP_NAMES, _split(rng, count, n_groups, 0.5), strict=False):
            heads: set[str] = set()
            for _ in range(gcount):
                head = person_name(rng)
                while head in heads:
                    head = person_name(rng)
                heads.add(head)
                htype = _pick(rng, HOUSEHOLD_TYPES)
                roll = rng.random()
                phone = phones.mobile() if roll < 0.85 else phones.landline() if roll < 0.92 else ""
                hh.append({
                    "乡镇": town, "村": village, "组": group, "户主姓名": head,
                    "家庭人口": str(_pick(rng, HOUSEHOLD_SIZES)), "户类型": htype,
                    "致贫原因": _pick(rng, POVERTY_CAUSES) if htype in ("脱贫户", "监测户") else "",
                    "联系电话": phone,
                    "身份证号": fake_id_number(rng) if id_numbers and rng.random() < 0.8 else "",
                })

    seen_villages: set[tuple[str, str]] = set()
    start = 0
    for size in _chunk_sizes(rng, households, cadres):
        chunk = hh[start:start + size]
        start += size
        town, village = chunk[0]["乡镇"], chunk[0]["村"]
        kind = "镇" if town.endswith("镇") else "乡"
        if (town, village) not in seen_villages:
            seen_villages.add((town, village))
            org, title = rng.choice(DEPARTMENTS), "驻村第一书记"
        else:
            level = _pick(rng, LEVEL_WEIGHTS)
            if level == "district":
                org_t, title = rng.choice(DISTRICT_TITLES)
                org = org_t.format(d=district)
            elif level == "department":
                org, title = rng.choice(DEPARTMENTS), rng.choice(DEPARTMENT_TITLES)
            elif level == "township":
                org, title = f"{town}人民政府", rng.choice(TOWNSHIP_TITLES).format(kind=kind)
            else:
                org, title = f"{village}村委会", rng.choice(VILLAGE_TITLES)
        cadre = {"帮扶责任人": person_name(rng), "责任人电话": phones.mobile(), "责任人单位": org, "责任人职务": title}
        for row in chunk:
            row.update(cadre)

    columns = COLUMNS if id_numbers else tuple(c for c in COLUMNS if c != "身份证号")
    if include_district:
        columns = ("区县", *columns)
    return [{c: (district if c == "区县" else row.get(c, "")) for c in columns} for row in hh]


def _sheet(rows: Sequence[dict[str, str]], title: str | None = None) -> Sheet:
    columns = list(rows[0]) if rows else list(COLUMNS)
    return Sheet("帮扶户", columns, [[row.get(c, "") for c in columns] for row in rows], caption=title)


def write_xlsx(rows: Sequence[dict[str, str]], path: str | Path, *, title: str | None = None) -> Path:
    """Phones and ID numbers are written as text, as they must be (Excel rounds 18-digit numbers)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(sheets_to_xlsx([_sheet(rows, title)]))
    return path


def write_csv(rows: Sequence[dict[str, str]], path: str | Path, *, encoding: str = "utf-8-sig") -> Path:
    """UTF-8 with BOM by default (what Excel/WPS open correctly); pass encoding="gbk" to mimic WPS exports."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(sheet_to_csv_text(_sheet(rows)).encode(encoding))
    return path


def csv_bytes(rows: Sequence[dict[str, str]]) -> bytes:
    """The same CSV as write_csv, in memory (UTF-8 with BOM)."""
    return sheet_to_csv_text(_sheet(rows)).encode("utf-8-sig")


def masked_rows(rows: Sequence[dict[str, str]]) -> list[dict[str, str]]:
    """The register as it may be shown or handed round: phones masked, no ID numbers at all."""
    from storage.registry import mask_phone

    return [{k: (mask_phone(v) if "电话" in k else v) for k, v in row.items() if k != "身份证号"} for row in rows]


def write_rows(rows: Sequence[dict[str, str]], path: str | Path) -> Path:
    """By suffix: .csv or .xlsx."""
    return write_csv(rows, path) if str(path).lower().endswith(".csv") else write_xlsx(rows, path)
