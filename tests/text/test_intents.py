"""Intent, household/village, visit type/date and training fields on messages written for these tests."""

from __future__ import annotations

from typing import Any

import pytest

from handlers.text import FIELDS, parse

from .conftest import NOW


def p(text: str) -> dict[str, Any]:
    r = parse(text, NOW)
    assert tuple(r) == FIELDS
    return r


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("收到，谢谢领导", "other"),
        ("【通知】请各村于11月30日前上报脱贫户收入情况", "other"),
        ("下礼拜二开始集中走访，各网格员周五前交台账", "other"),
        ("今天电焊班开班了，来了28个", "other"),
        ("谁知道慢病卡去哪里办？", "query"),
        ("马小琴的电焊培训报名了没有？", "query"),
        ("走访了5户，都正常", "visit_log"),
        ("老王家的猪圈塌了，要帮他申请产业奖补", "visit_log"),
        ("养鸡培训 沙坝村 卢春花 谢长林 明天把身份证复印件交上来", "training_signup"),
        ("王小林不参加养牛培训了", "training_cancel"),
    ],
)
def test_intent(text: str, intent: str) -> None:
    assert p(text)["intent"] == intent


def test_visit_fields() -> None:
    r = p("昨天上门走访了岩脚村罗德才家，一家五口，房子漏雨想申请危房改造。我回头跟住建那边对接一下")
    assert (r["household_head"], r["village"], r["visit_date"], r["visit_type"], r["household_size"]) == (
        "罗德才", "岩脚村", "2026-11-24", "入户走访", 5)
    assert len(r["follow_ups"]) == 1


@pytest.mark.parametrize(
    ("text", "vtype"),
    [
        ("前天电话回访大坪村吴秀珍", "电话回访"),
        ("今天茶园村邓丽萍家电话打不通，明天再打", "电话回访"),
        ("今天院坝会在联合村开的，来了30多户", "集中走访"),
        ("今天去了趟水井村，韦国祥家的水窖修好了", "入户走访"),
        ("刚才说错了 韦国祥家不是3口 是4口 他家还有个上门女婿", None),
        ("礼拜天去沙坝村看了班秀英，想要个老年手机方便打电话", "入户走访"),
    ],
)
def test_visit_type(text: str, vtype: str | None) -> None:
    assert p(text)["visit_type"] == vtype


def test_villages_and_kinship_heads() -> None:
    assert p("礼拜三去看了何家坪村何文军")["village"] == "何家坪村"
    assert p("今天入户松林组蔡明生家")["village"] == "松林组"
    assert p("请各村于11月30日前上报")["village"] is None
    assert p("红岩村的苏大妈今天打电话说家里取暖器坏了")["household_head"] == "苏大妈"
    assert p("周五去长岭村看望了独居老人吴老太，给她送了一桶油")["household_head"] == "吴老太"


def test_traditional_and_fullwidth_input() -> None:
    r = p("報名 電焊培訓 水井村 韋小兵 電話 １３８ １２３４ ５６７８")
    assert r["intent"] == "training_signup"
    assert r["participants"] == {"names": ["韦小兵"], "count": 1}
    assert r["phone"] == "13812345678"


def test_signup_fields() -> None:
    r = p("刺黎种植 报名 高坡村 马德忠 13912345678 孙光辉 13887654321")
    assert r["course_norm"] == "刺梨种植培训"  # as written, typo fixed; not a catalogue name
    assert r["participants"] == {"names": ["马德忠", "孙光辉"], "count": 2}
    assert r["phone"] == ["13912345678", "13887654321"]
    r = p("挖掘机班 报5个 名字晚点发")
    assert r["participants"] == {"names": [], "count": 5} and r["course_norm"] == "挖掘机培训"
    r = p("家政培训帮我报一下 沙坝村 龙桂英 电话 138****5678")
    assert r["phone"] == "138****5678" and r["course_norm"] == "家政培训"


def test_substitution() -> None:
    r = p("刘德明那期家政不去了 把他换成他老婆陈桂芳")
    assert r["intent"] == "training_signup" and r["secondary_intents"] == ["training_cancel"]
    assert r["participants"]["names"] == ["陈桂芳"]
    assert r["cancelled"] == {"names": ["刘德明"], "count": 1, "course": "家政"}


def test_visit_with_signup() -> None:
    r = p("今天到高坡村马德忠家，他儿子马小军想报那个电商培训，电话177****6021")
    assert r["intent"] == "visit_log" and r["secondary_intents"] == ["training_signup"]
    assert r["household_head"] == "马德忠" and r["participants"]["names"] == ["马小军"]


def test_announcement_in_parse() -> None:
    r = p("【通知】县人社局定于12月10日至12月15日举办电商直播培训，每村限报3人，请于12月5日前报名")
    assert r["intent"] == "other"
    assert r["training_date"] == {"raw": "12月10日至12月15日", "range": ["2026-12-10", "2026-12-15"]}
    assert r["signup_deadline"] == "2026-12-05"
