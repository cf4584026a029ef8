"""One test per date rule: relative days, weeks, calendar forms, periods, deadlines, header dates."""

from __future__ import annotations

from datetime import date

import pytest

from handlers.text import _dates as D
from handlers.text import parse

from .conftest import NOW, TODAY


def one(text: str, tense: D.Tense = "past", shift: int | None = None) -> object:
    hits = D.find_dates(text, TODAY)
    assert hits, text
    return D.to_value(hits[0], TODAY, tense, shift)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("今天", "2026-11-25"), ("昨天", "2026-11-24"), ("昨儿个", "2026-11-24"), ("前天", "2026-11-23"),
        ("大前天", "2026-11-22"), ("明天", "2026-11-26"), ("后天", "2026-11-27"), ("今早", "2026-11-25"),
    ],
)
def test_relative_days(text: str, expected: str) -> None:
    assert one(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("上周五", "2026-11-20"), ("上周三", "2026-11-18"), ("本周五", "2026-11-27"), ("下周一", "2026-11-30"),
        ("下周三", "2026-12-02"), ("上礼拜三", "2026-11-18"), ("下星期四", "2026-12-03"), ("这周一", "2026-11-23"),
    ],
)
def test_prefixed_weekdays(text: str, expected: str) -> None:
    assert one(text) == expected


def test_bare_weekday_needs_tense() -> None:
    assert one("礼拜天", "past") == "2026-11-22"
    assert one("星期五", "future") == "2026-11-27"
    amb = one("周五", None)
    assert isinstance(amb, dict) and amb["ambiguous"] is True
    assert amb["candidates"] == ["2026-11-20", "2026-11-27"]
    assert one("周一", None, shift=0) == "2026-11-23"  # inside "本周走访：周一 …"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("11月20日", "2026-11-20"), ("11月20号", "2026-11-20"), ("11.18", "2026-11-18"), ("11/23", "2026-11-23"),
        ("二〇二六年十一月二十日", "2026-11-20"), ("2026年11月20日", "2026-11-20"), ("2026-11-02", "2026-11-02"),
        ("十一月三号", "2026-11-03"), ("二十号", "2026-11-20"),
    ],
)
def test_calendar_forms(text: str, expected: str) -> None:
    assert one(text) == expected


def test_year_rolls_with_tense() -> None:
    assert one("12月30日", "past") == "2025-12-30"
    assert one("1月5日", "future") == "2027-01-05"
    assert one("28号", "past") == "2026-10-28"


def test_decimal_is_not_a_date() -> None:
    assert D.find_dates("种了1.5亩 要0.5吨", TODAY) == []


def test_periods_and_deadlines() -> None:
    assert one("下周") == {"raw": "下周", "range": ["2026-11-30", "2026-12-06"]}
    assert one("月初") == {"raw": "月初", "range": ["2026-11-01", "2026-11-10"]}
    assert one("月底前") == {"raw": "月底前", "by": "2026-11-30"}
    assert one("下周一前") == {"raw": "下周一前", "by": "2026-11-30"}
    assert one("12月8日—12月17日") == {"raw": "12月8日—12月17日", "range": ["2026-12-08", "2026-12-17"]}


def test_header_date_overrides_today() -> None:
    r = parse("11月20日 星期五 晴。今天上午到茶园村走访邓丽萍家，一家三口", NOW)
    assert r["visit_date"] == "2026-11-20"
    assert D.header_date("11月20日 星期五 晴", TODAY) == (date(2026, 11, 20), len("11月20日 星期五 晴"))


def test_far_dates_are_dropped() -> None:
    assert D.find_dates("2019年3月1日", TODAY) == []
