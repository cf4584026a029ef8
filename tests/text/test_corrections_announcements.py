"""Visit-card corrections, training announcements and course matching."""

from __future__ import annotations

import pytest

from handlers.text import match_course, parse_announcement, parse_correction

from .conftest import NOW


@pytest.mark.parametrize(
    ("text", "kind", "field", "value"),
    [
        ("改成昨天", "date", "date", "2026-11-24"),
        ("日期改成11月20日", "date", "date", "2026-11-20"),
        ("是王德明不是王德民", "household", "household", "王德明"),
        ("不是王德民是王德明", "household", "household", "王德明"),
        ("户主是王德明", "household", "household", "王德明"),
        ("棉被是3床", "need_qty", "qty", 3),
        ("棉被改成3床", "need_qty", "qty", 3),
        ("删掉第二条需求", "delete_need", "index", 2),
        ("删除第2条需求", "delete_need", "index", 2),
        ("改成电话回访", "visit_type", "visit_type", "电话回访"),
        ("5口人", "size", "size", 5),
        ("不是3口是5口", "size", "size", 5),
    ],
)
def test_corrections(text: str, kind: str, field: str, value: object) -> None:
    c = parse_correction(text, NOW)
    assert c is not None and c.kind == kind and getattr(c, field) == value


def test_add_need_and_non_corrections() -> None:
    c = parse_correction("加一条 缺化肥两袋", NOW)
    assert c is not None and c.kind == "add_need"
    assert c.need == {"category": "产业", "item": "缺化肥", "qty": 2, "unit": "袋", "status": "open"}
    for t in ("好的", "今天去了高坡村马德忠家，缺化肥", "", "\x00\x01"):
        assert parse_correction(t, NOW) is None


def test_announcement() -> None:
    a = parse_announcement(
        "【培训通知】县人社局定于12月10日—12月15日在县职校举办挖掘机操作培训，每天上午9:00-11:30，每村限报3人，"
        "共60人，脱贫户、监测户优先，年龄18-55周岁，报名截止12月5日，联系人：李主任，电话13800001111", NOW)
    assert a is not None
    assert a.course_norm == "挖掘机操作培训" and a.place == "县职校"
    assert a.sessions[0].start == "2026-12-10" and a.sessions[0].end == "2026-12-15"
    assert a.sessions[0].times == ("09:00-11:30",)
    assert (a.quota_per_village, a.quota_total, a.age_range) == (3, 60, (18, 55))
    assert "监测户" in a.eligibility and a.deadline == "2026-12-05"
    assert (a.contact_name, a.contact_phone) == ("李主任", "13800001111")


def test_not_an_announcement() -> None:
    assert parse_announcement("报名 茶叶加工培训 茶园村 郑玉兰 龚小红 2人", NOW) is None
    assert parse_announcement("今天去高坡村马德忠家", NOW) is None


CAT = ["刺梨种植", "家政服务", "挖掘机操作", "电焊培训", "电商培训", "蜜蜂养殖培训", "中式面点培训"]


@pytest.mark.parametrize(
    ("query", "best"),
    [("刺黎", "刺梨种植"), ("家证", "家政服务"), ("挖机", "挖掘机操作"), ("电焊", "电焊培训"), ("电焊班", "电焊培训"),
     ("养蜂技术", "蜜蜂养殖培训"), ("面点培训班", "中式面点培训")],
)
def test_match_course(query: str, best: str) -> None:
    ranked = match_course(query, CAT)
    assert ranked[0][0] == best
    assert ranked == sorted(ranked, key=lambda x: -x[1])


def test_match_course_nothing() -> None:
    assert match_course("", CAT) == [] and match_course("开会", CAT) == []
