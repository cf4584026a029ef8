"""通知-style training announcements: course, sessions, place, quotas, eligibility, age range, deadline, contact.

Detection is deliberately conservative (a notice header or several announcement features) so sign-ups never match.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from . import _dates as D
from ._entities import find_phones
from ._norm import normalize
from ._numbers import NUM, parse_number
from .courses import find_course, normalise_course


@dataclass(frozen=True, slots=True)
class Session:
    raw: str
    start: str
    end: str
    times: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Announcement:
    course: str | None
    course_norm: str | None
    sessions: tuple[Session, ...]
    place: str | None
    quota_per_village: int | None
    quota_total: int | None
    eligibility: tuple[str, ...]
    age_range: tuple[int, int] | None
    deadline: str | None
    contact_name: str | None
    contact_phone: str | None
    free: bool
    certificate: bool


_HEADER = re.compile(r"^\s*【[^】]{0,16}(?:通知|公告|招生|报名|培训)[^】]{0,16}】|^\s*(?:关于.{2,30}的)?通知|^\s*公告")
_FEATURES = re.compile(r"报名|截止|名额|每村|限报|举办|开展|培训时间|地点|联系人|咨询电话|免费|结业|周岁|发证|证书|补贴|食宿")
_TIME = re.compile(r"(?P<p>上午|下午|晚上|早上)?\s*(?P<h>[01]?\d|2[0-3])\s*[:：点]\s*(?P<m>[0-5]\d)?(?:分)?"
                   r"(?:\s*(?:-|—|~|至|到)\s*(?P<h2>[01]?\d|2[0-3])\s*[:：点]\s*(?P<m2>[0-5]\d)?)?")
_PLACE = re.compile(r"(?:培训地点|上课地点|地点|地址)\s*[:：为在]?\s*(?P<p>[^,，。;；\n]{2,30})"
                    r"|在(?P<q>[^,，。;；\n]{2,24}?)(?:举办|开展|进行|开班|集中培训|上课)")
_QUOTA_VILLAGE = re.compile(rf"每(?:个)?村(?:\(社区\))?(?:限报|限|名额|推荐|报名|报|选派)?\s*(?P<n>{NUM})\s*(?:人|名)")
_QUOTA_TOTAL = re.compile(rf"(?:名额|限额|共招|招收|限招|招生|计划培训|共|总)\s*(?:为|有)?\s*(?P<n>{NUM})\s*(?:人|名)")
_ELIG_TERMS = ("脱贫户", "监测户", "监测对象", "低保户", "易迁户", "搬迁户", "残疾人", "妇女", "返乡人员", "农村劳动力",
               "脱贫劳动力", "边缘户", "脱贫人口", "困难群众", "未就业", "农民工", "青年")
_PRIORITY = re.compile(r"(?P<who>[\u4e00-\u9fff/、和及]{2,20}?)优先")
_AGE = re.compile(r"(?P<a>\d{2})\s*(?:-|—|~|至|到)\s*(?P<b>\d{2})\s*周?岁")
_DEADLINE = re.compile(r"(?:报名)?截止(?:时间|日期)?(?:为|是|到|至)?\s*[:：]?\s*")
_CONTACT = re.compile(r"联系人\s*[:：]?\s*(?P<n>[\u4e00-\u9fff]{2,4}?)(?=[\s,，;；(（电手]|老师|主任|$)"
                      r"|联系人\s*[:：]?\s*(?P<t>[\u4e00-\u9fff](?:老师|主任|书记|站长|局长|干事))")


def parse_announcement(text: str, now: datetime) -> Announcement | None:
    """Structured fields of a training notice, or None when the text is not one. Never raises."""
    try:
        return _parse(text, now)
    except Exception:
        return None


def _parse(text: str, now: datetime) -> Announcement | None:
    t = normalize(text)
    if not t:
        return None
    feats = {m.group(0) for m in _FEATURES.finditer(t)}
    header = _HEADER.search(t) is not None
    course = find_course(t)
    if not (course or "培训" in t):
        return None
    if not (header and feats) and len(feats) < 3:
        return None
    today = now.date() if isinstance(now, datetime) else datetime.now().date()
    hits = D.find_dates(t, today)
    sessions: list[Session] = []
    deadline: str | None = None
    all_times = tuple(_fmt_time(m) for m in _TIME.finditer(t))
    for h in hits:
        before = t[max(0, h.start - 8): h.start]
        after = t[h.end: h.end + 6]
        if h.deadline or _DEADLINE.search(before) or "截止" in before:
            v: Any = D.to_value(h, today, "future")
            if isinstance(v, dict):
                v = v.get("by")
            if isinstance(v, str) and deadline is None:
                deadline = v
            continue
        if "报名" in after[:3] and h.kind == "day":
            continue
        times = all_times
        if h.kind == "range" and h.first and h.last:
            sessions.append(Session(h.raw, h.first.isoformat(), h.last.isoformat(), times))
        elif h.kind in ("day", "weekday"):
            v = D.to_value(h, today, "future")
            if isinstance(v, str):
                sessions.append(Session(h.raw, v, v, times))
    pm = _PLACE.search(t)
    place = (pm.group("p") or pm.group("q")).strip() if pm else None
    qv = _QUOTA_VILLAGE.search(t)
    qt = _QUOTA_TOTAL.search(t.replace(qv.group(0), "") if qv else t)
    elig: list[str] = [w for w in _ELIG_TERMS if w in t]
    pr = _PRIORITY.search(t)
    if pr:
        elig.append(pr.group(0).lstrip("、，,的"))
    age = _AGE.search(t)
    cm = _CONTACT.search(t)
    phones = find_phones(t)
    c = course[0] if course else None
    return Announcement(
        course=c,
        course_norm=normalise_course(c) if c else None,
        sessions=tuple(sessions),
        place=place,
        quota_per_village=_int(qv.group("n")) if qv else None,
        quota_total=_int(qt.group("n")) if qt else None,
        eligibility=tuple(dict.fromkeys(elig)),
        age_range=(int(age.group("a")), int(age.group("b"))) if age else None,
        deadline=deadline,
        contact_name=(cm.group("n") or cm.group("t")) if cm else None,
        contact_phone=phones[-1][2] if phones else None,
        free="免费" in t,
        certificate=bool(re.search(r"发证|证书|结业证", t)),
    )


def _int(s: str) -> int | None:
    v = parse_number(s)
    return int(v) if isinstance(v, int | float) and v >= 0 else None


def _fmt_time(m: re.Match[str]) -> str:
    def hm(h: str, mi: str | None, part: str | None) -> str:
        hh = int(h)
        if part in ("下午", "晚上") and hh < 12:
            hh += 12
        return f"{hh:02d}:{mi or '00'}"

    out = hm(m.group("h"), m.group("m"), m.group("p"))
    if m.group("h2"):
        out += "-" + hm(m.group("h2"), m.group("m2"), m.group("p"))
    return out
