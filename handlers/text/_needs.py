"""Needs (category/item/qty/unit/status) and follow-ups, clause by clause.

A need is a topic keyword plus a trigger (lacking, broken, owed, wanted, delivered) in the same clause; a bare
condition ("糖尿病", "残疾") is context. Follow-up clauses (我去…, 明天…, 回头…) never yield needs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from ._entities import Clause
from ._lexicon import (
    AMBIGUOUS_AIDS,
    MET_TRIGGERS,
    NEED_KEYWORDS,
    OPEN_TRIGGERS,
    TRADES,
    WEAK_KEYWORDS,
    trie_regex,
)
from ._numbers import NUM, parse_number

_KW_RE = re.compile(trie_regex(NEED_KEYWORDS))
_OPEN_RE = re.compile(trie_regex(OPEN_TRIGGERS))
_MET_RE = re.compile(trie_regex(MET_TRIGGERS))
_TRAINING_RE = re.compile(r"培训|报名|想报|要报|学技术|学手艺|想学|要学|学门|学个")
_TRADE_RE = re.compile(trie_regex(TRADES))
_TRADE_SET = frozenset(TRADES)
_AGRI_TRADES = ("养", "种", "蜜蜂", "茶", "刺梨", "中药材", "食用菌", "果树", "修剪", "农机")
_JOINERS = re.compile(r"和|及|以及|还有|跟|、|也")

_UNITS = ("公斤", "千克", "万元", "块钱", "斤", "吨", "袋", "床", "件", "个", "台", "头", "只", "箱", "桶", "瓶", "盒", "套",
          "元", "块", "方", "车", "包", "条", "双", "把", "张", "辆", "间", "株", "棵", "羽", "匹", "支", "份", "升",
          "米", "卷", "捆", "担", "筐", "部", "副", "对", "顶", "口锅", "亩", "盏", "棵", "箱")
_QTY_RE = re.compile(rf"(?P<n>{NUM})(?:多|来|余)?\s*(?P<u>{trie_regex(_UNITS)})(?P<half>半)?(?![分位门缝洞眼道])")
_QTY_BEFORE = re.compile(rf"(?P<n>{NUM})\s*(?P<u>{trie_regex(_UNITS)})的?$")
_ONE_RE = re.compile(r"(?:要|想要|缺|需要|差|少|申请|配|买|送了?|给了?)(?P<u>个|台|床|件|辆|部|副)")
_MONEY_RE = re.compile(r"(?P<n>\d+(?:\.\d+)?万\d?|[一二两三四五六七八九十百千]+万[一二三四五六七八九千]?)(?:元|块)?"
                       r"|(?P<n2>\d+(?:\.\d+)?)\s*(?:元|块钱|块)")
# Quantities that describe circumstances, not the need (80岁, 8亩 planted, 4500 a month).
_CONTEXT_UNIT_PREV = re.compile(r"(?:月薪|工资|收入|一天|每天|年收入|种了|种|养了|养的|种的|家有|钱|块|元)$")
# A count of weeks, months or hours is a duration, never an item's quantity (开学两个礼拜了).
_DURATION_AFTER = ("月", "人", "小", "礼", "星", "钟", "多月", "年", "天", "晚")
# "没啥问题", "无新增困难", "莫得啥要帮的", "不缺啥": the household is fine. Such a clause never raises a need, and
# a message that says so keeps only what was handed over in it (a benefit already held is context, not a need).
NO_NEED = re.compile(r"(?:没|莫|无|不)(?:得)?(?:啥|什么|啥子|新增|其他|别的)?(?:子)?(?:问题|困难|要帮的?|需要|缺的?|诉求)"
                     r"|不缺(?:啥|什么|啥子)?|一切(?:正常|都好)|都(?:好|正常)|情况稳定|目前稳定")
_HANDED = re.compile(r"送|拉|带|发|给了|领")

_SUFFIX = (
    (("坏",), "损坏"), (("漏",), "渗漏"), (("裂",), "开裂"), (("塌", "倒了"), "垮塌"), (("破",), "破损"),
    (("断",), "中断"), (("停",), "停供"), (("冻",), "冻坏"), (("堵",), "堵塞"),
    (("味道", "异味", "有味", "浑", "发黄"), "水质异常"), (("不够", "不足", "缺", "少"), "不足"),
    (("滞销", "卖不", "没卖"), "滞销"), (("没结", "未结", "欠", "差", "拖欠"), "未结清"),
    (("没拨", "未拨", "没到", "未到", "没发", "没下来"), "未拨付"), (("打完", "用完", "吃完"), "用完"),
)


@dataclass(slots=True)
class Need:
    clause: int
    start: int
    category: Any
    item: str
    qty: float | int | None
    unit: str | None
    status: str
    households: list[str] = field(default_factory=list)
    keyword: str = ""

    def as_dict(self, with_household: bool) -> list[dict[str, Any]]:
        base: dict[str, Any] = {"category": self.category, "item": self.item}
        if self.qty is not None:
            base["qty"] = self.qty
            base["unit"] = self.unit
        base["status"] = self.status
        if not with_household:
            return [base]
        owners: list[str | None] = list(self.households) or [None]
        return [{**base, "household": h} for h in owners]


def _negated(text: str, pos: int) -> bool:
    before = text[max(0, pos - 3): pos]
    return any(before.endswith(n) for n in ("没", "未", "还没", "没有", "不", "没能", "还未"))


# Injuries (摔断腿, 摔伤) describe what happened to a person; their 断/伤 is not a broken facility.
_INJURY = re.compile(r"摔断|砸断|撞断|摔伤|砸伤|骨折|摔了一?跤")


def trigger_status(text: str) -> tuple[str | None, str]:
    """('met'|'open'|None, matched trigger text)."""
    text = _INJURY.sub(lambda m: "\u3000" * len(m.group(0)), text)
    for m in _MET_RE.finditer(text):
        if not _negated(text, m.start()):
            return "met", m.group(0)
    m2 = _OPEN_RE.search(text)
    if m2:
        return "open", m2.group(0)
    for m in _MET_RE.finditer(text):
        return "open", "没" + m.group(0)  # a negated delivery: 还没送到
    return None, ""


def _qty(text: str, kw_start: int, kw_end: int) -> tuple[float | int | None, str | None]:
    best: tuple[int, float | int, str] | None = None
    for m in _QTY_RE.finditer(text):
        unit = m.group("u")
        if unit == "亩" or (unit in ("个",) and text[m.end():].startswith(_DURATION_AFTER)):
            continue
        if _CONTEXT_UNIT_PREV.search(text[: m.start()]):
            continue
        v = parse_number(m.group("n"))
        if v is None or v < 0:
            continue
        if m.group("half"):
            v = v + 0.5  # 一吨半
        dist = kw_start - m.end() if m.end() <= kw_start else m.start() - kw_end
        dist = abs(dist)
        if best is None or dist < best[0]:
            best = (dist, v, unit if unit not in ("块", "块钱") else "元")
    if best is not None:
        return best[1], best[2]
    one = _ONE_RE.search(text)
    if one and one.end() <= kw_start + 1:
        return 1, one.group("u")
    money = _MONEY_RE.search(text)
    if money:
        v = parse_number(money.group("n") or money.group("n2"))
        if v is not None and v >= 0:
            return v, "元"
    return None, None


def _item(kw: str, trig: str, clause_text: str) -> str:
    for keys, suffix in _SUFFIX:
        if any(k in trig or (k in clause_text and len(k) > 1) for k in keys):
            if suffix == "不足" and trig.startswith("缺"):
                return "缺" + kw
            if suffix[0] in keys and kw.endswith(suffix[0]):
                kw = kw[:-1]  # 水管冻 + 冻坏 → 水管冻坏, not 水管冻冻坏
            return kw + suffix
    return kw


def _category(kws: list[re.Match[str]], clause_text: str) -> tuple[Any, str, int] | None:
    """(category, keyword, start) chosen for a clause; training clauses are about the trade."""
    if not kws:
        return None
    if _TRAINING_RE.search(clause_text):
        for m in kws:
            w = m.group(0)
            if w in _TRADE_SET or w in ("种植", "养殖"):
                cat = "产业" if any(a in w for a in _AGRI_TRADES) else "就业"
                return cat, w, m.start()
        tm = _TRADE_RE.search(clause_text)
        if tm:  # 养鸡培训: the trade (养鸡) is not itself a need keyword, only its 鸡 is
            w = tm.group(0)
            return ("产业" if any(a in w for a in _AGRI_TRADES) else "就业"), w, tm.start()
        return "就业", "技能培训", kws[0].start()
    strong = [m for m in kws if m.group(0) not in WEAK_KEYWORDS] or kws
    m = strong[0]
    cat, item = NEED_KEYWORDS[m.group(0)]
    if cat == "?":
        return {"ambiguous": True, "raw": item, "candidates": list(AMBIGUOUS_AIDS), "note": "assistive device"}, \
            item, m.start()
    return cat, item, m.start()


@lru_cache(maxsize=16384)
def _char_py(ch: str) -> str:
    from pypinyin import Style, lazy_pinyin

    return lazy_pinyin(ch, style=Style.NORMAL)[0] if "\u4e00" <= ch <= "\u9fff" else ch


def _py_keys() -> dict[tuple[str, ...], str]:
    out: dict[tuple[str, ...], str] = {}
    for w, (cat, _item) in NEED_KEYWORDS.items():
        if 2 <= len(w) <= 4 and cat not in ("-", "?"):
            out.setdefault(tuple(_char_py(ch) for ch in w), w)
    return out


_PY_KEYS: dict[tuple[str, ...], str] | None = None


def homophone_fixed(masked: str) -> str:
    """`masked` with need keywords typed as homophones put right (低报→低保, 残急证→残疾证, 公义岗→公益岗): a window
    that sounds like a keyword and differs from it in one char. Same length, so every offset holds. Pinyin is
    looked up char by char (cached), which keeps this to a few dict look-ups per char."""
    global _PY_KEYS
    if _PY_KEYS is None:
        _PY_KEYS = _py_keys()
    keys = _PY_KEYS
    py = [_char_py(ch) for ch in masked]
    chars: list[str] | None = None
    n = len(masked)
    for size in (4, 3, 2):
        for i in range(n - size + 1):
            w = keys.get(tuple(py[i:i + size]))
            if w is None or masked.startswith(w, i):
                continue
            win = masked[i:i + size]
            diff = [j for j in range(size) if win[j] != w[j]]
            if len(diff) == 1:
                if chars is None:
                    chars = list(masked)
                chars[i + diff[0]] = w[diff[0]]
    return masked if chars is None else "".join(chars)


def _gaps_and(cls: list[Clause], n: int) -> list[Clause]:
    """The clauses plus the separators between them, as clauses, so that joining them rebuilds the text."""
    out: list[Clause] = []
    pos = 0
    for c in cls:
        if c.start > pos:
            out.append(Clause(pos, c.start, "", False))
        out.append(c)
        pos = c.end
    if pos < n:
        out.append(Clause(pos, n, "", False))
    return out


def extract_needs(text: str, cls: list[Clause], fu_flags: list[bool], masked: str, single: bool = True) -> list[Need]:
    """Needs in clause order. `masked` is `text` with names/villages/dates blanked so 水井村 is not 水井.
    `single`: the message is about one household, so a "no problems" statement speaks for all of it."""
    # a clause already naming a need keyword needs no homophone repair; only the others are scanned
    masked = "".join(homophone_fixed(masked[c.start:c.end]) if not _KW_RE.search(masked, c.start, c.end)
                     else masked[c.start:c.end] for c in _gaps_and(cls, len(masked))) if cls else masked
    needs: list[Need] = []
    prev_status: str | None = None
    for idx, c in enumerate(cls):
        if fu_flags[idx]:
            prev_status = None
            continue
        ctext = masked[c.start:c.end]
        if NO_NEED.search(ctext):
            prev_status = None
            continue
        status, trig = trigger_status(ctext)
        if status is None and c.soft and prev_status is not None:
            status, trig = prev_status, ""
        if status is None and idx + 1 < len(cls) and not fu_flags[idx + 1] and _QTY_RE.search(ctext):
            # "复合肥4袋 已领" / "地膜2捆 还没到货": a short clause right after carries the item's status
            nxt = masked[cls[idx + 1].start:cls[idx + 1].end]
            if len(nxt) <= 6 and not _KW_RE.search(nxt) and not NO_NEED.search(nxt):
                status, trig = trigger_status(nxt)
        training = _TRAINING_RE.search(ctext) is not None
        kws = [m for m in _KW_RE.finditer(ctext) if (training or m.group(0) not in _TRADE_SET)
               and NEED_KEYWORDS[m.group(0)][0] != "-"]
        if status is None:
            prev_status = None
            if not kws and needs and needs[-1].clause >= idx - 1 and needs[-1].qty is None and _MONEY_RE.search(
                    ctext):
                needs[-1].qty, needs[-1].unit = _qty(ctext, len(ctext), len(ctext))
            continue
        prev_status = status
        if not kws:
            recent = needs[-1] if needs and needs[-1].clause >= idx - 2 else None
            if recent is not None:
                # "每家要半吨" / "花了3万2": a quantity for the need named just before
                q, u = _qty(ctext, len(ctext), len(ctext))
                if q is not None and recent.qty is None:
                    recent.qty, recent.unit = q, u
                if status == "met" and trig:
                    recent.status = "met"  # "缺化肥5袋 已解决"
            continue
        picked = _category(kws, ctext)
        if picked is None:
            continue
        cat, kw, kpos = picked
        quantified = [(m, qm) for m in kws if (qm := _QTY_BEFORE.search(ctext, 0, m.start())) is not None]
        if len(quantified) >= 2 and not training:
            # "送了一桶油和一袋米": each quantified item is its own need
            for m, qm in quantified:
                c2, it2 = NEED_KEYWORDS[m.group(0)]
                cat2: Any = c2 if c2 != "?" else {"ambiguous": True, "raw": it2, "candidates": list(AMBIGUOUS_AIDS),
                                                  "note": "assistive device"}
                v = parse_number(qm.group("n"))
                needs.append(Need(idx, c.start + m.start(), cat2, _item(it2, trig, ctext), v, qm.group("u"), status))
            continue
        q, u = _qty(ctext, kpos, kpos + len(kw))
        needs.append(Need(idx, c.start + kpos, cat, _item(kw, trig, ctext), q, u, status, keyword=kw))
        # a second topic joined by 和/及 in the same clause ("看病和上学都要钱") is its own need
        if not _TRAINING_RE.search(ctext) and _JOINERS.search(ctext):
            seen = {str(cat)}
            for m in kws:
                w = m.group(0)
                if w in WEAK_KEYWORDS:
                    continue
                c2, it2 = NEED_KEYWORDS[w]
                if c2 == "?" or c2 in seen:
                    continue
                seen.add(c2)
                needs.append(Need(idx, c.start + m.start(), c2, _item(it2, trig, ctext), None, None, status))
    out = _merge(needs)
    _needs_in_followups(out, cls, fu_flags, masked)
    if single and any(NO_NEED.search(masked[c.start:c.end]) for c in cls):
        out = [n for n in out if n.status == "met" and _HANDED.search(masked[cls[n.clause].start:cls[n.clause].end])]
    return out


def _needs_in_followups(out: list[Need], cls: list[Clause], fu_flags: list[bool], masked: str) -> None:
    """A follow-up that brings or files something ("给她带一床厚被子", "要把雨露计划的申请表交上去") states a need the
    report has not named yet, or the quantity of one it has: still open, since it is yet to be done."""
    for idx, c in enumerate(cls):
        if not fu_flags[idx]:
            continue
        ctext = masked[c.start:c.end]
        kws = [m for m in _KW_RE.finditer(ctext) if m.group(0) not in WEAK_KEYWORDS and m.group(0) not in _TRADE_SET
               and NEED_KEYWORDS[m.group(0)][0] not in ("-", "?")]
        if not kws:
            continue
        cat, item = NEED_KEYWORDS[kws[0].group(0)]
        same = [n for n in out if str(n.category) == cat]
        q, u = _qty(ctext, kws[0].start(), kws[0].end()) if _QTY_RE.search(ctext) else (None, None)
        if same:
            if same[-1].qty is None and q is not None and same[-1].status == "open":
                same[-1].qty, same[-1].unit = q, u
            continue
        out.append(Need(idx, c.start + kws[0].start(), cat, item, q, u, "open", keyword=kws[0].group(0)))


def _distinct(a: Need, b: Need) -> bool:
    """Two different concrete things (烤火炉 vs 米): separate needs even in the same category."""
    if not a.keyword or not b.keyword or a.category != "生活物资":
        return False
    return a.keyword not in b.keyword and b.keyword not in a.keyword


def _merge(needs: list[Need]) -> list[Need]:
    out: list[Need] = []
    for n in needs:
        last = out[-1] if out else None
        if (last is not None and str(last.category) == str(n.category) and n.clause - last.clause <= 2
                and not _distinct(last, n)
                and not (last.qty is not None and n.qty is not None) and n.clause != last.clause):
            if last.qty is None and n.qty is not None:
                last.qty, last.unit = n.qty, n.unit
            if n.status == "met":
                last.status = "met"
            continue
        out.append(n)
    return out


# ------------------------------------------------------------------------------------------------ follow-ups
# A follow-up is something the sender commits to (or arranged to be done) in the future. Each clause is scored on
# cue families instead of one alternation of whole phrases, so a new wording only has to hit one family:
#   the sender as agent (我…去/带/问/把…, 我答应, 帮他问, 通知他)                    → a follow-up by itself
#   a future time (明天, 下周, 这周三前, 节后, 等…了, 下次, 二天) or an intention word
#   (准备, 打算, 争取, 尽快) together with an action verb (来看, 检修, 开会定)          → a follow-up
#   done already (ends in 了, V了, 已经), a question, the household's own plan, advice to it → never
_FU_TIME = re.compile(
    r"明天|明早|明儿|后天|下周|下礼拜|下星期|下个?月|下回|下次|过两天|过几天|二天|改天|回头|过完年|开春|这周|本周|这个月|"
    r"(?<![上])(?:周|星期|礼拜)[一二三四五六日天](?!晚上|那天)|"
    r"(?:月底|年底|周末|春节|过年|元旦|国庆|正月|腊月|节|年)[^了]{0,4}(?:前|后|那天)|"
    r"等.{1,10}(?:了|后|再|时)|到了|有了|放完假|上班(?:那天|第一天|了)|"
    r"(?:\d{1,2}|[一二三四五六七八九十]{1,3})[号日](?:那天|前|之前)"
)
_FU_VERB = re.compile(r"去|来|带|送|交|报|联系|找|问|帮|给|看|修|检修|开会|定|发|办|申请|落实|评估|核实|统计|买|拿|催|对接|协调|"
                      r"上报|申报|跟进|安排|批|鉴定|接|通知|告诉|打|上门|劝|装|弄|搞|做")
_FU_AGENT = re.compile(
    r"我(?:们)?[^，,。;；\s了]{0,6}?(?:去|带|问|送|报|联系|找|帮|给|催|跟进|落实|协调|申请|反映|对接|核实|统计|把|喊|叫|约|陪|"
    r"开车|买|拿|交|发|请|打电话|再打|商量|上门|劝|说下|说一下|讲一下)|我答应|答应(?:帮|给|去)|"
    r"帮(?:他|她|他们|她们)(?:问|申请|联系|报|办|买|找|争取)|(?:通知|告诉)(?:他|她|他们|她们)|再说$"
)
_FU_INTENT = re.compile(r"准备|打算|(?<!雨露)计划|争取|尽快|抓紧|跟进|下步|下一步|已约|约了|约好|待.{0,6}后|结果出来")
_FU_DONE = re.compile(r"了(?:的)?$|过了$|(?:去|来|看|送)的(?:\s*[:：]|$)|最后一天|(?:去|看|送|交|报|问|找|带|办|填|买|拿|发|领|修|接|打)了(?!解)|已经|已(?!约)|刚才|刚刚|早就")
_FU_QUESTION = re.compile(r"[?？]|吗$|呢$|^(?:要不要|有没有|能不能|是不是|得不得)")
# The household's own plan, or advice given to it ("我跟他说回来可以报…", "我说先去县医院"), is not the sender's job.
_FU_NOT_OURS = re.compile(r"^(?:他|她|他们|她们|老人|户主|他家|她家|娃娃|孩子)(?:也|还|就|本来)?(?:说|讲|想|打算|准备|答应|要)|^答应|"
                          r"^(?:叫|让)(?:他|她)|"
                          r"^说(?!.{0,4}(?:帮|给))|可以|先去.{0,8}住|我(?:说|跟他说|跟她说)(?:先|可以|就|让)")
# Form labels ("下步打算：", "帮扶措施：") make every item under them a follow-up.
FU_LABEL = re.compile(r"(?:下步打算|下一步打算|下步计划|帮扶措施|帮扶计划|拟采取措施|下步措施|落实措施|下步|打算|计划)\s*[:：]?\s*")
FU_LABEL_ONLY = re.compile(r"^(?:下步打算|下一步打算|下步计划|帮扶措施|帮扶计划|拟采取措施|下步措施|落实措施|下步|下一步)\s*[:：]?$")


def followup_score(clause_text: str) -> int:
    """How strongly a clause reads as the sender's commitment (≥ 2 counts as a follow-up)."""
    c = clause_text.strip()
    if not c or _FU_DONE.search(c) or _FU_QUESTION.search(c) or _FU_NOT_OURS.search(c) or _DONE.match(c):
        return 0
    if _FU_AGENT.search(c):
        return 3
    if (_FU_TIME.search(c) or _FU_INTENT.search(c)) and _FU_VERB.search(c):
        return 2
    return 0


def is_followup(clause_text: str) -> bool:
    """True when the clause states something the sender will do (or has arranged to be done)."""
    return followup_score(clause_text) >= 2


# "今天我去他家把表填了": done today, a report rather than a plan.
_DONE = re.compile(r"^(?:今天|今早|今上午|今下午|昨天|前天|刚才|刚刚)[^明后]*了$")
_FU_STRIP = re.compile(r"^(?:我说|我跟他说|我跟她说|我们|我|回头|准备|打算|下步|下一步|再|就|要|先|说|[:：])+")


def action_text(clause_text: str, date_raws: list[str]) -> str:
    """The action of a follow-up clause: its dates, the sender's pronoun and form labels taken off."""
    a = FU_LABEL.sub("", clause_text)
    for r in date_raws:
        a = a.replace(r, "")
    a = _FU_STRIP.sub("", a.strip())
    return a.strip(" ,，。:：") or clause_text.strip()
