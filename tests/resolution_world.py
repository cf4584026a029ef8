"""A 160-household township (双堡镇) plus an out-of-scope one (旧州镇), generated deterministically, and the
household-resolution chat cases with their expected outcomes; shared by the dispatch-level and the
cross-transport resolution tests."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.text.registry import pinyin_keys
from storage.models import Household, OrgUnit, Pairing, Person
from storage.registry import id_check_char
from tests.harness import World, add_unit

TOWNSHIP_SIZE = 160

# (key, head, township, village, group, size, birth year, female, paired cadre or None)
# Planted households the cases are about; the rest of the 160 are random fill that stays clear of them.
PLANTED: list[tuple[str, str, str, str, str, int, int, bool, str | None]] = [
    ("王德明@大坝", "王德明", "双堡镇", "大坝村", "一组", 5, 1968, False, "李明"),
    ("王德明@高坡", "王德明", "双堡镇", "高坡村", "三组", 3, 1975, False, "王芳"),
    ("张桂英@新寨", "张桂英", "双堡镇", "新寨村", "一组", 2, 1959, True, "王芳"),
    ("张桂英@鲍屯", "张桂英", "双堡镇", "鲍屯村", "二组", 4, 1970, True, None),
    ("刘玉芳@大坝二", "刘玉芳", "双堡镇", "大坝村", "二组", 3, 1980, True, "李明"),
    ("刘玉芳@大坝四", "刘玉芳", "双堡镇", "大坝村", "四组", 6, 1966, True, "李明"),
    ("罗永富@大坝", "罗永富", "双堡镇", "大坝村", "三组", 5, 1962, False, "陈刚"),
    ("罗永富@高坡", "罗永富", "双堡镇", "高坡村", "一组", 2, 1950, False, "王芳"),
    ("罗永富@黄泥湾", "罗永富", "双堡镇", "黄泥湾村", "一组", 4, 1972, False, "周局长"),
    ("韦国祥", "韦国祥", "双堡镇", "鲍屯村", "一组", 3, 1977, False, "王芳"),
    ("杨秀英", "杨秀英", "双堡镇", "高坡村", "二组", 2, 1982, True, "李明"),
    ("杨桂兰", "杨桂兰", "双堡镇", "新寨村", "二组", 1, 1940, True, None),
    ("杨德贵", "杨德贵", "双堡镇", "茶园村", "一组", 3, 1946, False, None),
    ("杨小芬", "杨小芬", "双堡镇", "黄泥湾村", "二组", 4, 1990, True, "陈刚"),
    ("何文祥", "何文祥", "双堡镇", "鲍屯村", "二组", 4, 1979, False, "王芳"),
    ("陈建华", "陈建华", "双堡镇", "新寨村", "一组", 4, 1971, False, "陈刚"),
    ("陈建化", "陈建化", "双堡镇", "鲍屯村", "一组", 3, 1965, False, None),
    ("班秀英", "班秀英", "双堡镇", "茶园村", "二组", 2, 1958, True, "陈刚"),
    ("马德忠", "马德忠", "双堡镇", "高坡村", "一组", 4, 1963, False, None),
    ("张国华", "张国华", "双堡镇", "大坝村", "一组", 5, 1973, False, "李明"),
    ("李秀兰", "李秀兰", "双堡镇", "黄泥湾村", "二组", 3, 1969, True, "周局长"),
    ("宋兰强", "宋兰强", "双堡镇", "大坝村", "三组", 4, 1976, False, None),
    ("王家贵", "王家贵", "双堡镇", "茶园村", "一组", 5, 1961, False, None),
    ("潘志强", "潘志强", "双堡镇", "黄泥湾村", "二组", 3, 1984, False, "陈刚"),
    ("周德芬", "周德芬", "双堡镇", "高坡村", "二组", 2, 1967, True, "李明"),
    ("吴光辉", "吴光辉", "双堡镇", "大坝村", "二组", 4, 1981, False, "李明"),
    ("韦小兵", "韦小兵", "双堡镇", "新寨村", "二组", 3, 1988, False, None),
    ("龙金花", "龙金花", "双堡镇", "鲍屯村", "二组", 2, 1955, True, "王芳"),
    # the other township: never offered, never described
    ("赵永贵", "赵永贵", "旧州镇", "水井村", "一组", 4, 1960, False, "赵芳"),
    ("龙德贵", "龙德贵", "旧州镇", "水井村", "二组", 3, 1966, False, "赵芳"),
    ("石大妹", "石大妹", "旧州镇", "沙坝村", "一组", 2, 1949, True, None),
    ("马德忠@旧州", "马德忠", "旧州镇", "沙坝村", "一组", 5, 1970, False, "赵芳"),
    ("韦国祥@旧州", "韦国祥", "旧州镇", "水井村", "一组", 2, 1972, False, "赵芳"),
]

VILLAGES = {
    "双堡镇": {"大坝村": 4, "高坡村": 3, "新寨村": 2, "鲍屯村": 2, "黄泥湾村": 2, "茶园村": 2},
    "旧州镇": {"水井村": 2, "沙坝村": 2},
}

# (name, role, unit: township/village or "district", ) — 周局长 is a county-bureau cadre whose lookup area
# comes only from the households he is paired with.
PEOPLE = [
    ("李明", "cadre", "双堡镇/大坝村"),
    ("王芳", "cadre", "双堡镇/高坡村"),
    ("陈刚", "cadre", "双堡镇"),
    ("周局长", "cadre", "district"),
    ("赵芳", "cadre", "旧州镇/水井村"),
]

# Names that must stay unique to the planted rows (or absent altogether): random fill avoids their sound.
NEW_NAMES = ("吴小花", "龙小燕", "田德英")
_SURNAMES = "王李张刘陈黄赵吴周徐孙朱胡郭高林宋潘梁谢曾彭"
_GIVEN = "德明国华建英秀兰玉芳桂香光辉文斌军红丽萍志强永福金花春生成友全安庭顺开会元"


def _id_number(seed: int, born: int, female: bool) -> str:
    seq = 100 + seed % 800
    seq = seq - seq % 2 + (0 if female else 1)  # the 17th digit: odd for men, even for women
    first17 = f"520402{born:04d}0{1 + seed % 9}1{seed % 9}{seq:03d}"
    return first17 + id_check_char(first17)


@dataclass
class Township:
    world: World
    ids: dict[str, int] = field(default_factory=dict)  # planted key -> household id


def _fill_names(rng: random.Random, n: int, avoid: set[str]) -> list[str]:
    out: list[str] = []
    while len(out) < n:
        name = rng.choice(_SURNAMES) + rng.choice(_GIVEN) + rng.choice(_GIVEN)
        key = pinyin_keys(name)[1]
        if key in avoid or name[1] == name[2]:
            continue
        avoid.add(key)
        out.append(name)
    return out


async def seed_township(sm: async_sessionmaker[AsyncSession]) -> Township:
    rng = random.Random(20261207)
    async with sm() as s, s.begin():
        d = await add_unit(s, "西秀区", "district", None)
        units: dict[str, OrgUnit] = {}
        for town, villages in VILLAGES.items():
            t = await add_unit(s, town, "township", d)
            units[town] = t
            for vname, groups in villages.items():
                v = await add_unit(s, vname, "village", t)
                units[f"{town}/{vname}"] = v
                for num in "一二三四"[:groups]:
                    units[f"{town}/{vname}/{num}组"] = await add_unit(s, f"{num}组", "group", v)
        people = {}
        for name, role, unit in PEOPLE:
            u = d if unit == "district" else units[unit]
            people[name] = Person(natural_key=f"{name}|test", name=name, role=role, unit_id=u.id)
        s.add_all(people.values())
        await s.flush()

        rows: list[tuple[str, Household, str | None]] = []
        for k, (key, head, town, village, group, size, born, female, cadre) in enumerate(PLANTED):
            v, g = units[f"{town}/{village}"], units[f"{town}/{village}/{group}"]
            h = Household(natural_key=f"{v.id}|{group}|{head}", village_id=v.id, unit_id=g.id, head_name=head,
                          size=size, htype="脱贫户", id_number=_id_number(k, born, female))
            rows.append((key, h, cadre))
        avoid = {pinyin_keys(p[1])[1] for p in PLANTED} | {pinyin_keys(n)[1] for n in NEW_NAMES}
        avoid |= {pinyin_keys(n)[1] for n in ("韦国相", "陈建华", "杨秀银", "周德分", "张过华", "罗勇富", "班秀华")}
        n_fill = TOWNSHIP_SIZE - sum(1 for p in PLANTED if p[2] == "双堡镇")
        fill_villages = [(vn, gs) for vn, gs in VILLAGES["双堡镇"].items()]
        for k, name in enumerate(_fill_names(rng, n_fill + 24, avoid)):
            town = "双堡镇" if k < n_fill else "旧州镇"
            vn, gs = fill_villages[k % len(fill_villages)] if town == "双堡镇" else (
                ("水井村", 2) if k % 2 else ("沙坝村", 2))
            group = "一二三四"[rng.randrange(gs)] + "组"
            v, g = units[f"{town}/{vn}"], units[f"{town}/{vn}/{group}"]
            born = rng.randrange(1935, 1998)
            female = rng.random() < 0.4
            h = Household(natural_key=f"{v.id}|{group}|{name}", village_id=v.id, unit_id=g.id, head_name=name,
                          size=rng.randrange(1, 8), htype=rng.choice(("脱贫户", "监测户", "一般户")),
                          id_number=_id_number(1000 + k, born, female))
            # random fill is paired with the colleagues (or nobody), never with the cadres who send the cases
            cadre = ("王芳", "陈刚", None)[k % 3] if town == "双堡镇" else "赵芳"
            rows.append((f"fill{k}", h, cadre))
        s.add_all([h for _, h, _ in rows])
        await s.flush()
        for _, h, cadre in rows:
            if cadre is not None:
                s.add(Pairing(person_id=people[cadre].id, household_id=h.id))
        hs = {key: h for key, h, _ in rows}
        world = World(d, units["双堡镇"], {k: u for k, u in units.items() if u.level == "village"}, people, hs)
        return Township(world, {key: h.id for key, h, _ in rows})


Kind = Literal["top1", "ask", "outside", "new"]


@dataclass(frozen=True)
class Case:
    text: str
    kind: Kind
    expect: tuple[str, ...] = ()  # planted keys: the household (top1) or every namesake (ask)
    sender: str = "李明"


CASES: list[Case] = [
    # the sender's own households, exact names
    Case("今天去大坝村张国华家，5口人，缺棉被两床", "top1", ("张国华",)),
    Case("今天去张国华家看了，缺化肥3袋", "top1", ("张国华",)),
    Case("今天去周德芬家，缺米", "top1", ("周德芬",)),
    Case("今天去吴光辉家，缺大米两袋", "top1", ("吴光辉",)),
    Case("今天去杨秀英家，缺化肥", "top1", ("杨秀英",)),
    # namesakes: the pairing decides when exactly one is the sender's; a village named decides
    Case("今天去王德明家，缺米", "top1", ("王德明@大坝",)),
    Case("昨天去看了王德明，他家缺化肥2袋", "top1", ("王德明@大坝",)),
    Case("今天去高坡村王德明家，缺化肥", "top1", ("王德明@高坡",)),
    Case("今天去高坡王德明家看了看，房子漏雨", "top1", ("王德明@高坡",)),
    Case("今天去罗永富家，缺化肥", "top1", ("罗永富@黄泥湾",), "周局长"),
    Case("今天去黄泥湾村罗永富家，缺米", "top1", ("罗永富@黄泥湾",), "周局长"),
    Case("今天去罗永富家看了，缺棉被", "top1", ("罗永富@高坡",), "王芳"),
    Case("今天去张桂英家，缺棉被", "top1", ("张桂英@新寨",), "王芳"),
    Case("今天去鲍屯村张桂英家，缺米", "top1", ("张桂英@鲍屯",)),
    # households of the township outside the sender's pairing and village
    Case("今天去韦国祥家，缺棉被", "top1", ("韦国祥",)),
    Case("今天去鲍屯韦国祥家，房子漏雨", "top1", ("韦国祥",)),
    Case("今天去陈建华家，缺米两袋", "top1", ("陈建华",)),
    Case("今天去陈建化家看了", "top1", ("陈建化",)),
    Case("今天去马德忠家，缺化肥", "top1", ("马德忠",)),
    Case("今天去宋兰强家，4口人", "top1", ("宋兰强",)),
    Case("今天去茶园村王家贵家，缺米", "top1", ("王家贵",)),
    Case("今天去潘志强家了，缺化肥", "top1", ("潘志强",)),
    Case("今天去韦小兵家，缺棉被", "top1", ("韦小兵",)),
    Case("今天去李秀兰家看了", "top1", ("李秀兰",), "周局长"),
    Case("今天去黄泥湾村李秀兰家，缺米", "top1", ("李秀兰",)),
    # homophones and typos
    Case("今天去韦国相家，缺米", "top1", ("韦国祥",)),
    Case("今天去杨秀银家看了，缺化肥", "top1", ("杨秀英",)),
    Case("今天电话回访了周德分，一切正常", "top1", ("周德芬",)),
    Case("今天去张过华家，缺米", "top1", ("张国华",)),
    Case("今天去班秀华家，缺棉被", "top1", ("班秀英",)),
    # kin terms and nicknames
    Case("今天去看了杨奶奶，身体还好，缺棉被", "top1", ("杨桂兰",)),
    Case("今天去何文祥他妈家，缺棉被", "top1", ("何文祥",)),
    Case("今天去看了何文祥的儿子，家里缺米", "top1", ("何文祥",)),
    Case("今天去看了老王，缺化肥", "top1", ("王德明@大坝",)),
    Case("今天去龙金花家，缺米", "top1", ("龙金花",)),
    # must ask, listing every namesake
    Case("今天去张桂英家，缺化肥", "ask", ("张桂英@新寨", "张桂英@鲍屯")),
    Case("今天去刘玉芳家，缺米", "ask", ("刘玉芳@大坝二", "刘玉芳@大坝四")),
    Case("今天去大坝村刘玉芳家，缺化肥", "ask", ("刘玉芳@大坝二", "刘玉芳@大坝四")),
    Case("今天去罗永富家，缺化肥", "ask", ("罗永富@大坝", "罗永富@高坡", "罗永富@黄泥湾")),
    Case("今天去罗勇富家看了，缺米", "ask", ("罗永富@大坝", "罗永富@高坡", "罗永富@黄泥湾")),
    Case("今天去张桂英家看了看", "ask", ("张桂英@新寨", "张桂英@鲍屯"), "周局长"),
    Case("今天去王德明家，缺棉被", "ask", ("王德明@大坝", "王德明@高坡"), "陈刚"),
    # names that exist only in the other township
    Case("今天去赵永贵家，缺米", "outside"),
    Case("今天去水井村龙德贵家，缺化肥", "outside"),
    Case("今天去石大妹家看了", "outside", (), "周局长"),
    # truly new names: offering to add them is right
    Case("今天去大坝村吴小花家，3口人，缺米", "new"),
    Case("今天去新寨村龙小燕家看了", "new"),
    Case("今天去高坡村田德英家，缺化肥", "new"),
]
