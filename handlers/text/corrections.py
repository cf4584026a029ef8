"""Replies that correct a visit card ("改成昨天", "是王德明不是王德民", "删掉第二条需求", "加一条 缺化肥两袋"…).

Only short, clearly corrective replies qualify; anything else returns None so the caller treats it as a new message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from . import _dates as D
from ._entities import clauses
from ._lexicon import NEED_KEYWORDS, trie_regex
from ._needs import extract_needs
from ._norm import normalize
from ._numbers import NUM, parse_number

Kind = Literal["date", "household", "need_qty", "delete_need", "add_need", "visit_type", "size", "village"]


@dataclass(frozen=True, slots=True)
class Correction:
    kind: Kind
    raw: str
    date: str | None = None
    household: str | None = None
    wrong: str | None = None
    item: str | None = None
    qty: float | int | None = None
    unit: str | None = None
    index: int | None = None  # 1-based need index for delete_need
    need: dict[str, Any] | None = None  # for add_need: {category, item, qty?, unit?, status}
    visit_type: str | None = None
    size: int | None = None
    village: str | None = None


_VERB = r"(?:改成|改为|改一下|更正为|更正成|换成|应该是|应是|其实是|是)"
_NAME = r"[\u4e00-\u9fff]{2,4}"
_UNIT = trie_regex(("床", "袋", "斤", "公斤", "吨", "个", "台", "头", "只", "箱", "桶", "件", "套", "元", "块", "包", "条", "双",
                    "张", "辆", "桶", "瓶", "亩", "方", "车"))
_DELETE = re.compile(rf"(?:删掉|删除|删去|去掉|删了|拿掉|不要)\s*第?\s*(?P<i>{NUM})\s*条(?:需求)?"
                     rf"|第\s*(?P<j>{NUM})\s*条(?:需求)?\s*(?:删掉|删除|去掉|删了|不要了?|作废)")
_ADD = re.compile(r"^(?:再)?(?:加一条|加一个|添加|增加|补充|补一条|再加|加上|新增)(?:需求)?\s*[:：]?\s*(?P<body>.+)$")
_SIZE = re.compile(rf"^(?:不是\s*{NUM}\s*口人?\s*[,，]?\s*)?(?:人口|家庭人口|户籍人口)?\s*{_VERB}?\s*(?P<n>{NUM})\s*口人?$"
                   rf"|^(?:人口|家庭人口)\s*{_VERB}?\s*(?P<m>{NUM})\s*(?:人|口)?$")
_VTYPE = re.compile(rf"^(?:走访方式|方式|类型)?\s*(?:不是[^,，]*[,，]?\s*)?{_VERB}?\s*(?P<v>电话回访|电话|视频|微信|入户走访|入户|上门|"
                    r"集中走访|院坝会|集中)(?:走访|回访)?$")
_HOUSE_1 = re.compile(rf"^(?:户主|名字|姓名)?\s*(?:是|叫|应该是)\s*(?P<right>{_NAME}?)\s*[,，]?\s*不是\s*(?P<wrong>{_NAME})$")
_HOUSE_2 = re.compile(rf"^不是\s*(?P<wrong>{_NAME}?)\s*[,，]?\s*(?:是|而是)\s*(?P<right>{_NAME})$")
_HOUSE_3 = re.compile(rf"^(?:户主|名字|姓名|户主名字|户主姓名)\s*{_VERB}\s*(?P<right>{_NAME})$")
_HOUSE_4 = re.compile(rf"^(?P<wrong>{_NAME}?)\s*(?:改成|改为|应该是|更正为)\s*(?P<right>{_NAME})$")
_VILLAGE = re.compile(r"^(?:村|村子|村名)?\s*(?:改成|改为|应该是|是)\s*(?P<v>[\u4e00-\u9fff]{2,4}[村组寨])$")
_QTY = re.compile(rf"^(?P<item>[\u4e00-\u9fff]{{1,8}}?)\s*(?:数量)?\s*(?:改成|改为|应该是|是|要|为|实际是)\s*(?P<n>{NUM})\s*"
                  rf"(?P<u>{_UNIT})?$")
_DATE = re.compile(rf"^(?:日期|时间|走访日期|走访时间|日子)?\s*(?:不是[^,，]{{1,8}}[,，]?\s*)?{_VERB}?\s*(?P<d>.+?)\s*"
                   r"(?:去的|走访的|去了|才对)?$")
_KW_RE = re.compile(trie_regex(NEED_KEYWORDS))


def _need_from(body: str) -> dict[str, Any] | None:
    cls = clauses(body)
    needs = extract_needs(body, cls, [False] * len(cls), body)
    if needs:
        return needs[0].as_dict(False)[0]
    m = next((k for k in _KW_RE.finditer(body) if NEED_KEYWORDS[k.group(0)][0] != "-"), None)
    if m:
        cat, item = NEED_KEYWORDS[m.group(0)]
        if cat == "?":
            return {"category": {"ambiguous": True, "raw": item, "candidates": ["医疗", "生活物资"],
                                 "note": "assistive device"}, "item": item, "status": "open"}
        return {"category": cat, "item": item, "status": "open"}
    return None


def parse_correction(text: str, now: datetime) -> Correction | None:
    """Interpret a reply to a visit card as a correction, or None if it is not one. Never raises."""
    try:
        return _parse(text, now)
    except Exception:
        return None


def _parse(text: str, now: datetime) -> Correction | None:
    t = normalize(text)
    t = re.sub(r"^(?:不对|错了|说错了|刚才说错了|更正|纠正|修改)[,，:：\s]*", "", t).strip(" 。.!！")
    if not t or len(t) > 40:
        return None
    m = _DELETE.search(t)
    if m:
        v = parse_number(m.group("i") or m.group("j"))
        if isinstance(v, int) and v >= 1:
            return Correction("delete_need", t, index=v)
    m = _ADD.match(t)
    if m:
        need = _need_from(m.group("body"))
        if need is not None:
            return Correction("add_need", t, need=need, item=need.get("item"), qty=need.get("qty"),
                              unit=need.get("unit"))
    m = _SIZE.match(t)
    if m:
        v = parse_number(m.group("n") or m.group("m"))
        if isinstance(v, int) and 1 <= v <= 20:
            return Correction("size", t, size=v)
    m = _VTYPE.match(t)
    if m:
        w = m.group("v")
        vt = "电话回访" if w[:2] in ("电话", "视频", "微信") else ("集中走访" if w[:2] in ("集中", "院坝") else "入户走访")
        return Correction("visit_type", t, visit_type=vt)
    m = _VILLAGE.match(t)
    if m:
        return Correction("village", t, village=m.group("v"))
    for rx in (_HOUSE_1, _HOUSE_2):
        m = rx.match(t)
        if m:
            right, wrong = m.group("right"), m.group("wrong")
            if right and wrong:
                return Correction("household", t, household=right, wrong=wrong)
    m = _QTY.match(t)
    if m and m.group("item") not in ("人口", "户主", "日期", "时间"):
        v = parse_number(m.group("n"))
        if v is not None and v >= 0 and (m.group("u") or _KW_RE.search(m.group("item"))):
            return Correction("need_qty", t, item=m.group("item"), qty=v, unit=m.group("u"))
    m = _HOUSE_3.match(t)
    if m:
        return Correction("household", t, household=m.group("right"))
    today = now.date() if isinstance(now, datetime) else datetime.now().date()
    m = _DATE.match(t)
    if m:
        hits = D.find_dates(m.group("d"), today)
        if len(hits) == 1 and hits[0].start == 0 and hits[0].end >= len(m.group("d")) - 1:
            v = D.to_value(hits[0], today, "past")
            if isinstance(v, str):
                return Correction("date", t, date=v)
    m = _HOUSE_4.match(t)
    if m and m.group("wrong") and m.group("right"):
        return Correction("household", t, household=m.group("right"), wrong=m.group("wrong"))
    return None
