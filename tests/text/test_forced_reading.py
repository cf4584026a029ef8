"""A reading the cadre chose (记走访 on a message the parser read otherwise) fills that intent's fields."""

from __future__ import annotations

from handlers.text import parse

from .conftest import NOW


def test_forced_visit_fills_visit_fields() -> None:
    text = "昨天 红岩村苏文斌 蜜蜂养殖培训报个名 他家缺化肥3袋"
    free = parse(text, NOW)
    assert free["intent"] == "training_signup"
    forced = parse(text, NOW, intent="visit_log")
    assert forced["intent"] == "visit_log"
    assert "training_signup" in forced["secondary_intents"]
    assert forced["household_head"] == "苏文斌"
    assert forced["visit_date"] == "2026-11-24"
    assert [(n["category"], n.get("qty")) for n in forced["needs"]] == [("产业", 3)]


def test_forcing_the_same_intent_changes_nothing() -> None:
    text = "今天去大坝村王德明家，5口人，缺棉被两床"
    assert parse(text, NOW, intent="visit_log") == parse(text, NOW)
