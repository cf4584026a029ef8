"""Hypothesis properties: parse never raises, dates stay within 400 days of now, quantities are never negative."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from handlers.text import FIELDS, parse, parse_announcement, parse_correction

FRAGMENTS = [
    "今天", "昨天", "大前天", "上周五", "下周三", "礼拜天", "周五", "11月20日", "11.18", "11/23", "二〇二六年十一月二十日",
    "2019年1月1日", "12月31日", "1月1号", "三十一号", "月底前", "下周", "去", "高坡村", "马德忠", "家", "，", "3口", "老两口",
    "独居", "缺", "化肥", "3万2", "一万五", "半吨", "两床棉被", "已送", "要", "明天我去", "报名", "电焊培训", "不去了",
    "换成", "電話", "１３８", "\x00", "\u200b", "😀", "[抱拳]", "？", "-5袋", "负3头", "99999999999999999999斤",
]
text_st = st.one_of(
    st.text(max_size=300),
    st.lists(st.sampled_from(FRAGMENTS), max_size=30).map("".join),
    st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=5)), max_size=20).map("".join),
)
now_st = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2090, 12, 31),
                      timezones=st.sampled_from([ZoneInfo("Asia/Shanghai"), ZoneInfo("UTC"),
                                                 ZoneInfo("America/New_York")]))


def walk(v: Any) -> list[Any]:
    out = [v]
    if isinstance(v, dict):
        for x in v.values():
            out += walk(x)
    elif isinstance(v, list):
        for x in v:
            out += walk(x)
    return out


def is_iso(s: Any) -> bool:
    if not isinstance(s, str) or len(s) != 10:
        return False
    try:
        date.fromisoformat(s)
    except ValueError:
        return False
    return True


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text_st, now_st)
def test_parse_total_and_invariants(text: str, now: datetime) -> None:
    r = parse(text, now)
    assert tuple(r) == FIELDS
    today = now.date()
    for v in walk(r):
        if is_iso(v):
            assert abs((date.fromisoformat(v) - today).days) <= 400, (text, v)
    for n in r["needs"]:
        q = n.get("qty")
        assert q is None or q >= 0
    parse_correction(text, now)
    parse_announcement(text, now)


def test_huge_and_odd_inputs() -> None:
    now = datetime(2026, 11, 25, 12, tzinfo=ZoneInfo("Asia/Shanghai"))
    for t in ("", "a" * 100_000, "村" * 100_000, "今天去高坡村马德忠家" * 10_000, "\x00\x7f\ud800", "😀" * 1000,
              None, 12345):
        r = parse(t, now)  # type: ignore[arg-type]
        assert tuple(r) == FIELDS
    naive = datetime(2026, 11, 25, 12)
    assert parse("今天去高坡村马德忠家", naive)["visit_date"] == "2026-11-25"
    assert parse("今天", now + timedelta(days=1))["intent"] == "other"
