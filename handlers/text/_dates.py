"""Date expressions in cadre chat (今天, 上周五, 礼拜三, 11.18, 二〇二六年十一月二十日, 月底前…) and their resolution.

Finding is context-free; resolving takes a tense hint because a bare 周三 is past in a visit log and future in a plan.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Literal

from ._numbers import cn_int

Tense = Literal["past", "future"] | None
MAX_DAYS = 400

_CN = "[〇零一二三四五六七八九十]"
_MON = r"(?:1[0-2]|0?[1-9]|十[一二]?|[一二三四五六七八九])"
_DAY = r"(?:3[01]|[12]\d|0?[1-9]|[一二]?十[一二三四五六七八九]?|三十一?|[一二三四五六七八九])"
_WD = "[一二三四五六日天1-7]"
_REL = {
    "大前天": -3, "前天": -2, "前儿个": -2, "前儿": -2, "昨天": -1, "昨日": -1, "昨儿个": -1, "昨儿": -1,
    "昨晚": -1, "昨早": -1, "昨个": -1, "今天": 0, "今日": 0, "今儿个": 0, "今儿": 0, "今早": 0, "今晚": 0,
    "今上午": 0, "今下午": 0, "明天": 1, "明日": 1, "明儿个": 1, "明儿": 1, "明早": 1, "明晚": 1, "后天": 2,
    "大后天": 3,
}
_WEEKDAY = {"一": 0, "二": 1, "三": 2, "四": 3, "五": 4, "六": 5, "日": 6, "天": 6,
            "1": 0, "2": 1, "3": 2, "4": 3, "5": 4, "6": 5, "7": 6}
_WEEK_SHIFT = {"上上": -2, "上": -1, "本": 0, "这": 0, "": 0, "下": 1, "下下": 2}
_PART = {"初": (1, 10), "上旬": (1, 10), "中": (11, 20), "中旬": (11, 20), "底": (21, 31), "末": (21, 31),
         "下旬": (21, 31)}

# The leading lookahead rejects most positions with one char-class test instead of trying 14 alternatives.
_PATTERN = re.compile(
    r"(?=[0-9〇零一二三四五六七八九十今昨明前后大上本这下周星礼週月旬年])(?:" + "|".join(
        [
            # explicit range: 12月8日—12月17日 / 12月8日至17日 / 12月8-17日
            rf"(?P<r_m1>{_MON})月(?P<r_d1>{_DAY})[日号]?\s*(?:—|–|-|~|至|到)+\s*"
            rf"(?:(?P<r_m2>{_MON})月)?(?P<r_d2>{_DAY})[日号]?",
            rf"(?P<y>(?:20)?\d{{2}}|[〇零一二三四五六七八九]{{4}})年(?P<ym>{_MON})月(?P<yd>{_DAY})[日号]?",
            r"(?<!\d)(?P<iy>20\d{2})[-/.](?P<im>1[0-2]|0?[1-9])[-/.](?P<id>3[01]|[12]\d|0?[1-9])(?!\d)",
            rf"(?P<pm>{_MON})月(?:份)?(?P<pmpart>上旬|中旬|下旬|初|中|底|末)",
            rf"(?P<m>{_MON})月(?P<d>{_DAY})[日号]?",
            r"(?<![\d.])(?P<nm>1[0-2]|0?[1-9])[./](?P<nd>3[01]|[12]\d|0?[1-9])(?![\d.%])"
            r"(?!\s*[亩吨斤元块万千米个头只袋床件%])",
            rf"(?<![\d月.第])(?P<dd>{_DAY})(?:号|日(?![子常本期内用夜]))",
            r"(?<!提)(?P<vague>前几天|前两天|前些天|前些日子|前段时间|前阵子|前一阵子?)",
            r"(?P<rel>大前天|前儿个|前天|前儿|昨儿个|昨天|昨日|昨儿|昨晚|昨早|昨个|今儿个|今上午|今下午|今天|今日|今儿|今早|今晚"
            r"|明儿个|明天|明日|明儿|明早|明晚|大后天|后天)",
            rf"(?P<wp>上上|上|本|这|下下|下)?个?(?:周|星期|礼拜|週)(?P<wd>{_WD})",
            r"(?P<wkp>上上|上|本|这|下下|下)?个?(?:周|星期|礼拜)末",
            r"(?P<pp>上上|上|本|这|下下|下)个?(?:周|星期|礼拜)(?![一二三四五六日天1-7末])",
            r"(?P<mp>上|本|这|下)个?月(?P<mppart>上旬|中旬|下旬|初|中|底|末)?",
            r"(?<![\d一二三四五六七八九十])(?P<bp>月初|月中|月底|月末|上旬|中旬|下旬)",
            r"(?P<yend>年底|年末)",
        ]
    ) + ")"
)
_DEADLINE_SUFFIX = re.compile(r"\s*(之前|以前|前)")

Kind = Literal["day", "weekday", "period", "range", "vague"]
# Vague past (前几天): we do not guess; these are the days it could mean, counted back from the send date.
_VAGUE_DAYS = {"前两天": (2, 3)}


@dataclass(slots=True)
class DateHit:
    """One date expression: `day` is exact; `weekday` needs a tense; `period`/`range` carry start..end."""

    start: int
    end: int
    raw: str
    kind: Kind
    day: date | None = None
    first: date | None = None
    last: date | None = None
    weekday: int = 0
    md: int = 0  # month*100+day, or day-of-month alone: the year/month is settled by tense later
    deadline: bool = False


def in_window(d: date, today: date) -> bool:
    return abs((d - today).days) <= MAX_DAYS


def _mk(y: int, m: int, d: int) -> date | None:
    try:
        return date(y, m, d)
    except ValueError:
        return None


def _num(s: str) -> int | None:
    return int(s) if s.isdigit() else cn_int(s)


def _month_day(m: int, d: int, today: date, tense: Tense) -> date | None:
    """Pick the year for a month/day so that it lands nearest to today, honouring tense."""
    options = [x for x in (_mk(today.year + k, m, d) for k in (-1, 0, 1)) if x is not None]
    if not options:
        return None
    if tense == "past":
        past = [x for x in options if x <= today + timedelta(days=7)]
        options = past or options
    elif tense == "future":
        fut = [x for x in options if x >= today - timedelta(days=7)]
        options = fut or options
    return min(options, key=lambda x: abs((x - today).days))


def _month_bounds(y: int, m: int) -> tuple[date, date]:
    return date(y, m, 1), date(y, m, calendar.monthrange(y, m)[1])


def _shift_month(y: int, m: int, k: int) -> tuple[int, int]:
    idx = y * 12 + (m - 1) + k
    return idx // 12, idx % 12 + 1


def _part(y: int, m: int, part: str) -> tuple[date, date]:
    lo, hi = _PART[part]
    last = calendar.monthrange(y, m)[1]
    return date(y, m, lo), date(y, m, min(hi, last))


def find_dates(text: str, today: date) -> list[DateHit]:
    """All date expressions in `text`, left to right; days outside ±400 days of today are dropped."""
    if not text:
        return []
    hits: list[DateHit] = []
    monday = today - timedelta(days=today.weekday())
    for mt in _PATTERN.finditer(text):
        g = mt.group
        hit: DateHit | None = None
        s, e, raw = mt.start(), mt.end(), mt.group(0)
        if g("r_m1"):
            m1, d1 = _num(g("r_m1")), _num(g("r_d1"))
            m2 = _num(g("r_m2")) if g("r_m2") else m1
            d2 = _num(g("r_d2"))
            if m1 and d1 and m2 and d2:
                a = _month_day(m1, d1, today, None)
                b = _mk(a.year, m2, d2) if a else None
                if a and b and b < a:
                    b = _mk(a.year + 1, m2, d2)
                if a and b:
                    hit = DateHit(s, e, raw, "range", first=a, last=b)
        elif g("y"):
            ys = g("y")
            y = int(ys) if ys.isdigit() else cn_int(ys)
            if y is not None and y < 100:
                y += 2000
            m, d = _num(g("ym")), _num(g("yd"))
            if y and m and d:
                dd = _mk(y, m, d)
                if dd:
                    hit = DateHit(s, e, raw, "day", day=dd)
        elif g("iy"):
            dd = _mk(int(g("iy")), int(g("im")), int(g("id")))
            if dd:
                hit = DateHit(s, e, raw, "day", day=dd)
        elif g("pm"):
            m = _num(g("pm"))
            if m:
                anchor = _month_day(m, 1, today, None)
                if anchor:
                    a, b = _part(anchor.year, m, g("pmpart"))
                    hit = DateHit(s, e, raw, "period", first=a, last=b)
        elif g("m"):
            m, d = _num(g("m")), _num(g("d"))
            if m and d and 1 <= m <= 12 and 1 <= d <= 31:
                hit = DateHit(s, e, raw, "day", md=m * 100 + d)
                hit.day = _month_day(m, d, today, None)
                if hit.day is None:
                    hit = None
        elif g("nm"):
            m, d = int(g("nm")), int(g("nd"))
            hit = DateHit(s, e, raw, "day", md=m * 100 + d)
            hit.day = _month_day(m, d, today, None)
            if hit.day is None:
                hit = None
        elif g("dd"):
            d = _num(g("dd"))
            if d and 1 <= d <= 31:
                # day-of-month only: month chosen at resolution time from tense
                hit = DateHit(s, e, raw, "day", md=d)
                hit.day = _mk(today.year, today.month, d)
                if hit.day is None:
                    hit = None
        elif g("vague"):
            lo, hi = _VAGUE_DAYS.get(raw, (2, 6))
            hit = DateHit(s, e, raw, "vague", first=today - timedelta(days=hi), last=today - timedelta(days=lo))
        elif g("rel"):
            hit = DateHit(s, e, raw, "day", day=today + timedelta(days=_REL[g("rel")]))
        elif g("wd"):
            prefix = g("wp") or ""
            wd = _WEEKDAY[g("wd")]
            if prefix:
                dd = monday + timedelta(days=7 * _WEEK_SHIFT[prefix] + wd)
                hit = DateHit(s, e, raw, "day", day=dd)
            else:
                hit = DateHit(s, e, raw, "weekday", weekday=wd)
        elif g("wkp") is not None or (raw.endswith("末") and ("周" in raw or "星期" in raw or "礼拜" in raw)):
            k = _WEEK_SHIFT[g("wkp") or ""]
            a = monday + timedelta(days=7 * k + 5)
            hit = DateHit(s, e, raw, "period", first=a, last=a + timedelta(days=1))
        elif g("pp"):
            a = monday + timedelta(days=7 * _WEEK_SHIFT[g("pp")])
            hit = DateHit(s, e, raw, "period", first=a, last=a + timedelta(days=6))
        elif g("mp"):
            y, m = _shift_month(today.year, today.month, {"上": -1, "本": 0, "这": 0, "下": 1}[g("mp")])
            if g("mppart"):
                a, b = _part(y, m, g("mppart"))
            else:
                a, b = _month_bounds(y, m)
            hit = DateHit(s, e, raw, "period", first=a, last=b)
        elif g("bp"):
            a, b = _part(today.year, today.month, g("bp").removeprefix("月"))
            hit = DateHit(s, e, raw, "period", first=a, last=b)
        elif g("yend"):
            hit = DateHit(s, e, raw, "period", first=date(today.year, 12, 1), last=date(today.year, 12, 31))
        if hit is None:
            continue
        dm = _DEADLINE_SUFFIX.match(text, e)
        if dm and hit.kind != "range":
            hit.deadline = True
            hit.raw = raw + dm.group(1)
            hit.end = dm.end()
        if hit.day is not None and not in_window(hit.day, today):
            continue
        if hit.first is not None and not (in_window(hit.first, today) and hit.last is not None
                                          and in_window(hit.last, today)):
            continue
        hits.append(hit)
    return hits


def _weekday_options(wd: int, today: date) -> tuple[date, date]:
    past = today - timedelta(days=(today.weekday() - wd) % 7)
    fut = today + timedelta(days=(wd - today.weekday()) % 7)
    return past, fut


def resolve_day(hit: DateHit, today: date, tense: Tense, week_shift: int | None = None) -> date | list[date] | None:
    """A single date for a day/weekday hit, or [past, future] candidates when tense cannot decide."""
    if hit.kind == "weekday":
        if week_shift is not None:
            monday = today - timedelta(days=today.weekday())
            return monday + timedelta(days=7 * week_shift + hit.weekday)
        past, fut = _weekday_options(hit.weekday, today)
        if past == fut:
            return past
        if tense == "past":
            return past
        if tense == "future":
            return fut
        return [past, fut]
    if hit.kind != "day" or hit.day is None:
        return None
    code = hit.md
    if code >= 100:
        return _month_day(code // 100, code % 100, today, tense) or hit.day
    if code:
        # day-of-month only (二十号): this month unless tense pushes it across a month boundary
        d = hit.day
        if tense == "past" and d > today:
            y, m = _shift_month(today.year, today.month, -1)
            return _mk(y, m, code) or d
        if tense == "future" and d < today:
            y, m = _shift_month(today.year, today.month, 1)
            return _mk(y, m, code) or d
        return d
    return hit.day


def iso(d: date) -> str:
    return d.isoformat()


def to_value(hit: DateHit, today: date, tense: Tense, week_shift: int | None = None) -> Any:
    """Schema value for a hit: 'YYYY-MM-DD', {raw, by}, {raw, range} or an ambiguous object."""
    if hit.kind == "vague":
        if hit.first is None or hit.last is None:
            return None
        days = [hit.first + timedelta(days=k) for k in range((hit.last - hit.first).days + 1)]
        return {"ambiguous": True, "raw": hit.raw, "candidates": [iso(x) for x in days],
                "note": "vague past: the exact day is not stated"}
    if hit.kind in ("period", "range"):
        if hit.first is None or hit.last is None:
            return None
        if hit.deadline:
            return {"raw": hit.raw, "by": iso(hit.last)}
        return {"raw": hit.raw, "range": [iso(hit.first), iso(hit.last)]}
    d = resolve_day(hit, today, tense, week_shift)
    if d is None:
        return None
    if isinstance(d, list):
        return {"ambiguous": True, "raw": hit.raw, "candidates": [iso(x) for x in d],
                "note": "bare weekday: last week or this coming one"}
    if not in_window(d, today):
        return None
    if hit.deadline:
        return {"raw": hit.raw, "by": iso(d)}
    return iso(d)


_HEADER = re.compile(
    rf"^\s*(?:(?:20\d{{2}}|[〇零一二三四五六七八九]{{4}})年)?(?P<m>{_MON})月(?P<d>{_DAY})[日号]?\s*"
    rf"(?:[,，]?\s*(?:星期|周|礼拜){_WD})?\s*[,，]?\s*(?:晴|阴|多云|小雨|中雨|大雨|雨|雪|小雪|大雪|雾|阵雨|晴转多云|多云转晴)?"
)


def header_date(text: str, today: date) -> tuple[date, int] | None:
    """A diary-style header ('11月20日 星期五 晴') at the very start: (date, end offset)."""
    m = _HEADER.match(text)
    if not m:
        return None
    tail = text[m.end(): m.end() + 1]
    # a header stands apart from the sentence: followed by punctuation/space or a weekday/weather marker
    if m.end() - m.start() <= len(m.group(0).strip()) and tail and tail not in " 。.,，;；:：\n" \
            and not re.search(r"(星期|周|礼拜|晴|阴|雨|雪|雾)", m.group(0)):
        return None
    mm, dd = _num(m.group("m")), _num(m.group("d"))
    if not mm or not dd:
        return None
    d = _month_day(mm, dd, today, "past")
    if d is None or not in_window(d, today):
        return None
    return d, m.end()
