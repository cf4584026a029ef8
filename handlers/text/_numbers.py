"""Chinese and Arabic numeral reading as cadres type them: 两床, 3万2, 一万五, 二〇二六, 半吨.

cn2an is strict about colloquial forms (3万2, 一万五) and costs 0.2 s to import, so this is hand-rolled.
"""

from __future__ import annotations

import re

DIGITS = {"零": 0, "〇": 0, "○": 0, "一": 1, "二": 2, "两": 2, "俩": 2, "三": 3, "四": 4, "五": 5,
          "六": 6, "七": 7, "八": 8, "九": 9, "幺": 1}
UNITS = {"十": 10, "百": 100, "千": 1000}
BIG = {"万": 10_000, "亿": 100_000_000}

# One numeral token: Arabic (with optional decimal and 万 shorthand) or a run of Chinese numeral chars.
NUM = r"(?:\d+(?:\.\d+)?(?:万\d+千|[万千百]\d?)?|[零〇一二两俩三四五六七八九十百千万]+|半)"
NUM_RE = re.compile(NUM)


def _small_cn(s: str) -> int | None:
    """Value of a Chinese numeral below 10,000 ('三千五' -> 3500, '十二' -> 12)."""
    if not s:
        return 0
    total = 0
    cur: int | None = None
    last_unit = 1
    for ch in s:
        if ch in DIGITS:
            cur = DIGITS[ch]
        elif ch in UNITS:
            u = UNITS[ch]
            total += (1 if cur is None else cur) * u
            cur = None
            last_unit = u
        else:
            return None
    if cur is not None:
        # '一千五' means 1500: a trailing bare digit scales to one unit below the last unit seen.
        total += cur * (last_unit // 10 if last_unit >= 100 and s[-2] in UNITS else 1)
    return total


def cn_int(s: str) -> int | None:
    """Read a Chinese numeral string; digit runs like '二〇二六' read positionally."""
    if not s:
        return None
    if all(ch in DIGITS for ch in s) and len(s) > 1:
        return int("".join(str(DIGITS[ch]) for ch in s))
    for big_ch, big_val in sorted(BIG.items(), key=lambda kv: -kv[1]):
        if big_ch in s:
            head, _, tail = s.partition(big_ch)
            hv = cn_int(head) if head else 1
            if hv is None:
                return None
            if tail and len(tail) == 1 and tail in DIGITS:
                # '一万五' = 15000 (tail is the next-lower digit place)
                return hv * big_val + DIGITS[tail] * big_val // 10
            tv = cn_int(tail) if tail else 0
            if tv is None:
                return None
            return hv * big_val + tv
    return _small_cn(s)


def parse_number(s: str) -> float | int | None:
    """Parse one numeral token ('3000', '3万2', '一万五', '两', '半', '1.5'); None if unreadable."""
    s = s.strip()
    if not s:
        return None
    if s == "半":
        return 0.5
    if re.match(r"^[一二三四五六七八九]{2}[十百千万]", s) and s[0] != s[1]:
        return None  # 五六万, 七八千: a rough range, not a quantity to record
    m2 = re.fullmatch(r"(\d+(?:\.\d+)?)万(\d+)千", s)
    if m2:  # 1万2千 = 12000
        val2 = float(m2.group(1)) * 10_000 + int(m2.group(2)) * 1000
        return int(val2) if val2 == int(val2) else val2
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([万千百])?(\d)?", s)
    if m:
        base = float(m.group(1))
        if m.group(2):
            mult = {"万": 10_000, "千": 1000, "百": 100}[m.group(2)]
            val = base * mult + (int(m.group(3)) * mult // 10 if m.group(3) else 0)
        else:
            val = base
        return int(val) if val == int(val) else val
    if s.endswith("半") and len(s) > 1:
        head = cn_int(s[:-1])
        return None if head is None else head + 0.5
    v = cn_int(s)
    return v
