"""Training course names: finding them in a message, cleaning them, and fuzzy-matching against a catalogue.

Matching blends character similarity (rapidfuzz) with pinyin similarity so that 刺黎→刺梨 and 家证→家政 still match.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from functools import lru_cache

from rapidfuzz import fuzz

from ._lexicon import TRADES, trie_regex

_FILLER_RE = re.compile(r"(?:培训班|培训|技术|技能|课程|班|课|那期|这期|那个|这个|第[一二三四五六七八九十\d]+期|[那这本下上]期)")
_LEAD_FILLER = re.compile(r"^(?:那个|这个|那期|这期|那|这|个|的)+")
_TRADE_RE = re.compile(trie_regex(TRADES))
# Common abbreviations cadres type; expanded before matching.
_ALIASES = {"挖机": "挖掘机", "电焊工": "电焊", "焊工": "电焊", "家证": "家政", "育婴师": "育婴员", "养蜂": "蜜蜂养殖",
            "蜜蜂": "蜜蜂养殖", "面点": "中式面点", "月嫂": "月嫂", "刺黎": "刺梨"}


def core(name: str) -> str:
    """Course name without filler words (培训, 班, 技术, 那个…)."""
    c = _FILLER_RE.sub("", name or "")
    c = _LEAD_FILLER.sub("", c).strip(" 的")
    return c or (name or "").strip()


@lru_cache(maxsize=4096)
def _py(s: str) -> str:
    from pypinyin import Style, lazy_pinyin

    try:
        return " ".join(lazy_pinyin(s, style=Style.NORMAL))
    except Exception:
        return s


def _subseq(short: str, long: str) -> bool:
    it = iter(long)
    return all(ch in it for ch in short)


def _score(query: str, cand: str) -> float:
    q, c = core(query), core(cand)
    if not q or not c:
        return 0.0
    q = _ALIASES.get(q, q)
    if q == c:
        return 100.0
    char = float(fuzz.ratio(q, c))
    partial = float(fuzz.partial_ratio(q, c)) if min(len(q), len(c)) >= 2 else 0.0
    best = max(char, 0.9 * partial)
    if best < 88.0:
        # pinyin only when characters disagree: catches typed homophones (刺黎/刺梨) and spares the pypinyin import
        pin = float(fuzz.ratio(_py(q), _py(c)))
        ppartial = float(fuzz.partial_ratio(_py(q), _py(c))) if len(q) >= 2 else 0.0
        best = max(best, 0.92 * pin, 0.85 * ppartial)
    if len(q) >= 2 and q in c:
        best = max(best, 90.0 - 2 * (len(c) - len(q)))
    elif len(q) >= 2 and _subseq(q, c) and q[0] == c[0]:
        best = max(best, 80.0 - 2 * (len(c) - len(q)))  # abbreviation: 挖机 ⊂ 挖掘机操作
    return round(min(best, 99.0), 1)


def match_course(name: str, catalogue: Iterable[str]) -> list[tuple[str, float]]:
    """Catalogue entries ranked by similarity to `name` (0-100); entries scoring under 50 are left out."""
    try:
        scored = [(c, _score(name, c)) for c in dict.fromkeys(catalogue) if c]
    except Exception:
        return []
    scored = [x for x in scored if x[1] >= 50.0]
    scored.sort(key=lambda x: (-x[1], len(x[0])))
    return scored


# ---------------------------------------------------------------------------------------------- in a message
_COURSE_END = re.compile(r"培训班|培训|技术班|班(?![子长级车主])|课程")
_COURSE_STOP = ("参加", "报名", "一下", "下", "把", "报", "想", "要", "去", "了", "的", "帮", "在", "和", "是", "有", "搞", "开展", "举办", "组织",
                "本次", "开", "办", "上", "县", "镇", "乡", "村", "局", "中心", "免费", "期", "次", "个", "名", "今天", "明天",
                "昨天", "今年", "一", "场", "们", "对", "给", "将", "于", "启动", "进行", "关于", "个人", "学", "习",
                "退出", "退掉", "取消", "不去", "名额", "换成", "顶替", "代替", "说", "户", "厂", "进厂", "打工", "外出")
_KEEP_LEAD = ("那个", "这个")
_NOT_A_COURSE = re.compile(r"中心|基地|学校|机构|学院|站|室|费|补贴|资金|经费")


_INNER_SKIP = ("免费", "的", "那个", "这个")


def _course_before(text: str, end: int, start_limit: int) -> int:
    """Start index of the course name that ends at `end` (the char after 培训/班).
    Words that sit between a name and its 培训 (刺梨管护的培训, 焊工、电工免费培训, 育婴员（初级）培训班) are stepped over."""
    i = end
    stepped = True
    while stepped:
        stepped = False
        for w in _INNER_SKIP:
            if text[max(0, i - len(w)):i] == w and i - len(w) > start_limit:
                i -= len(w)
                stepped = True
    if text[i - 1:i] in ")）":
        open_at = max(text.rfind("(", start_limit, i), text.rfind("（", start_limit, i))
        if open_at > start_limit:
            i = open_at
    st = _course_scan(text, i, start_limit)
    # a list of trades sharing one 培训: 焊工、电工培训
    while st >= 2 and text[st - 1] in "、和及" and st < end:
        m = _TRADE_RE.search(text, max(start_limit, st - 6), st - 1)
        if m is None or m.end() != st - 1:
            break
        st = m.start()
    return st


def _course_scan(text: str, end: int, start_limit: int) -> int:
    i = end
    while i > start_limit:
        ch = text[i - 1]
        if not ("\u4e00" <= ch <= "\u9fff"):
            break
        two = text[i - 2: i]
        if two in _KEEP_LEAD:
            return i - 2
        if two in _COURSE_STOP and i - 2 >= start_limit:
            break
        if ch in _COURSE_STOP:
            break
        i -= 1
    return i


def _floor(avoid: Sequence[tuple[int, int]], pos: int, limit: int) -> int:
    """`limit` raised past any avoided span (a person's name, a village) that ends at or before `pos`."""
    for s, e in avoid:
        if s < pos and limit < e:
            limit = min(e, pos)
    return limit


def find_course(text: str, avoid: Sequence[tuple[int, int]] = ()) -> tuple[str, int] | None:
    """(course as written, start offset) or None. `avoid` spans (names, villages) are never part of a course:
    "苏文斌蜜蜂养殖不去了" gives 蜜蜂养殖, not 苏文斌蜜蜂养殖."""
    for m in _COURSE_END.finditer(text):
        if any(s < m.end() and m.start() < e for s, e in avoid):
            continue
        if _NOT_A_COURSE.match(text, m.end()):
            continue  # 培训中心 / 培训基地: a place, not a course
        st = _course_before(text, m.start(), _floor(avoid, m.start(), max(0, m.start() - 10)))
        if st >= m.start() or not core(text[st:m.start()]).strip("的 "):
            continue  # 各村的培训报名表: nothing names the course
        # 值班/上班/加班 are not classes: a bare 班 only counts after a trade word
        if m.group(0) == "班" and not _TRADE_RE.search(text, st, m.start()):
            continue
        return text[st:m.end()], st
    for t in _TRADE_RE.finditer(text):
        st, en = t.start(), t.end()
        if any(s < en and st < e for s, e in avoid):
            continue
        st = _course_before(text, st, _floor(avoid, st, max(0, st - 4)))  # a typo'd head glued to it: 刺黎种植
        # extend over a following trade-word or 培训/班 glued to it (蜜蜂养殖, 刺梨修剪)
        while True:
            n2 = _TRADE_RE.match(text, en)
            if not n2 or n2.end() == en:
                break
            en = n2.end()
        tail = _COURSE_END.match(text, en)
        if tail:
            en = tail.end()
        lead = text[max(0, st - 2): st]
        if lead in _KEEP_LEAD:
            st -= 2
        return text[st:en], st
    return None


_NORM_LEAD = re.compile(r"^(?:(?:县里|镇上|区里|乡里|市里|村里|今年|明年|年后|年前|节后|下个?月|这个?月|[上下本这那]期|第[一二三四五六七八九十\d]+期)"
                        r"|那个|这个|那期|这期|那|这|个|的|一个|免费的?)+")
_NORM_DROP = re.compile(r"免费|的(?=培训|班|$)|(?:那|这|本|下|上)期|第[一二三四五六七八九十\d]+期")
_NORM_TAIL = re.compile(r"(?:培训班|培训|班|课程|课)$")


def _trade_vocab() -> tuple[str, ...]:
    words = {w for w in TRADES if len(w) >= 2} | {"挖掘机", "电焊", "月嫂", "家政", "刺梨", "育婴员", "烹调", "蜂糖李"}
    return tuple(sorted(words, key=len, reverse=True))


_VOCAB = _trade_vocab()
_VOCAB_SET = frozenset(_VOCAB)
# Abbreviations that are not typos: the short form is how cadres type the trade (挖机 for 挖掘机).
_ABBREV = {"挖机": "挖掘机"}


def _near(win: str, w: str) -> bool:
    """`win` is the trade word `w` itself, or one char off it (same first char of a 3+-char word, or a homophone)."""
    if len(win) < len(w):
        return False
    if win == w:
        return True
    if win in _VOCAB_SET or sum(a != b for a, b in zip(win, w, strict=True)) != 1:
        return False
    return (len(w) >= 3 and win[0] == w[0]) or _py(win) == _py(w)


def _fix_typos(c: str) -> str:
    """Replace a window that is one keystroke off a trade word: a homophone (电汗→电焊, 月扫→月嫂) or, for a
    3+-char word, one substituted char with the rest in place (挖据机→挖掘机)."""
    for short, full in _ABBREV.items():
        if short in c and full not in c:
            c = c.replace(short, full)
    out = c
    i = 0
    while i < len(out):
        w = next((w for w in _VOCAB if _near(out[i:i + len(w)], w)), None)
        if w is None:
            i += 1
            continue
        out = out[:i] + w + out[i + len(w):]
        i += len(w)
    return out


def normalise_course(course: str) -> str:
    """The course name as written, cleaned: leading filler and period words dropped, a typo of a known trade
    fixed, '培训' as the one suffix. It is not mapped to a catalogue name (刺梨培训 stays 刺梨培训): matching the
    county's real catalogue is the chat flow's job (`match_course`)."""
    return _normalise_cached(course)


@lru_cache(maxsize=4096)
def _normalise_cached(course: str) -> str:
    c = (course or "").strip()
    c = _NORM_LEAD.sub("", c)
    c = _NORM_DROP.sub("", c)
    c = _NORM_TAIL.sub("", c).strip(" 的")
    if not c:
        return (course or "").strip()
    c = _fix_typos(c)
    return c + "培训"
