"""Date expressions in cadre chat (今天, 上周五, 礼拜三, 11.18, 二〇二六年十一月二十日, 月底前, 腊月二十, 国庆后…) and their
resolution, with the official holiday/调休 calendar (chinese-calendar) and lunar dates (lunardate).

Finding is context-free; resolving takes a tense hint because a bare 周三 is past in a visit log and future in a plan.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache
from typing import Any, Literal

import chinese_calendar
from lunardate import LunarDate

from ._lexicon import SURNAMES
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

# ------------------------------------------------------------------------------------- holidays, 调休, lunar dates
# Official holidays (国务院办公厅 yearly notice) come from chinese-calendar, which also knows the make-up working days
# (调休). Lunar dates and festivals come from lunardate. Years chinese-calendar does not cover yet fall back to the
# fixed pattern of recent notices (weekends off, 五一 5 days, 国庆 7 days, 春节 除夕..初七) without 调休.
_OFFICIAL = ("元旦", "春节", "清明", "五一", "端午", "中秋", "国庆")
_FEST_ALIASES = {"过年": "春节", "大年初一": "春节", "大年三十": "除夕", "年三十": "除夕", "劳动节": "五一"}
_FEST_WORDS = r"春节|过年|大年初一|除夕|大年三十|年三十|小年|元宵|端午|中秋|重阳|腊八|七夕|清明|元旦|五一|劳动节|国庆"
_LUNAR_FEST = {"春节": (1, 1), "元宵": (1, 15), "端午": (5, 5), "七夕": (7, 7), "中秋": (8, 15), "重阳": (9, 9)}
_SOLAR_FEST = {"元旦": (1, 1), "五一": (5, 1), "国庆": (10, 1)}
_FALLBACK_LEN = {"元旦": 1, "清明": 1, "五一": 5, "端午": 1, "中秋": 1, "国庆": 7}
# 小年 is 腊月廿三 in the north and 廿四 in much of the south; Guizhou usage varies, so both are offered.
_XIAONIAN = (23, 24)


def _lunar(y: int, m: int, d: int) -> date | None:
    try:
        solar: date = LunarDate(y, m, d).to_solar_date()
        return solar
    except (ValueError, IndexError, OverflowError):
        if m == 12 and d == 30:  # 腊月三十 in a 29-day 腊月: 除夕 is the day before 正月初一
            first = _lunar(y + 1, 1, 1)
            return first - timedelta(days=1) if first else None
        return None


def _lunar_year(d: date) -> int:
    try:
        return int(LunarDate.from_solar_date(d.year, d.month, d.day).year)
    except (ValueError, IndexError, OverflowError):
        return d.year


def festival_day(name: str, year: int) -> date | None:
    """The day of a festival in Gregorian `year` (春节 2027 → 2027-02-06, 除夕 2027 → 2027-02-05)."""
    name = _FEST_ALIASES.get(name, name)
    if name in _SOLAR_FEST:
        return _mk(year, *_SOLAR_FEST[name])
    if name in _LUNAR_FEST:
        return _lunar(year, *_LUNAR_FEST[name])
    if name == "除夕":
        first = _lunar(year, 1, 1)
        return first - timedelta(days=1) if first else None
    if name == "腊八":
        return _lunar(year - 1, 12, 8)
    if name == "小年":
        return _lunar(year - 1, 12, _XIAONIAN[0])
    if name == "清明":
        try:
            for d, term in chinese_calendar.get_solar_terms(date(year, 4, 3), date(year, 4, 6)):
                if term == "清明":
                    day: date = d
                    return day
        except Exception:  # the solar-term table has limits too; 4-5 April is right for this century
            pass
        return date(year, 4, 5 if year % 4 in (2, 3) else 4)
    return None


def _fallback_rest(d: date) -> bool:
    if d.weekday() >= 5:
        return True
    for name, length in _FALLBACK_LEN.items():
        first = festival_day(name, d.year)
        if first and first <= d < first + timedelta(days=length):
            return True
    eve = festival_day("除夕", d.year)
    return eve is not None and eve <= d <= eve + timedelta(days=7)


@lru_cache(maxsize=4096)
def is_rest_day(d: date) -> bool:
    """A day off: weekend or public holiday, but not a 调休 working weekend day."""
    try:
        return not chinese_calendar.is_workday(d)
    except (NotImplementedError, ValueError):
        return _fallback_rest(d)


def holiday_block(name: str, year: int) -> tuple[date, date] | None:
    """The days off around an official holiday in `year` (国庆 2026 → 10-01..10-07); a plain festival is one day."""
    name = _FEST_ALIASES.get(name, name)
    day = festival_day(name, year)
    if day is None:
        return None
    if name not in _OFFICIAL or not is_rest_day(day):
        return day, day
    lo = hi = day
    while is_rest_day(lo - timedelta(days=1)) and (day - lo).days < 12:
        lo -= timedelta(days=1)
    while is_rest_day(hi + timedelta(days=1)) and (hi - day).days < 12:
        hi += timedelta(days=1)
    return lo, hi


def _block_near(name: str | None, today: date) -> tuple[date, date] | None:
    """The occurrence of a holiday nearest to `today` (a bare 节 means the nearest official holiday)."""
    names = [name] if name else list(_OFFICIAL)
    best: tuple[int, tuple[date, date]] | None = None
    for n in names:
        for y in (today.year - 1, today.year, today.year + 1):
            b = holiday_block(n, y)
            if b is None:
                continue
            dist = 0 if b[0] <= today <= b[1] else min(abs((b[0] - today).days), abs((b[1] - today).days))
            if best is None or dist < best[0]:
                best = (dist, b)
    return best[1] if best else None


def next_workday(d: date) -> date:
    d += timedelta(days=1)
    while is_rest_day(d):
        d += timedelta(days=1)
    return d


def previous_workday(d: date) -> date:
    d -= timedelta(days=1)
    while is_rest_day(d):
        d -= timedelta(days=1)
    return d


def makeup_workdays(first: date, last: date) -> list[date]:
    """Weekend days that are working days (调休) between first and last; empty where the calendar has no data."""
    out = []
    d = first
    while d <= last:
        if d.weekday() >= 5:
            try:
                if chinese_calendar.is_workday(d):
                    out.append(d)
            except (NotImplementedError, ValueError):
                pass
        d += timedelta(days=1)
    return out


def _festival_options(name: str, today: date) -> list[date]:
    return [d for d in (festival_day(name, today.year + k) for k in (-1, 0, 1)) if d is not None]


def _lunar_options(m: int, d: int, today: date) -> list[date]:
    ly = _lunar_year(today)
    return [x for x in (_lunar(ly + k, m, d) for k in (-1, 0, 1)) if x is not None]


def _lunar_day(s: str) -> int | None:
    if s.startswith("初"):
        return cn_int(s[1:])
    if s.startswith("廿"):
        return 20 + (cn_int(s[1:]) or 0) if len(s) > 1 else 20
    return cn_int(s)


_LUNAR_MONTH = {"正": 1, "冬": 11, "腊": 12}
_LDAY = r"(?:初[一二三四五六七八九十]|廿[一二三四五六七八九]?|二十[一二三四五六七八九]?|三十|十[一二三四五六七八九]?)"
# 国庆, 清明, 春节 are also given names (王国庆): a festival word right after a surname is left to the name rules.
_NOT_AFTER_SURNAME = "(?<![" + "".join(sorted(x for x in SURNAMES if len(x) == 1)) + "])"
_FEST = rf"{_NOT_AFTER_SURNAME}(?:{_FEST_WORDS})节?(?!轻)"
_NDAYS = {"一": 1, "两": 2, "二": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9, "十": 10}

# The leading lookahead rejects most positions with one char-class test instead of trying 14 alternatives.
_PATTERN = re.compile(
    r"(?=[0-9〇零一二三四五六七八九十今昨明前后大上本这下周星礼週月旬年正腊冬农阴春过除小元端中清国劳节重七去刚调补放收假])(?:"
    + "|".join(
        [
            # holidays and festivals: 国庆放假前最后一天, 节后上班第一天, 中秋前一天, 国庆假期里, 元旦后, 春节前, 中秋那天
            rf"(?P<h_last>{_FEST}|节)(?:放假|假期)?前(?:的)?最后一(?:天|个工作日)",
            rf"(?P<h_first>{_FEST}|节|放完假|收假|假期结束|收完假)(?:后|过后)?(?:上班|收假|开工)?(?:的)?第一(?:天|个工作日)",
            rf"(?P<h_off>{_FEST})(?P<h_dir>前|后)(?P<h_n>[一两二三四五六七八九十])天",
            rf"(?P<h_block>{_FEST})(?:放假|假期|长假|小长假|期间)(?:里|期间|中|那几天)?",
            # "国庆后那期 (培训)" names a session, not a time
            rf"(?:过了)?(?P<h_after>{_FEST}|节)(?:之后|以后|过后|后)(?!天|(?:的)?那一?期)",
            rf"过了(?P<h_after2>{_FEST})",
            rf"(?P<h_before>{_FEST})(?:之前|以前|前)(?!天)",
            rf"(?<!到){_NOT_AFTER_SURNAME}(?P<h_day>除夕|小年(?!轻)|元宵节?|端午节?|中秋节?|重阳节?|腊八节?|清明节|元旦|国庆节"
            rf"|大年初一|大年三十|年三十|(?:春节|五一|国庆|七夕|清明)(?=那天|当天))(?:那天|当天|那日)?",
            # a 调休 working weekend day: 调休上班那天, 补班的那个周六
            r"(?P<makeup>调休上班|调休补班|补班|调休)(?:的)?(?:那天|那个?(?:周|星期|礼拜)[六日天])",
            # lunar dates: 腊月二十, 正月初八, 农历八月十五, 三月初三
            rf"(?:农历|阴历)?(?P<l_m>[正冬腊])月(?P<l_d>{_LDAY})",
            rf"(?:农历|阴历)(?P<l_m2>十[一二]?|[一二三四五六七八九])月(?P<l_d2>{_LDAY})",
            r"(?P<l_m3>十[一二]?|[二三四五六七八九])月(?P<l_d3>初[一二三四五六七八九十]|廿[一二三四五六七八九]?)",
            # dev2 conventions: 过两天 = the next 1..3 days; 年底最后一天 = 12-31; 明年1月 = that month
            r"(?P<soon>过两三天|过两天|过2天)",
            r"(?P<lastday>年底|年末|今年|月底|月末|这个月|本月)(?:的)?最后一天",
            rf"(?P<yrel>明年|今年|去年)(?P<ymon>{_MON})月(?:份)?(?P<ympart>上旬|中旬|下旬|初|中|底|末)?(?![\d日号]|{_DAY}[日号])",
            # 刚/刚才 + a visit verb: just now, i.e. today
            r"(?:^|(?<=[\s,，。;；!！:：我们]))(?P<just>刚刚|刚才|刚)(?=电话|打|去|回访|走访|从|到|看|入户|开|和|跟|给|把|送|在)",
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
    options: tuple[date, ...] = ()  # a day recurring yearly (腊月二十, 中秋): the year is settled by tense later
    alternatives: tuple[date, ...] = ()  # truly ambiguous (小年, 春节前): reported as an ambiguity object
    note: str = ""


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
        if any(g(k) for k in _CAL_GROUPS):
            hit = _calendar_hit(mt, today)
        elif g("r_m1"):
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


_CAL_GROUPS = ("h_last", "h_first", "h_off", "h_block", "h_after", "h_after2", "h_before", "h_day", "makeup", "l_m",
               "l_m2", "l_m3", "soon", "lastday", "yrel", "just")


def _nearest(options: list[date], today: date) -> date | None:
    return min(options, key=lambda x: abs((x - today).days)) if options else None


def _calendar_hit(mt: re.Match[str], today: date) -> DateHit | None:
    """Holiday, festival, lunar and convention-based expressions (see the pattern comments)."""
    g = mt.group
    s, e, raw = mt.start(), mt.end(), mt.group(0)
    day: date | None
    if g("h_last") or g("h_first"):
        name = g("h_last") or g("h_first")
        generic = name in ("节", "放完假", "收假", "假期结束", "收完假")
        b = _block_near(None if generic else _fest(name), today)
        if b is None:
            return None
        day = previous_workday(b[0]) if g("h_last") else next_workday(b[1])
        return DateHit(s, e, raw, "day", day=day)
    if g("h_off"):
        n = _NDAYS.get(g("h_n"), 1) * (-1 if g("h_dir") == "前" else 1)
        opts = [d + timedelta(days=n) for d in _festival_options(_fest(g("h_off")), today)]
        day = _nearest(opts, today)
        return DateHit(s, e, raw, "day", day=day, options=tuple(opts)) if day else None
    if g("h_block"):
        b = _block_near(_fest(g("h_block")), today)
        return DateHit(s, e, raw, "period", first=b[0], last=b[1]) if b else None
    if g("h_after") or g("h_after2"):
        name = g("h_after") or g("h_after2")
        b = _block_near(None if name == "节" else _fest(name), today)
        if b is None:
            return None
        # "after the holiday": its first working week, i.e. the five working days after it (调休 days included)
        first = last = next_workday(b[1])
        for _ in range(4):
            last = next_workday(last)
        return DateHit(s, e, raw, "period", first=first, last=last)
    if g("h_before"):
        name = _fest(g("h_before"))
        if name == "春节":
            eve = _nearest(_festival_options("除夕", today), today)
            if eve is None:
                return None
            return DateHit(s, e, raw, "day", day=eve, deadline=True, alternatives=(eve, eve + timedelta(days=1)),
                           note="春节前: by 除夕 or by 正月初一")
        blocks = [holiday_block(name, today.year + k) for k in (-1, 0, 1)]
        opts = [bl[0] - timedelta(days=1) for bl in blocks if bl is not None]
        day = _nearest(opts, today)
        return DateHit(s, e, raw, "day", day=day, deadline=True, options=tuple(opts)) if day else None
    if g("h_day"):
        name = _fest(re.sub(r"(?:那天|当天|那日)$", "", g("h_day")))
        opts = _festival_options(name, today)
        day = _nearest(opts, today)
        if day is None:
            return None
        if name == "小年":
            eve = day
            return DateHit(s, e, raw, "day", day=eve, alternatives=(eve, eve + timedelta(days=1)),
                           note="小年: 腊月廿三 (north) or 廿四 (much of the south)")
        return DateHit(s, e, raw, "day", day=day, options=tuple(opts))
    if g("makeup"):
        opts = makeup_workdays(today - timedelta(days=45), today + timedelta(days=45))
        if re.search(r"(?:周|星期|礼拜)[六日天]$", raw):  # 补班的那个周六: only the Saturdays
            opts = [x for x in opts if x.weekday() == (5 if raw[-1] == "六" else 6)]
        day = _nearest(opts, today)
        return DateHit(s, e, raw, "day", day=day, options=tuple(opts)) if day else None
    if g("l_m") or g("l_m2") or g("l_m3"):
        ms = g("l_m") or g("l_m2") or g("l_m3")
        m = _LUNAR_MONTH.get(ms) or cn_int(ms)
        d = _lunar_day(g("l_d") or g("l_d2") or g("l_d3"))
        if not m or not d or not 1 <= m <= 12 or not 1 <= d <= 30:
            return None
        opts = _lunar_options(m, d, today)
        day = _nearest(opts, today)
        return DateHit(s, e, raw, "day", day=day, options=tuple(opts)) if day else None
    if g("soon"):
        return DateHit(s, e, raw, "period", first=today + timedelta(days=1), last=today + timedelta(days=3))
    if g("lastday"):
        word = g("lastday")
        if word in ("年底", "年末", "今年"):
            return DateHit(s, e, raw, "day", day=date(today.year, 12, 31))
        return DateHit(s, e, raw, "day", day=_month_bounds(today.year, today.month)[1])
    if g("yrel"):
        y = today.year + {"明年": 1, "今年": 0, "去年": -1}[g("yrel")]
        m = _num(g("ymon"))
        if not m or not 1 <= m <= 12:
            return None
        a, b2 = _part(y, m, g("ympart")) if g("ympart") else _month_bounds(y, m)
        return DateHit(s, e, raw, "period", first=a, last=b2)
    if g("just"):
        return DateHit(s, e, raw, "day", day=today)
    return None


def _fest(word: str) -> str:
    w = word if word in _FEST_ALIASES or len(word) <= 2 else word.rstrip("节")
    return _FEST_ALIASES.get(w, w)


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
    if hit.options:
        opts = list(hit.options)
        # the next (or last) occurrence for the tense, unless it is far off and one a few days the other way exists:
        # 腊月二十 said two days after it in a narrative is not next year's
        sign = {"past": -1, "future": 1}.get(tense or "", 0)
        if sign:
            ahead = [x for x in opts if (x - today).days * sign >= 0]
            near_miss = [x for x in opts if -7 <= (x - today).days * sign < 0]
            best = _nearest(ahead, today)
            if best is not None and (abs((best - today).days) <= 45 or not near_miss):
                return best
            return _nearest(near_miss, today) or best
        return _nearest(opts, today)
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
    if hit.alternatives:
        return {"ambiguous": True, "raw": hit.raw, "candidates": [iso(x) for x in hit.alternatives],
                "note": hit.note or "more than one reading"}
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
