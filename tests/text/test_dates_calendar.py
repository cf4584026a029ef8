"""Holidays, 调休 and lunar dates against each message's own send date, and which dates may date a visit."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from handlers.text import _dates as D
from handlers.text import parse

TZ = ZoneInfo("Asia/Shanghai")


def value(text: str, ref: str, tense: D.Tense = "future") -> object:
    today = date.fromisoformat(ref)
    hits = D.find_dates(text, today)
    assert hits, text
    return D.to_value(hits[0], today, tense)


def at(ref: str) -> datetime:
    d = date.fromisoformat(ref)
    return datetime(d.year, d.month, d.day, 10, 0, tzinfo=TZ)


@pytest.mark.parametrize(
    ("text", "ref", "tense", "expected"),
    [
        # lunar months and days (春节 2026 = 02-17, its 腊月 has 29 days)
        ("腊月二十三那天去", "2026-01-20", "future", "2026-02-10"),
        ("正月十五那天", "2026-01-20", "future", "2026-03-03"),
        ("农历八月十五", "2026-08-01", "future", "2026-09-25"),
        ("腊月初八去了一趟", "2026-02-01", "past", "2026-01-26"),
        # festivals, resolved to the nearest sensible year for the tense
        ("端午那天", "2026-07-01", "past", "2026-06-19"),
        ("端午那天", "2026-05-20", "future", "2026-06-19"),
        ("除夕", "2026-02-01", "future", "2026-02-16"),
        ("中秋后两天", "2026-09-10", "future", "2026-09-27"),
        ("元宵节", "2026-02-20", "future", "2026-03-03"),
    ],
)
def test_lunar_and_festival_days(text: str, ref: str, tense: D.Tense, expected: str) -> None:
    assert value(text, ref, tense) == expected


def test_ambiguous_festivals() -> None:
    xiaonian = value("小年那天送年货", "2026-01-20")
    assert isinstance(xiaonian, dict) and xiaonian["ambiguous"] is True
    assert xiaonian["candidates"] == ["2026-02-10", "2026-02-11"]  # 腊月廿三 or 廿四
    before = value("春节前办好", "2026-01-20")
    assert isinstance(before, dict) and before["candidates"] == ["2026-02-16", "2026-02-17"]  # by 除夕 or 初一


@pytest.mark.parametrize(
    ("text", "ref", "expected"),
    [
        # 2025: 国庆 and 中秋 joined, 10-01..10-08; Sunday 09-28 and Saturday 10-11 were working days
        ("国庆假期里", "2025-10-15", {"raw": "国庆假期里", "range": ["2025-10-01", "2025-10-08"]}),
        ("节后上班第一天", "2025-09-26", "2025-10-09"),
        ("国庆放假前最后一天", "2025-09-20", "2025-09-30"),
        ("五一前交上来", "2026-04-20", {"raw": "五一前", "by": "2026-04-30"}),
        # 元旦 2027 is a Friday; the week after it starts on Monday 01-04
        ("元旦后再说", "2026-12-20", {"raw": "元旦后", "range": ["2027-01-04", "2027-01-08"]}),
        ("国庆后", "2026-09-28", {"raw": "国庆后", "range": ["2026-10-08", "2026-10-13"]}),  # Saturday 10-10 works
    ],
)
def test_public_holidays(text: str, ref: str, expected: object) -> None:
    assert value(text, ref) == expected


def test_makeup_working_saturday() -> None:
    assert D.is_rest_day(date(2026, 5, 9)) is False  # 调休: a working Saturday
    assert D.is_rest_day(date(2026, 5, 16)) is True
    assert D.is_rest_day(date(2026, 10, 2)) is True
    assert value("补班的那个周六开会", "2026-05-06") == "2026-05-09"
    assert value("调休上班那天去领", "2025-10-02") == "2025-10-11"  # Sunday 09-28 was past; Saturday 10-11 next
    assert value("16号调休上班那天", "2026-05-06") == "2026-05-16"


@pytest.mark.parametrize(
    ("text", "ref", "expected"),
    [
        ("今早", "2026-06-03", "2026-06-03"),
        ("今晚", "2026-06-03", "2026-06-03"),
        ("过两天去", "2026-06-03", {"raw": "过两天", "range": ["2026-06-04", "2026-06-06"]}),
        ("下个月初", "2026-06-03", {"raw": "下个月初", "range": ["2026-07-01", "2026-07-10"]}),
        ("月底前", "2026-06-03", {"raw": "月底前", "by": "2026-06-30"}),
        ("年底最后一天", "2026-06-03", "2026-12-31"),
        ("明年3月那期", "2026-06-03", {"raw": "明年3月", "range": ["2027-03-01", "2027-03-31"]}),
    ],
)
def test_conventions(text: str, ref: str, expected: object) -> None:
    assert value(text, ref) == expected


def test_no_date_where_there_is_none() -> None:
    assert D.find_dates("我喊他二天来看一下", date(2026, 6, 3)) == []  # 二天: dialect "some day"
    assert D.find_dates("王国庆后来说不要了", date(2026, 9, 1)) == []  # a given name, not 国庆
    assert D.find_dates("组里的小年轻都出去打工了", date(2026, 1, 20)) == []
    assert D.find_dates("国庆后那期电焊培训还有名额", date(2026, 9, 1)) == []  # a session's name, not a date


def test_future_period_is_never_the_visit_date() -> None:
    r = parse("今天去了坝子村罗德富家 缺化肥 下个月中旬再来看", at("2026-06-03"))
    assert r["visit_date"] == "2026-06-03"
    r = parse("这个月去了坝子村罗德富家两次 他家缺化肥", at("2026-06-03"))
    assert r["intent"] == "visit_log" and r["visit_date"] is None


def test_visit_date_prefers_the_visit_clause() -> None:
    r = parse("昨天接到他儿子电话 今天去了坝子村罗德富家 屋顶漏雨", at("2026-06-03"))
    assert r["visit_date"] == "2026-06-03"
    r = parse("国庆假期里去了坝子村罗德富家 他家缺棉被", at("2026-10-09"))
    assert r["visit_date"] == {"raw": "国庆假期里", "range": ["2026-10-01", "2026-10-07"]}


def test_tenseless_weekday_on_a_saturday_is_ambiguous() -> None:
    r = parse("周四 坝子村罗德富家 修水管", at("2026-06-06"))
    assert r["visit_date"]["ambiguous"] is True
    assert r["visit_date"]["candidates"] == ["2026-06-04", "2026-06-11"]
    r = parse("周四去了坝子村罗德富家 修好了水管", at("2026-06-06"))
    assert r["visit_date"] == "2026-06-04"


def test_form_date_field_wins() -> None:
    form = "【入户走访】户主：罗德富村组：坝子村二组家庭人口：4人走访方式：入户了解情况：户主上个月住了院存在问题：缺化肥走访时间：3月13日"
    assert parse(form, at("2026-03-16"))["visit_date"] == "2026-03-13"


def test_a_recent_lunar_day_is_not_pushed_a_year_ahead() -> None:
    # 腊月二十 = 2027-01-27; two days later it is still that day, even read as future
    assert value("腊月二十那天", "2027-01-29", "future") == "2027-01-27"
    assert value("腊月二十那天", "2027-01-10", "future") == "2027-01-27"


def test_first_day_back_after_a_break() -> None:
    # 清明 2026: 04-04..04-06 off
    assert value("放完假第一天带人来看", "2026-04-03") == "2026-04-07"
    assert value("收假第一天", "2026-10-05") == "2026-10-08"
