"""Training messages in the many shapes cadres type them: withdrawals without a course, substitutions, seats held
for names still to come, questions about a course, visits that also sign someone up, and emoji in the text.

Conventions follow the dev set: a plain withdrawal lists the withdrawn people as `participants` (dev-s-004), a
substitution is a sign-up of the newcomer with `cancelled` naming the one withdrawn (dev-s-009).
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from handlers.text import FIELDS, parse

from .conftest import NOW


def p(text: str) -> dict[str, Any]:
    r = parse(text, NOW)
    assert tuple(r) == FIELDS
    return r


def one(name: str) -> dict[str, Any]:
    return {"names": [name], "count": 1}


def check(r: dict[str, Any], want: dict[str, Any]) -> None:
    got = {k: r[k] for k in want}
    assert got == want


def swap(old: str, new: str, course: str | None = None) -> dict[str, Any]:
    return {"intent": "training_signup", "secondary_intents": ["training_cancel"], "participants": one(new),
            "cancelled": {"names": [old], "count": 1, "course": course}}


# ------------------------------------------------------------------------------------------------ withdrawals
@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("苏文斌不去了", {"participants": one("苏文斌"), "course": None, "household_head": None}),
        ("韦小兵家里有事不来了", {"participants": one("韦小兵"), "course": None}),
        ("龚小红那个名额不要了", {"participants": one("龚小红"), "course": None}),
        ("帮我把郑玉兰的报名取消了", {"participants": one("郑玉兰"), "course": None}),
        ("取消苏文斌的报名", {"participants": one("苏文斌")}),
        ("姜大伟的名字划掉吧 他不学了", {"participants": one("姜大伟")}),
        ("罗德才不参加了 他去广东了", {"participants": one("罗德才"), "course": None}),
        ("郑玉兰和龚小红都不去了", {"participants": {"names": ["郑玉兰", "龚小红"], "count": 2}}),
        ("苏文斌蜜蜂养殖不去了", {"participants": one("苏文斌"), "course": "蜜蜂养殖", "course_norm": "蜜蜂养殖培训"}),
        ("水井村韦小兵退出电焊班", {"participants": one("韦小兵"), "course": "电焊班", "village": "水井村"}),
        ("马小琴的电工培训不参加了，她怀孕了", {"participants": one("马小琴"), "course": "电工培训"}),
        ("吴秀珍的月嫂那个名额退了吧", {"participants": one("吴秀珍"), "course_norm": "月嫂培训"}),
        ("吴秀珍月嫂不去了[流泪]", {"participants": one("吴秀珍"), "course": "月嫂"}),
        ("高坡村孙光辉不去挖机培训了", {"participants": one("孙光辉"), "course": "挖机培训", "village": "高坡村"}),
        ("电工培训的孙光辉退了", {"participants": one("孙光辉"), "course": "电工培训"}),
        ("孙光辉这次就不报了", {"participants": one("孙光辉"), "course": None}),
    ],
)
def test_withdrawal(text: str, want: dict[str, Any]) -> None:
    r = p(text)
    assert (r["intent"], r["secondary_intents"], r["cancelled"]) == ("training_cancel", [], None)
    check(r, want)


@pytest.mark.parametrize(
    "text",
    [
        "马德忠说医院不去了，太贵了",  # an errand, not a training
        "明天的院坝会马德忠来不了",
        "龙桂英的低保取消了，她想问为什么",
        "昨天韦国祥家的水窖修好了，原来的水管换成新的了",
        "韦国祥烧退了，精神好多了",
        "孙光辉不去医院了",
        "潘德英腿脚不好 去不了镇上",
    ],
)
def test_not_a_training_withdrawal(text: str) -> None:
    r = p(text)
    assert r["intent"] not in ("training_cancel", "training_signup") and r["cancelled"] is None


def test_visit_that_reports_a_withdrawal_stays_a_visit() -> None:
    r = p("今天去高坡村马德忠家，他说下周的电焊培训去不了了，要去浙江打工")
    assert (r["intent"], r["secondary_intents"], r["course"]) == ("visit_log", ["training_cancel"], "电焊培训")
    assert r["household_head"] == "马德忠" and r["visit_type"] == "入户走访"
    assert all("电焊培训" not in f["action"] for f in r["follow_ups"])  # his plan, not the sender's action


# ------------------------------------------------------------------------------------- names stay out of courses
@pytest.mark.parametrize(
    ("text", "names", "course", "village"),
    [
        ("帮红岩村苏文斌报蜜蜂养殖", ["苏文斌"], "蜜蜂养殖", "红岩村"),
        ("马德忠电工培训报一个", ["马德忠"], "电工培训", None),
        ("卢春花育婴员报名", ["卢春花"], "育婴员", None),
        ("岩脚村罗德才 报养牛", ["罗德才"], "养牛", "岩脚村"),
        ("帮忙给大坪村吴秀珍报个月嫂 谢谢[抱拳]", ["吴秀珍"], "月嫂", "大坪村"),
    ],
)
def test_course_boundary(text: str, names: list[str], course: str, village: str | None) -> None:
    r = p(text)
    assert r["intent"] == "training_signup"
    assert (r["participants"]["names"], r["course"], r["village"]) == (names, course, village)


# ------------------------------------------------------------------------------------------------ substitutions
@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("把韦小兵换成覃小东", swap("韦小兵", "覃小东")),
        ("韦小兵换成覃小东", swap("韦小兵", "覃小东")),
        ("韦小兵不去了，换他表哥覃小东", swap("韦小兵", "覃小东")),
        ("电工那期李四换王五", swap("李四", "王五", "电工")),
        ("王五顶替李四", swap("李四", "王五")),
        ("李四的名额给王五", swap("李四", "王五")),
        ("电焊那期潘德英换成她儿子潘小龙", swap("潘德英", "潘小龙", "电焊")),
        ("覃小东替韦小兵去电焊班", swap("韦小兵", "覃小东", "电焊班")),
        ("韦小兵的电焊名额让给覃小东", swap("韦小兵", "覃小东", "电焊")),
        ("宋大山的挖机名额给他弟宋小山", swap("宋大山", "宋小山", "挖机")),
        ("韦小兵去不了 让覃小东替他去", swap("韦小兵", "覃小东")),
        ("家政那期沙坝村卢春花退掉，换成龙桂英", swap("卢春花", "龙桂英", "家政")),
        ("茶叶加工培训 茶园村 郑玉兰退出 龚小红顶上", swap("郑玉兰", "龚小红", "茶叶加工培训")),
        ("电焊培训：韦小兵→覃小东", swap("韦小兵", "覃小东", "电焊培训")),
        ("挖机那期 孙光辉不来了 换成他弟弟孙光明", swap("孙光辉", "孙光明", "挖机")),
    ],
)
def test_substitution_forms(text: str, want: dict[str, Any]) -> None:
    check(p(text), want)


def test_relative_to_be_named_later() -> None:
    r = p("蒙开富报了养鸡，他老婆也想报，名字还没问")
    assert r["intent"] == "training_signup" and r["participants"]["count"] == 2
    named, pending = r["participants"]["names"]
    assert named == "蒙开富" and pending["ambiguous"] and pending["raw"] == "蒙开富的老婆"
    r = p("电商培训 报名 大坪村 吴秀珍 还有她老公龙德贵")
    assert r["participants"] == {"names": ["吴秀珍", "龙德贵"], "count": 2}


def test_substitution_with_newcomer_unnamed() -> None:
    r = p("电焊那期 韦小兵不去了 换成他表哥 名字我问下")
    assert r["intent"] == "training_signup" and r["cancelled"]["names"] == ["韦小兵"]
    (pending,) = r["participants"]["names"]
    assert pending["ambiguous"] and pending["raw"] == "韦小兵的表哥" and r["participants"]["count"] == 1


# ------------------------------------------------------------------------------------- seats held for names later
@pytest.mark.parametrize(
    ("text", "names", "count", "course_norm"),
    [
        ("我们组报5个 名字晚点发", [], 5, None),
        ("水井村报3个电工，名单明天给", [], 3, "电工培训"),
        ("报名家政 先占4个位置", [], 4, "家政培训"),
        ("报两个 一个是马德忠 另一个问下", ["马德忠"], 2, None),
        ("沙坝村养鸡培训报七个，名单晚点发", [], 7, "养鸡培训"),
        ("挖掘机先给我们留两个名额", [], 2, "挖掘机培训"),
        ("帮我们村报两个电工 名字明天给", [], 2, "电工培训"),
        ("育婴员培训我们村想报两个人 名字我明天问一下", [], 2, "育婴员培训"),
        ("电商培训 红岩村报4个 苏文斌 苏小梅 名单后补", ["苏文斌", "苏小梅"], 4, "电商培训"),
        ("茶园村报茶叶加工3人 郑玉兰 龚小红 还有一个明天发", ["郑玉兰", "龚小红"], 3, "茶叶加工培训"),
    ],
)
def test_placeholder_seats(text: str, names: list[str], count: int, course_norm: str | None) -> None:
    r = p(text)
    assert r["intent"] == "training_signup"
    assert r["participants"] == {"names": names, "count": count}
    assert r["course_norm"] == course_norm


# --------------------------------------------------------------------------------------------------- queries
@pytest.mark.parametrize(
    ("text", "course"),
    [
        ("刺梨培训还有名额吗", "刺梨培训"),
        ("电工班哪天开课", "电工班"),
        ("报名截止是哪天", None),
        ("挖掘机班什么时候开班", "挖掘机班"),
        ("养鸡培训在哪报名", "养鸡培训"),
        ("报名要带什么材料", None),
        ("育婴员还有名额没有？", "育婴员"),
        ("面点班什么时候截止报名", "面点班"),
    ],
)
def test_training_queries(text: str, course: str | None) -> None:
    r = p(text)
    assert (r["intent"], r["course"], r["participants"]) == ("query", course, None)


def test_call_for_lists_is_not_a_signup() -> None:
    r = p("各位，电工培训报名的把名单发我，截止周五")
    assert r["intent"] == "other" and r["course"] == "电工培训" and r["participants"] is None


# ------------------------------------------------------------------------------------- visits that sign up too
def test_visit_signs_up_unnamed_son() -> None:
    r = p("今天去马德忠家，他儿子想学电工，帮他报个名")
    assert (r["intent"], r["secondary_intents"]) == ("visit_log", ["training_signup"])
    assert (r["household_head"], r["visit_type"], r["visit_date"]) == ("马德忠", "入户走访", "2026-11-25")
    assert r["course"] == "电工" and r["course_norm"] == "电工培训"
    (son,) = r["participants"]["names"]
    assert son["ambiguous"] and son["raw"] == "马德忠的儿子"
    assert [n["category"] for n in r["needs"]] == ["就业"]


@pytest.mark.parametrize(
    ("text", "head", "names", "course"),
    [
        ("昨天电话回访水井村韦国祥，他女儿韦小燕想报家政培训，电话138****1234", "韦国祥", ["韦小燕"], "家政培训"),
        ("今天入户红岩村苏文斌家，他想参加蜜蜂养殖培训，已经帮他报上了👍", "苏文斌", ["苏文斌"], "蜜蜂养殖培训"),
        ("走访沙坝村卢春花家，4口人，她说想参加养鸡培训，给她报上了", "卢春花", ["卢春花"], "养鸡培训"),
    ],
)
def test_visit_with_signup(text: str, head: str, names: list[str], course: str) -> None:
    r = p(text)
    assert (r["intent"], r["secondary_intents"], r["household_head"]) == ("visit_log", ["training_signup"], head)
    assert (r["participants"]["names"], r["course"]) == (names, course)


def test_visit_signup_need_takes_the_trade_category() -> None:
    r = p("走访沙坝村卢春花家，4口人，她说想参加养鸡培训，给她报上了")
    assert [(n["category"], n["item"]) for n in r["needs"]] == [("产业", "养鸡")]


def test_visit_of_several_households_mentioning_signups() -> None:
    r = p("今天走访了5户，有两户说养鸡培训想报名，名字晚点发")
    assert (r["intent"], r["secondary_intents"], r["course"]) == ("visit_log", ["training_signup"], "养鸡培训")


# ------------------------------------------------------------------------------------------------------ emoji
_EMOJI = re.compile("[\U0001f000-\U0001faff\u2600-\u27bf\ufe0f]|\\[[^\\]]{1,6}\\]")


@pytest.mark.parametrize(
    "text",
    [
        "今天去沙坝村卢春花家，她老伴的降压药吃完了，我跟村医说一下👍",
        "韦国祥家水管冻裂了😭 明天叫人去修[抱拳]",
        "今天去茶园村郑玉兰家，厕所漏水😂，明天找师傅看看🙏",
        "❤️帮红岩村苏文斌报蜜蜂养殖✅[OK]",
    ],
)
def test_no_emoji_in_output(text: str) -> None:
    r = p(text)
    texts = [f["action"] for f in r["follow_ups"]] + [n["item"] for n in r["needs"]] + [
        str(r[k]) for k in ("course", "course_norm", "household_head", "village")] + [
        str(n) for n in (r["participants"] or {}).get("names", [])]
    assert not any(_EMOJI.search(x) for x in texts), texts


def test_emoji_follow_up_text() -> None:
    r = p("今天去沙坝村卢春花家，她老伴的降压药吃完了，我跟村医说一下👍")
    assert [f["action"] for f in r["follow_ups"]] == ["跟村医说一下"]
    r = p("韦国祥家水管冻裂了😭 明天叫人去修[抱拳]")
    assert [(n["item"], f["action"]) for n, f in zip(r["needs"], r["follow_ups"], strict=True)] == [
        ("水管冻坏", "叫人去修")]
