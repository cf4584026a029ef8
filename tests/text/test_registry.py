"""Registry resolution (exact, homophone/pinyin, typo, kinship, member, preference) and registry-aware parsing."""

from __future__ import annotations

import time

from handlers.text import HouseholdRef, Registry, parse

from .conftest import NOW

H = [
    HouseholdRef(1, "王德明", "高坡村", 4, ("王小军",)),
    HouseholdRef(2, "王德民", "茶园村", 3),
    HouseholdRef(3, "罗永富", "沙坝村", 5),
    HouseholdRef(4, "罗永福", "高坡村", 2),
    HouseholdRef(5, "王建国", "高坡村", 6),
    HouseholdRef(6, "班秀英", "沙坝村", 1),
    HouseholdRef(7, "向阳花", "岩脚村", 3),
]


def reg() -> Registry:
    return Registry(H, ["高坡村", "茶园村", "沙坝村", "岩脚村"])


def test_exact_first_then_pinyin() -> None:
    c = reg().resolve("王德明")
    assert (c[0].household.id, c[0].reason) == (1, "exact")
    assert (c[1].household.id, c[1].reason) == (2, "pinyin")  # 民 min / 明 ming merge in SW Mandarin


def test_homophone() -> None:
    c = reg().resolve("罗勇富", village="沙坝村")  # 勇 and 永 are both yong3
    assert (c[0].household.id, c[0].reason) == (3, "homophone")


def test_typo() -> None:
    c = reg().resolve("班秀华")
    assert c and (c[0].household.id, c[0].reason) == (6, "typo")


def test_kinship() -> None:
    c = reg().resolve("老王家", village="高坡村")
    assert {x.household.id for x in c} == {1, 5} and all(x.reason == "kinship" for x in c)
    c = reg().resolve("罗二哥")
    assert {x.household.id for x in c} == {3, 4}


def test_member() -> None:
    c = reg().resolve("王小军")
    assert (c[0].household.id, c[0].reason) == (1, "member")


def test_preference_order() -> None:
    r = reg()
    assert r.resolve("罗二哥", prefer_ids=frozenset({4}))[0].household.id == 4
    assert r.resolve("罗二哥", prefer_village="沙坝村")[0].household.id == 3
    # a paired household's pinyin match outranks a stranger's exact match
    assert r.resolve("王德明", prefer_ids=frozenset({2}))[0].household.id == 2


def test_registry_names_segment_and_update() -> None:
    r = reg()
    out = parse("今天去岩脚村向阳花家送了两床棉被", NOW, r)
    assert out["household_head"] == "向阳花"  # 向阳 is a common word: only the registry makes this a name
    r.update(households=[*H, HouseholdRef(8, "高山流", "高坡村", 2)])
    out = parse("今天去高坡村看了高山流，缺化肥", NOW, r)
    assert out["household_head"] == "高山流"
    assert r.resolve("高山流")[0].household.id == 8


def test_resolve_is_fast_with_13000_households() -> None:
    surn = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
    given = "德明国华建英秀兰玉芳桂香光辉文斌小军红丽萍志强永福金花春生"
    hh = []
    k = 0
    for a in surn:
        for b in given:
            for c in given:
                hh.append(HouseholdRef(k, a + b + c, f"村{k % 40}", None))
                k += 1
                if k >= 13_000:
                    break
    r = Registry(hh, [])
    t = time.perf_counter()
    for name in ("王德明", "李秀兰", "张国华", "老王家", "刘建英"):
        assert r.resolve(name)
    assert (time.perf_counter() - t) / 5 < 0.05


def test_read_name_kin_and_nicknames() -> None:
    from handlers.text.registry import NameQuery, read_name

    assert read_name("王德明") == NameQuery("name", "王德明")
    assert read_name("老王") == NameQuery("surname", "王")
    assert read_name("王二哥") == NameQuery("surname", "王")
    assert read_name("包二嬢") == NameQuery("surname", "包")
    assert read_name("杨奶奶") == NameQuery("surname", "杨", elderly=True, female=True)
    assert read_name("罗大爷") == NameQuery("surname", "罗", elderly=True, female=False)
    assert read_name("何文祥他妈") == NameQuery("relative", "何文祥")
    assert read_name("何文祥的儿子") == NameQuery("relative", "何文祥")
    assert read_name("陶小东他哥") == NameQuery("relative", "陶小东")
    assert read_name("韦老师") == NameQuery("title", "韦")  # a person met on the job, not a household
    assert read_name("王支书").kind == "title"


def test_elderly_filter_keeps_unknown_ages() -> None:
    from handlers.text.registry import age_fits, read_name

    q = read_name("杨奶奶")
    old_woman = HouseholdRef(1, "杨桂兰", "新寨村", born=1940, female=True)
    young_woman = HouseholdRef(2, "杨秀英", "高坡村", born=1982, female=True)
    old_man = HouseholdRef(3, "杨德贵", "茶园村", born=1946, female=False)
    unknown = HouseholdRef(4, "杨小芬", "茶园村")
    assert [h.id for h in (old_woman, young_woman, old_man, unknown) if age_fits(h, q, 2026)] == [1, 4]
    assert age_fits(young_woman, read_name("老杨"), 2026)


def test_kin_mentions_and_bare_villages() -> None:
    from handlers.text.registry import kin_mentions, villages_in_text

    assert kin_mentions("今天去看了老王，缺化肥") == ["老王"]
    assert kin_mentions("今天去杨奶奶家坐了坐") == ["杨奶奶"]
    assert kin_mentions("老师说今天去老家看看老人") == []
    villages = ["鲍屯村", "高坡村", "大坝村", "新村"]
    assert villages_in_text("今天去鲍屯韦国祥家", villages) == ["鲍屯村"]
    assert villages_in_text("今天去高坡村王德明家，大坝那边也去了", villages) == ["高坡村", "大坝村"]
    assert villages_in_text("今天去看了新房子", villages) == []  # a one-character stem is not a village
