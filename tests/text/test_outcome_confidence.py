"""Attempted visits (visit_outcome), the doubt that makes the bot ask, and quantities restated in follow-ups."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from handlers.text import parse
from handlers.text.confidence import Doubt, intent_doubt, training_reading, visit_reading
from handlers.text.outcome import visit_outcome
from handlers.text.restate import mentions, restate_quantity

NOW = datetime(2026, 11, 25, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
KNOWN = {"张桂英", "马德忠", "苏文斌", "王德明"}


@pytest.mark.parametrize("text", [
    "今天去大坝村张桂英家，家里没人，改天再去",
    "去马德忠家，没人在",
    "下午去了王德明家 不在家 明天再去",
    "到苏文斌家没见到人，门锁着",
    "电话打了沙坝村班秀英 没人接 明天上门看看",
    "给张桂英打了三次电话都打不通",
    "去张桂英家扑了个空",
])
def test_attempts_are_not_met(text):
    assert visit_outcome(text) == "not_met"
    r = parse(text, NOW)
    if r["intent"] == "visit_log":
        assert r["visit_outcome"] == "not_met"


@pytest.mark.parametrize("text", [
    "今天去大坝村张桂英家，缺棉被两床",
    "去王德明家，他儿子不在家，老两口身体还好",  # someone else away is not a missed visit
    "去马德忠家，老伴在外打工，家里没人照顾老人，申请护理补贴",  # 没人照顾 is a need, not an absence
    "上午去张桂英家没人，下午再去见到了，缺化肥",  # a later success wins
    "电话回访张桂英，两个孩子在家由奶奶带，孩子上下学没人接送",  # 没人接送 is a need, not an unanswered call
])
def test_visits_that_met_the_household(text):
    assert visit_outcome(text) == "met"


def test_each_household_gets_its_own_outcome():
    text = "上周六 老鹰岩组 鲁正军（正常）；上周日 老鹰岩组 鲁小芬（锁门，人在外务工，没见到）；今天 鲁正华（房子裂缝）"
    assert visit_outcome(text, ["鲁正军", "鲁小芬", "鲁正华"]) == ["met", "not_met", "met"]
    assert visit_outcome("两户都没人：鲁正军、鲁小芬", ["鲁正军", "鲁小芬"]) == "not_met"


def test_only_visit_logs_carry_an_outcome():
    assert parse("帮红岩村苏文斌报个名 蜜蜂养殖", NOW)["visit_outcome"] is None
    assert parse("今天去大坝村张桂英家，缺棉被两床", NOW)["visit_outcome"] == "met"


@pytest.mark.parametrize(("text", "doubt"), [
    ("今天去大坝村苏文斌家，他想报名蜜蜂养殖培训", Doubt.MIXED),
    ("去张桂英家，她说电焊培训不去了", Doubt.MIXED),
    ("马德忠家的补贴批了", Doubt.OTHER_WITH_HOUSEHOLD),
    ("今天去大坝村张桂英家，缺棉被两床", None),
    ("帮红岩村苏文斌报个名 蜜蜂养殖", None),
    ("苏文斌不去了", None),
    ("哈哈好的收到", None),
])
def test_intent_doubt(text, doubt):
    assert intent_doubt(parse(text, NOW), text, KNOWN.__contains__) is doubt


def test_doubt_from_fields_alone():
    visit = {"intent": "visit_log", "secondary_intents": [], "household_head": None, "visit_type": None,
             "visit_date": None, "needs": [], "follow_ups": [], "household_size": None}
    assert intent_doubt(visit, "") is Doubt.WEAK_VISIT
    assert intent_doubt({**visit, "needs": [{"item": "棉被"}]}, "") is None
    assert intent_doubt({**visit, "household_head": "张桂英"}, "") is None
    assert intent_doubt({**visit, "visit_type": "入户走访"}, "国庆这几天要不要安排人入户？") is Doubt.WEAK_VISIT
    other = {"intent": "other", "secondary_intents": []}
    assert intent_doubt(other, "回访了枫树湾韦老二 他说低保的钱每个月都按时到了") is Doubt.OTHER_WITH_VISIT
    assert intent_doubt(other, "请各村本周内完成入户走访") is None  # an instruction, not a report
    weak = {"intent": "training_signup", "secondary_intents": [], "course": None}
    assert intent_doubt(weak, "石板寨杨正华家 下个月把他家纳入监测的材料报上去") is Doubt.WEAK_SIGNUP
    assert intent_doubt(weak, "帮杨正华报个名") is None
    signup = {"intent": "training_signup", "secondary_intents": ["visit_log"]}
    assert intent_doubt(signup, "") is Doubt.SIGNUP_WITH_VISIT
    assert intent_doubt({"intent": "training_signup", "secondary_intents": []}, "今天入户走访张桂英，缺化肥，她想报电工") \
        is Doubt.SIGNUP_WITH_VISIT


def test_visit_reading_of_a_signup_takes_its_people_as_households():
    r = visit_reading(parse("张桂英说想参加养鸡培训，缺化肥", NOW))
    assert r["intent"] == "visit_log" and r["household_head"] == "张桂英"


def test_training_reading_of_a_visit_keeps_a_withdrawal_a_withdrawal():
    assert training_reading(parse("去张桂英家，她说电焊培训不去了", NOW))["intent"] == "training_cancel"
    assert training_reading(parse("今天去大坝村苏文斌家，他想报名蜜蜂养殖培训", NOW))["intent"] == "training_signup"


@pytest.mark.parametrize(("action", "item", "old", "new", "unit", "want"), [
    ("缺棉被两床送过去", "缺棉被", 2, 3, "床", "缺棉被3床送过去"),
    ("送两床棉被过去", "棉被", 2, 4, "床", "送4床棉被过去"),
    ("下周2号送化肥过去", "化肥", None, 3, "袋", "下周2号送化肥过去"),  # no quantity beside the item
    ("缺棉被两床送过去", "缺棉被", 5, 3, "床", "缺棉被两床送过去"),  # not the quantity we corrected
    ("帮他申请低保", "缺棉被", 2, 3, "床", "帮他申请低保"),
])
def test_restate_quantity(action, item, old, new, unit, want):
    assert restate_quantity(action, item, old, new, unit) == want


def test_mentions():
    assert mentions("缺棉被两床送过去", "缺棉被") and not mentions("帮他申请低保", "缺棉被")
