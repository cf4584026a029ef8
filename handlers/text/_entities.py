"""Villages, person names, clauses, household sizes and phone numbers found in a normalised message.

Names are found by surname + context rules (jieba without HMM splits unknown names into single chars, which is
exactly what these rules expect); registered names arrive as whole jieba tokens via the registry's dictionary.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ._lexicon import (
    COMPOUND_SURNAMES,
    KIN_WORDS,
    NAME_STOP,
    NEED_KEYWORDS,
    NOT_GIVEN2,
    SURNAMES,
    TRADES,
    VILLAGE_BAD_START,
    VILLAGE_BAD_WORDS,
    VILLAGE_NEXT_BAD,
    trie_regex,
)
from ._numbers import NUM, parse_number
from ._segment import jieba, word_freq

log = logging.getLogger(__name__)

Role = Literal["head", "member", "visitor"]


@dataclass(slots=True)
class Span:
    start: int
    end: int
    text: str


@dataclass(slots=True)
class NameHit:
    start: int
    end: int
    name: str
    role: Role
    kin: str = ""  # the kin word right before a member name (他表哥覃小东 -> 表哥)
    strong: bool = False


def tokenize(tok: jieba.Tokenizer, text: str) -> list[str]:
    # HMM off: ~40% faster, and unknown names stay as single chars that the surname rules piece together.
    return list(tok.cut(text, HMM=False))


def boundaries(tokens: list[str]) -> set[int]:
    out = {0}
    pos = 0
    for t in tokens:
        pos += len(t)
        out.add(pos)
    return out


def token_spans(tokens: list[str], wanted: frozenset[str]) -> list[Span]:
    """Tokens that are in `wanted` (registered names/villages), with offsets."""
    out: list[Span] = []
    pos = 0
    for t in tokens:
        if t in wanted:
            out.append(Span(pos, pos + len(t), t))
        pos += len(t)
    return out


_WINDOW = 8


def window_bounds(tok: jieba.Tokenizer, text: str) -> set[int]:
    """Token boundaries only where they matter (just before 村/组/寨): segmenting short windows instead of the
    whole message keeps parse() well under the cost of one jieba.lcut of it."""
    out: set[int] = {0}
    last_end = -1
    for m in _VILLAGE_SUFFIX.finditer(text):
        p = m.start()
        s = max(0, p - _WINDOW, last_end)
        if s >= p:
            continue
        pos = s
        out.add(s)
        for w in tok.cut(text[s:p + 1], HMM=False):
            pos += len(w)
            out.add(pos)
        last_end = p + 1
    return out


# ---------------------------------------------------------------------------------------------------- villages
_VILLAGE_SUFFIX = re.compile(r"[村组寨屯]")
_HAN = re.compile(r"[\u4e00-\u9fff]+")
_VILLAGE_PREFIX_CHARS = frozenset("大小新老东西南北中高长白黑红青石龙马金银坝沙岩水田山河")
_STEM_BAD_END = frozenset("各每全本该这那哪我你他她们个的了乡")  # 乡: 乡村振兴 is no village
# A char before a 3-char stem that cannot belong to the name: the message start, punctuation or a preposition
# (去凉水井组, 给花红树组). Then the whole stem is the name even when its last two chars are a word (红树, 水井).
_STEM_LEFT_EDGE = frozenset("在去到给了从和跟往是住找问帮送拉户访趟次遍过")
_NOT_VILLAGE_NEXT = frozenset("子")  # 寨子 / 村子: the common noun
_STEM_NEVER = frozenset("趟次遍陪今昨明")  # 去了两趟鲊屯, 今天陪村…: a verb phrase, not a name
# Guizhou toponyms without 村/组 (周家湾, 黄家坝, 茅草坪, 鲊屯, 坝脚, 王官) end in a landform or settlement char.
GEO_TAIL = frozenset("湾坝坪寨屯脚头沟坡岩冲坎塘井田山岭垭堡营关场坳院板林官庄凹槽箐河桥洞坝滩弯窝厂铺")


def find_villages(text: str, bounds: set[int], known: list[Span] | None = None) -> list[Span]:
    """Village-like names ending in 村/组/寨 as written; a 组 right after a village is folded into it.
    `known` are registered villages already located as jieba tokens."""
    out: list[Span] = list(known or [])
    covered = bytearray(len(text) + 1)
    for k in out:
        covered[k.start:k.end] = b"\x01" * (k.end - k.start)
    for m in _VILLAGE_SUFFIX.finditer(text):
        p = m.start()
        if covered[p]:
            continue
        nxt = text[p + 1: p + 2]
        if nxt and (nxt in VILLAGE_NEXT_BAD or nxt in _NOT_VILLAGE_NEXT) and not (nxt == "两" and text[p + 2: p + 3] != "委"):
            continue
        if text[p - 1: p].isdigit() or text[p - 1: p] in "一二三四五六七八九十":
            continue  # 3组 / 二组: a sub-unit number, not a name
        best: str | None = None
        s3, s2 = text[max(0, p - 3):p], text[max(0, p - 2):p]
        ok2 = (len(s2) == 2 and _HAN.fullmatch(s2) is not None and s2[0] not in VILLAGE_BAD_START
               and s2[-1] not in _STEM_BAD_END and (p - 2) in bounds)
        edge = p == 3 or (p > 3 and (text[p - 4] in _DELIMS or text[p - 4] in _STEM_LEFT_EDGE))
        ok3 = (len(s3) == 3 and _HAN.fullmatch(s3) is not None and s3[0] not in VILLAGE_BAD_START
               and s3[-1] not in _STEM_BAD_END and ((p - 3) in bounds or edge)
               and ((p - 2) not in bounds or s3[0] in _VILLAGE_PREFIX_CHARS or s3[1] in "家" or edge)
               and s3[1] not in VILLAGE_BAD_START and not any(ch in _STEM_NEVER for ch in s3))
        ok1 = (p >= 1 and text[p - 1] in _ONE_CHAR_STEMS and (p == 1 or text[p - 2] in _DELIMS or text[p - 2] in "①②③④⑤⑥⑦⑧⑨")
               and text[p] in "寨屯" and text[p + 1:p + 2] not in ("村", "组"))
        if ok3:
            best = s3
        elif ok2:
            best = s2
        elif ok1:
            best = text[p - 1]
        if best is None:
            continue
        name = best + text[p]
        if name in VILLAGE_BAD_WORDS or any(ch in "的了是在和" for ch in best) or "大家" in text[max(0, p - 4):p]:
            continue
        out.append(Span(p - len(best), p + 1, name))
    out.sort(key=lambda s: s.start)
    # drop a 组/寨 glued to a preceding 村 (高坡村三组 → 高坡村)
    merged: list[Span] = []
    for s in out:
        if merged and s.start <= merged[-1].end + 2 and merged[-1].text.endswith("村") and not s.text.endswith("村"):
            continue
        if merged and s.start < merged[-1].end:
            continue
        merged.append(s)
    return merged


_ONE_CHAR_STEMS = frozenset("新老上下大小中前后东西南北高")  # 新寨, 上寨, 下寨 at the start of an entry
_PLACE_NOT_FIRST = frozenset("了去到在从跟给的两把又")
_PLACE_CUE = ("去了", "去", "到了", "到", "在", "从", "跟", "给", "回访了", "看了", "走访了", "走了", "入户", "慰问")


def bare_places(text: str, heads: list[tuple[int, int]], taken: list[Span]) -> list[Span]:
    """Place names written without 村/组 (周家湾周德林, 去了黄家坝黄光贵家, "水井湾 何光全"): a 2-4 char run ending in a
    landform char (GEO_TAIL), standing right before a household head or as a token of its own next to one, and
    opened by a place cue, a delimiter or the message start."""
    out: list[Span] = []
    used = [(v.start, v.end) for v in taken]

    def free(a: int, b: int) -> bool:
        return all(b <= x or a >= y for x, y in used)

    for hs, _he in heads:
        # glued: the run right before the name
        for size in (4, 3, 2):
            a = hs - size
            if a < 0:
                continue
            run = text[a:hs]
            if not _HAN.fullmatch(run) or run[-1] not in GEO_TAIL or not free(a, hs) or run[0] in _PLACE_NOT_FIRST \
                    or any(ch in _STEM_NEVER for ch in run):
                continue
            left = text[:a]
            if a == 0 or left[-1] in _DELIMS or left.endswith(_PLACE_CUE):
                out.append(Span(a, hs, run))
                used.append((a, hs))
                break
        else:
            # a token of its own just before the name ("①上寨 罗文才", "水井湾 何光全")
            m = re.search(r"([\u4e00-\u9fff]{2,4})[ \u3000,，:：]+$", text[max(0, hs - 8):hs])
            if m:
                run = m.group(1)
                a = max(0, hs - 8) + m.start(1)
                if run[-1] in GEO_TAIL and free(a, a + len(run)) and (a == 0 or text[a - 1] in _DELIMS or text[a - 1] in "①②③④⑤⑥⑦⑧⑨"):
                    out.append(Span(a, a + len(run), run))
                    used.append((a, a + len(run)))
    return out


# ------------------------------------------------------------------------------------------------------- names
_DELIMS = frozenset(" ,，、:：;；。.!！?？()（）【】[]|｜\"'“”‘’《》<>-~—\n\t/→=")
_CUE_BEFORE = (
    "户主", "看了", "看望", "探望", "走访", "回访", "入户", "慰问", "去", "到", "给", "帮", "替", "和", "跟", "与", "及", "把", "是",
    "叫", "找", "问", "报", "访", "了", "过", "户", "家的", "老人", "村民", "脱贫户", "监测户", "低保户", "农户", "群众",
    "为", "让", "由", "向", "对", "请", "通知", "联系", "名字", "姓名", "还有", "改成", "换成", "换", "替换", "顶替",
    "加上", "加", "添上", "算上", "包括", "有", "见了", "遇到", "碰到", "打给", "电话给", "就是", "的",
    "代替", "接替", "让给", "转给", "取消", "撤掉", "去掉", "划掉", "删掉", "退掉", "那期", "这期", "上期", "下期", "本期", "培训", "班",
    "说", "陪", "从", "看看", "一下", "里面", "里头", "名单",
)
# What right after a name marks it as a trainee being withdrawn or swapped: enough to trust a name that is also a
# dictionary word (李四换王五, 李四的名额给王五).
_SWAP_AFTER = ("换成", "换为", "改成", "改为", "顶替", "代替", "接替", "替", "换", "的名额", "的报名", "名额", "不去了", "不来了",
               "不参加", "退出", "去不了", "来不了")
_SWAP_BEFORE = frozenset({"换成", "换为", "改成", "改为", "顶替", "代替", "接替", "替", "换", "名额给", "让给", "转给"})
_VISITOR_CUES = ("走访人", "帮扶人", "记录人", "填表人", "责任人", "帮扶干部", "驻村干部", "网格员", "书记", "主任", "队长",
                 "第一书记", "工作队", "填报人", "走访干部")
_KIN_SORTED = tuple(sorted(KIN_WORDS, key=len, reverse=True))
_BAD_NAME_TAIL = re.compile(r"[0-9A-Za-z]")
_NAME_STOP_AFTER = NAME_STOP
# Chars that end a name only when they start a time word (王强明天…), otherwise common given-name chars (杨光明).
_NAME_CHAR_UNLESS_TIME = frozenset("明今昨前后才")
_TIME_TAIL = frozenset("天年早晚儿日个后")
_SURNAME_CLASS = "".join(sorted(SURNAMES))
_KIN_FORM = re.compile(
    rf"老(?P<a>[{_SURNAME_CLASS}])(?:头|汉|太|婆)?(?=家|那户|屋头)|(?P<b>[{_SURNAME_CLASS}])(?:大|二|三|四|幺|小)?"
    r"(?:大妈|大娘|大爷|大伯|大叔|大婶|大姐|大哥|二哥|二姐|三哥|叔|婶|伯|嫂|奶奶|爷爷|婆婆|老汉|老太|老师|师傅|支书"
    r"|二?嬢|孃|幺爸|伯娘|幺妹|医生|书记|主任|校长|站长|所长)"
)
# Someone named by a title (韦老师, 杨医生, 李书记) is a helper on the visit, never the household.
_TITLE_TAIL = ("老师", "师傅", "支书", "医生", "书记", "主任", "校长", "站长", "所长")
# What right after a would-be name marks it as a person even without a cue before it (坝脚韦明光家, 竹林湾谢光林两口子,
# 给龙潭湾石光明打了电话): a home, a couple, speech, a kin relation, a call.
_RIGHT_CUE = re.compile(r"家|那户|户(?![口主])|两口子?|老两口|说|讲|的(?:儿子|女儿|媳妇|老婆|老公|老伴|孙|妈|爸|哥|弟|姐|妹)"
                        r"|他(?:妈|爸|哥|弟|姐|妹|老婆|媳妇|儿子|女儿)|打了?电话|打了|接电话|屋头|报名|报个名|不去了|去不了|聊|视频|通了?电话"
                        r"|[\s，,]+(?:他|她)(?:说|讲|家|们)|\s*(?:\d{1,2}|[一二两三四五六七八九十])口(?!水)")


_VISITOR_SET = frozenset(_VISITOR_CUES)
_WEAK_CUES = frozenset({"说", "陪", "从", "看看"})
_TRADE_SET = frozenset(t for t in TRADES if len(t) >= 2)
_KIN_SET = frozenset(k for k in KIN_WORDS if len(k) >= 2)
_CUE_SET = frozenset(_CUE_BEFORE)
_STRONG_CUES = frozenset({"户主", "看望", "探望", "看了", "慰问"})


def _suffix_in(s: str, words: frozenset[str], longest_first: bool = True) -> str:
    """The longest (1-5 char) suffix of s found in `words`, or ''."""
    for k in range(min(5, len(s)), 0, -1):
        if s[-k:] in words:
            return s[-k:]
    return ""


def _left_context(text: str, i: int, village_ends: set[int]) -> tuple[bool, bool, str, bool]:
    """(ok, strong, kin word, visitor) for a name starting at i."""
    if i == 0:
        return True, False, "", False
    if i in village_ends:
        return True, True, "", False
    prev = text[i - 1]
    before = text[max(0, i - 6): i]
    stripped = before.rstrip(" :：")
    if _suffix_in(stripped, _VISITOR_SET):
        return True, True, "", True
    kin = _suffix_in(before, _KIN_SET)
    if kin:
        return True, True, kin, False
    if prev in _DELIMS:
        return True, stripped.endswith(("户主", "姓名")), "", False
    cue = _suffix_in(before, _CUE_SET)
    if cue:
        return True, cue in _STRONG_CUES, "", False
    return False, False, "", False


_KEYWORD_RE = re.compile(trie_regex(list(NEED_KEYWORDS) + list(TRADES)))


def _is_lexical(word: str) -> bool:
    """True when a would-be name is really a domain word (易迁, 申请 …)."""
    m = _KEYWORD_RE.match(word)
    return m is not None and m.end() >= 2


def _load_given_chars() -> dict[str, int]:
    path = Path(__file__).with_name("data") / "given_name_chars.tsv"
    out: dict[str, int] = {}
    try:
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("#"):
                    continue
                ch, _, n = line.rstrip("\n").partition("\t")
                if ch and n.isdigit():
                    out[ch] = int(n)
    except OSError:  # a broken install: fall back to the context rules alone
        log.warning("given-name char table missing at %s", path)
    return out


# How often each char appears in a given name (see bench/given_name_chars.py). A char never seen there (塌, 况, 种)
# cannot continue a name, which rejects "路塌" / "解情况" / "包谷种" without listing those words.
GIVEN_CHARS = _load_given_chars()


def _run_len(text: str, pos: int) -> int:
    m = _HAN.match(text, pos)
    return len(m.group(0)) if m else 0


def _implausible(given: str) -> bool:
    return bool(GIVEN_CHARS) and any(GIVEN_CHARS.get(ch, 0) == 0 for ch in given)


_BIRTH_ORDER = frozenset("大二三四五六七八九十幺")
_HAN_CHAR = re.compile(r"[\u4e00-\u9fff]")
_GLUE_BAD = frozenset("的了是在和去到说要想把给家户村组寨口人里有没")
_SURNAME_POS = re.compile("[" + "".join(sorted(SURNAMES)) + "]|" + "|".join(COMPOUND_SURNAMES))


def find_names(text: str, tok: jieba.Tokenizer, villages: list[Span], known: list[Span],
               blocked: list[tuple[int, int]]) -> list[NameHit]:
    """Person names in order of appearance with their role (head / member / visitor).
    `known` are registered names already located as jieba tokens."""
    village_ends = {v.end for v in villages}
    n = len(text)
    occupied = bytearray(n + 1)
    taken: list[tuple[int, int]] = []

    def take(s: int, e: int) -> None:
        for k in range(max(0, s), min(n, e)):
            occupied[k] = 1
        taken.append((s, e))

    def free(s: int, e: int) -> bool:
        return not any(occupied[max(0, s):min(n, e)])

    for v in villages:
        take(v.start, v.end)
    for a, b in blocked:
        take(a, b)
    hits: list[NameHit] = []
    for k in known:
        if len(k.text) >= 2 and free(k.start, k.end):
            ok, _strong, kin, visitor = _left_context(text, k.start, village_ends)
            role: Role = "visitor" if visitor else ("member" if kin else "head")
            hits.append(NameHit(k.start, k.end, k.text, role, kin, True))
            take(k.start, k.end)
    for m in _KIN_FORM.finditer(text):
        s0, e0 = m.start(), m.end()
        if not free(s0, e0):
            continue
        ok, _strong, kin, visitor = _left_context(text, s0, village_ends)
        prev = text[s0 - 1: s0]
        if not (ok or prev in "的" or s0 == 0 or m.group("a")):  # 老王家 needs no cue: 家 vouches for it
            continue
        name = m.group(0)
        if name.endswith(_TITLE_TAIL):
            visitor = True
        hits.append(NameHit(s0, e0, name, "visitor" if visitor else ("member" if kin else "head"), kin, False))
        take(s0, e0)
    resume = 0
    handed_on = -1
    name_ends = {h.end for h in hits}
    for sm in _SURNAME_POS.finditer(text):
        i = sm.start()
        if i < resume or i >= n - 1:
            continue
        ch = text[i]
        slen = 2 if text[i:i + 2] in COMPOUND_SURNAMES else 1
        if not free(i, i + slen + 1):
            continue
        ok, strong, kin, visitor = _left_context(text, i, village_ends)
        if (not ok and (i in name_ends or text[i - 1:i] == "个" or _suffix_in(text[max(0, i - 4):i], _TRADE_SET))
                and min(GIVEN_CHARS.get(text[i + slen:i + slen + 1], 0), GIVEN_CHARS.get(text[i + slen + 1:i + slen + 2], 0)) >= 20
                and (i + slen + 2 >= n or text[i + slen + 2] in _DELIMS or _SURNAME_POS.match(text, i + slen + 2)
                     or text[i + slen + 2] in "还和一等两三四五六七八九十几个共报说去的"
                     or text[i + slen + 2].isdigit())):
            ok = True  # a list without spaces (郑玉兰龚小红), after a count (七个马德忠) or a trade (养鸡蒙开富)
        if i == handed_on:
            ok = True  # the word before was skipped as not-a-name (高处|姚德顺): its left context carries over
        if not ok and _RIGHT_CUE.match(text, i + slen + 2) and GIVEN_CHARS.get(text[i + slen:i + slen + 1], 0) >= 10 \
                and GIVEN_CHARS.get(text[i + slen + 1:i + slen + 2], 0) >= 10 \
                and (i == 0 or word_freq(tok, text[i - 1:i + 1]) < 100):  # 三代同堂5口人: 代 belongs to 三代
            ok = True  # a bare place name before it (坝脚|韦明光家): the right side vouches for a 3-char name
        if not ok:
            continue
        if text[max(0, i - 2):i] in _WEAK_CUES or text[i - 1:i] in _WEAK_CUES:
            # 说/陪/从 open many phrases (说米快吃完了): only a name made of real given-name chars counts after them
            if min(GIVEN_CHARS.get(text[i + slen:i + slen + 1], 0), GIVEN_CHARS.get(text[i + slen + 1:i + slen + 2], 0)) < 20:
                continue
        if i >= 1 and text[i - 1:i + 1] in _CUE_SET:
            continue  # the surname char closes a cue word (换成覃小东: 成 is not a surname here)
        if i >= 1 and i not in village_ends and text[i - 1] not in _DELIMS and word_freq(tok, text[i - 1:i + 1]) >= 1000:
            continue  # the surname char closes an ordinary word (了解情况: 解 belongs to 了解)
        g1 = text[i + slen: i + slen + 1]
        g2 = text[i + slen + 1: i + slen + 2]
        g3 = text[i + slen + 2: i + slen + 3]
        # 王老四 / 吴老幺: a surname + 老 + birth-order numeral is a common village nickname
        nickname = g1 == "老" and g2 != "" and g2 in _BIRTH_ORDER
        # 摆底村龙再先家: right after a village and right before 家, three chars read as a name
        glued = (strong and i in village_ends and g3 == "家" and _HAN_CHAR.fullmatch(g2 or "x") is not None
                 and g1 not in _GLUE_BAD and g2 not in _GLUE_BAD)
        # 户主：杨再学: after a label a lone three-char run is a name even if its 2nd char is usually a function word
        isolated3 = _run_len(text, i) == slen + 2 and (i == 0 or text[i - 1] in _DELIMS) and GIVEN_CHARS.get(
            text[i + slen + 1:i + slen + 2], 0) >= 10
        labelled = ((strong or isolated3) and _run_len(text, i) == slen + 2 and GIVEN_CHARS.get(g1, 0) >= 10) or (
            _RIGHT_CUE.match(text, i + slen + 2) is not None and GIVEN_CHARS.get(g1, 0) >= 10
            and GIVEN_CHARS.get(text[i + slen + 1:i + slen + 2], 0) >= 10)  # 去张过华家: 家 vouches for 张过华
        if not g1 or not ("\u4e00" <= g1 <= "\u9fff") or (g1 in NOT_GIVEN2 and not (nickname or glued or labelled)) or (
                g1 == ch and slen == 1):
            continue
        if not (nickname or glued) and _implausible(g1):
            continue
        three = nickname or glued or (bool(g2) and "\u4e00" <= g2 <= "\u9fff" and (g2 not in _NAME_STOP_AFTER or (
            g2 in _NAME_CHAR_UNLESS_TIME and g3 not in _TIME_TAIL) or (
            GIVEN_CHARS.get(g2, 0) >= 50 and (not g3 or g3 in _DELIMS or g3 in "去说报也不"))))  # 冉小刚, / 幸成刚去不成了
        if three and not (nickname or glued) and _implausible(g2):
            three = False
        if three and not (strong or nickname or glued) and min(GIVEN_CHARS.get(g1, 0), GIVEN_CHARS.get(g2, 0)) < 3:
            continue  # 金刺梨: chars names almost never use, with nothing else vouching for a name
        # 高处姚德顺: a common word (高处) right before another surname is not a name; the real one starts after it
        if (three and word_freq(tok, text[i:i + slen + 1]) >= 300 and _SURNAME_POS.match(text, i + slen + 1)
                and not _implausible(text[i + slen + 2:i + slen + 4]) and _run_len(text, i + slen + 1) >= 3):
            handed_on = i + slen + 1
            continue
        # 房后山体: the last char opens the next word (山体), so neither 房后山 nor 房后 is a name
        tail2 = text[i + slen + 1:i + slen + 3]
        if three and not (nickname or glued) and len(tail2) == 2 and word_freq(tok, tail2) >= 300:
            continue
        # 安顺蜡染: a third char that cannot be in a name and does not close one either (家, 说, 的…) means the
        # first two are part of some other word
        if (not three and not (nickname or glued) and g2 and _HAN_CHAR.fullmatch(g2) is not None
                and _implausible(g2) and g2 not in _NAME_STOP_AFTER and g2 not in _DELIMS):
            continue
        if three and g2 == "家" and text[i + slen + 2: i + slen + 3] in ("", " ", ",", "，", "。"):
            three = False
        end = i + slen + (2 if three else 1)
        name = text[i:end]
        if not free(i, end):
            continue
        bigram = text[i:i + slen + 1]
        if _is_lexical(name) or _is_lexical(bigram):
            continue
        if word_freq(tok, bigram) >= 1000 and not labelled:
            continue  # 卫生室, 高考: surname char + next char form an everyday word
        if len(name) == slen + 1 and (g1 == "家" or (not strong and GIVEN_CHARS.get(g1, 0) < 5)):
            continue  # 牛卖了: a two-char "name" needs a given-name char that names really use
        if not strong and (word_freq(tok, bigram) >= 100 or word_freq(tok, name) >= 100) and not (
                text.startswith(_SWAP_AFTER, end) or _suffix_in(text[max(0, i - 3):i], _SWAP_BEFORE)):
            # an isolated three-char name (周正华 5口) survives a common first bigram (周正)
            after = text[end: end + 1]
            isolated = len(name) == slen + 2 and (not after or after in _DELIMS or after.isdigit() or after == "家")
            if not (isolated and word_freq(tok, name) < 100 and word_freq(tok, bigram) < 5000):
                continue
        if any(name.endswith(k) for k in ("老人", "家里", "家人")):
            continue
        role = "visitor" if visitor else ("member" if kin else "head")
        hits.append(NameHit(i, end, name, role, kin, strong))
        take(i, end)
        name_ends.add(end)
        resume = end
    hits.sort(key=lambda h: h.start)
    return hits


# ----------------------------------------------------------------------------------------------------- clauses
_CLAUSE_SPLIT = re.compile(r"[,，。;；!！?？\n|｜()（）【】\[\]]+|\s+|、")


@dataclass(slots=True)
class Clause:
    start: int
    end: int
    text: str
    soft: bool  # began after 、: an item list continuing the previous clause


# Voice-typed messages often come without any punctuation. Inside a long run, a discourse marker or a change of
# speaker starts a new clause, so that triggers, dates and commitments stay with their own statement.
_LONG_CLAUSE = 18
_INNER_SPLIT = re.compile(r"(?<=.{4})(?=然后|还有就是|另外|但是|不过|我们(?!村|组|镇)|我(?=说|跟|把|明天|回头|下周|已经|帮|答应|喊|再)"
                          r"|下次|下回|现在|等[^了]{1,8}了|(?:她|他)(?:家|说)|说这周|看看|明天|后天|下周|下礼拜|已经|已报|要尽快"
                          r"|结果出来|人没事|(?<![给帮跟和对让叫把问替与同被说])(?:他|她)(?!们|家|说)|(?<![给帮跟和对让叫找问])我(?!们)"
                          r"|今天|昨天|前天|上午|下午|晚上|今晚|昨晚|还(?=缺|想|要|差|没)|一家|估计|初步|说是|就是)")


def _split_long(c: Clause) -> list[Clause]:
    if len(c.text) < _LONG_CLAUSE:
        return [c]
    cuts = [m.start() for m in _INNER_SPLIT.finditer(c.text)]
    cuts = [x for i, x in enumerate(cuts) if x >= 4 and (i == 0 or x - cuts[i - 1] >= 4)]
    if not cuts:
        return [c]
    out: list[Clause] = []
    prev = 0
    for x in [*cuts, len(c.text)]:
        if x - prev >= 2:
            out.append(Clause(c.start + prev, c.start + x, c.text[prev:x], c.soft if not out else False))
            prev = x
    if prev < len(c.text):
        last = out[-1]
        out[-1] = Clause(last.start, c.end, c.text[last.start - c.start:], last.soft)
    return out


def clauses(text: str) -> list[Clause]:
    """The message cut into clauses at punctuation, spaces, list commas and (in long runs) discourse markers."""
    out: list[Clause] = []
    pos = 0
    soft = False
    for m in _CLAUSE_SPLIT.finditer(text):
        if m.start() > pos:
            out.extend(_split_long(Clause(pos, m.start(), text[pos:m.start()], soft)))
        soft = m.group(0) == "、"
        pos = m.end()
    if pos < len(text):
        out.extend(_split_long(Clause(pos, len(text), text[pos:], soft)))
    return out


# ------------------------------------------------------------------------------------------------ household size
_SIZE_RE = re.compile(
    r"(?=[不一全家人老就夫独孤单0-9〇零二两俩三四五六七八九十百千万半])"
    rf"(?:(?P<neg>不是)?(?:一家|全家|家里|家庭人口|家中|家|人口)?\s*[:：]?\s*(?P<n>{NUM})\s*口(?P<tail>人|之家)?"
    rf"(?![井塘锅袋罩子径味岸气粮])(?!水(?![窖管池柜]))"
    r"|(?P<neg2>不是)?人口\s*[:：]?\s*(?P<n2>\d{1,2}|[一二两三四五六七八九十]{1,2})(?:人|口)?"
    r"|(?P<two>老两口|老俩口|就两口子|夫妻俩)"
    r"|(?P<one>独居|一个人住|一个人过|一人户|孤身一人|单身一人|孤寡老人|独自生活|一个人生活|独自一人))"
)


@dataclass(slots=True)
class SizeHit:
    start: int
    value: int


_SIZE_HINT = re.compile(r"口|独|一个人|一人|孤|单身|夫妻")


def find_sizes(text: str) -> list[SizeHit]:
    out: list[SizeHit] = []
    if not _SIZE_HINT.search(text):
        return out
    for m in _SIZE_RE.finditer(text):
        if m.group("neg") or m.group("neg2"):
            continue
        if m.group("two"):
            out.append(SizeHit(m.start(), 2))
            continue
        if m.group("one"):
            out.append(SizeHit(m.start(), 1))
            continue
        raw = m.group("n") or m.group("n2")
        if raw is None or raw == "半":
            continue
        v = parse_number(raw)
        if v is None or v != int(v) or not 1 <= v <= 20:
            continue
        # "走了两户: 3口" style is a size; "还有2口" after 不是 is a correction handled by neg
        out.append(SizeHit(m.start(), int(v)))
    return out


# ------------------------------------------------------------------------------------------------------ phones
_PHONE_RE = re.compile(r"(?<![\d*])(1[3-9]\d[\s-]?(?:\d{4}|\*{4}|\d\*{3}|\*{3}\d|x{4}|X{4})[\s-]?\d{4}|0\d{2,3}-?\d{7,8})(?![\d*])")


def find_phones(text: str) -> list[tuple[int, int, str]]:
    """(start, end, digits) with spaces/hyphens removed; masked digits (****) kept."""
    return [(m.start(), m.end(), re.sub(r"[\s-]", "", m.group(1))) for m in _PHONE_RE.finditer(text)]
