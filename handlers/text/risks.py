"""防返贫 risk signals a cadre message states (因病, 因灾, 务工就业不稳 …): one cue lexicon per risk type plus the
rules that decide what counts (severity gates, negation and resolution, context) and how one event is typed.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from typing import Any

from ._norm import MAX_CHARS


class RiskType(StrEnum):
    ILLNESS = "因病"
    DISABILITY = "因残"
    SCHOOLING = "因学"
    DISASTER = "因灾"
    ACCIDENT = "因意外"
    JOB = "务工就业不稳"
    FARMING = "产业失败"
    INCOME_DROP = "收入骤减"
    SPENDING = "支出骤增"
    LABOUR = "缺劳力"
    HOUSING_WATER = "住房饮水"
    OTHER = "其他"


# A lasting consequence of an event is typed on its own next to the event's cause; other types are causes.
CONSEQUENCES = frozenset({RiskType.DISABILITY, RiskType.LABOUR, RiskType.HOUSING_WATER})
# 收入骤减 / 支出骤增 are for money shocks no cause type explains (price collapse, a funeral, bride price).
_FALLBACK = frozenset({RiskType.INCOME_DROP, RiskType.SPENDING})


@dataclass(frozen=True, slots=True)
class Risk:
    """One risk signal: its type and a short quote of the message that states it."""

    type: RiskType
    evidence: str

    def as_dict(self) -> dict[str, Any]:
        return {"type": str(self.type), "evidence": self.evidence}


def _split_top(body: str) -> list[str]:
    parts, depth, cur, i = [], 0, "", 0
    while i < len(body):
        ch = body[i]
        if ch == "\\":
            cur += body[i: i + 2]
            i += 2
            continue
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        if ch == "|" and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
        i += 1
    return [*parts, cur]


def _first_chars(word: str) -> set[str] | None:
    """Characters a match of `word` can start with, or None when that is not simple to tell."""
    if not word:
        return None
    if word.startswith("(?:"):
        depth, end = 0, -1
        for i, ch in enumerate(word):
            depth += ch == "("
            depth -= ch == ")"
            if depth == 0:
                end = i
                break
        if end < 0 or word[end + 1: end + 2] in ("*", "{"):
            return None
        out: set[str] = set()
        for part in _split_top(word[3:end]):
            got = _first_chars(part)
            if got is None:
                return None
            out |= got
        if word[end + 1: end + 2] == "?":  # an optional lead-in: the rest may start the match too
            rest = _first_chars(word[end + 2:])
            return None if rest is None else out | rest
        return out
    if word.startswith("\\d") and word[2:3] not in ("?", "*", "{"):
        return set("0123456789")
    ch = word[0]
    if ch in "([\\.^$|?*+{" or word[1:2] in ("?", "*", "{"):
        return None
    return {ch}


def _alt(*words: str) -> str:
    """An alternation of cue patterns; a leading lookahead on their first characters lets most positions fail fast."""
    firsts: set[str] = set()
    for w in words:
        got = _first_chars(w)
        if got is None:
            return "(?:" + "|".join(words) + ")"
        firsts |= got
    return "(?=[" + "".join(sorted(firsts)).replace("]", "\\]").replace("\\", "\\\\") + "])(?:" + "|".join(words) + ")"


_NUMW = r"[\d一二两三四五六七八九十百千万几半]"
_COST = rf"(?:花了|花费|借了?|欠了?|自付|自费|负债|{_NUMW}+\s*(?:万|千|块|元))"

# ---------------------------------------------------------------------------------------------------- lexicons
# Sources: 防返贫监测 rules (八必访/五必访 lists: 大病, 残疾, 非义务教育子女, 务工不稳, 重大变故, 灾害; 监测对象类别:
# 劳动力丧失, 产业失败, 突发严重困难), visit-record templates (实际困难/存在问题), Guizhou disaster reports (凝冻, 冰雹,
# 洪涝), 民政 checks of 突发重大变故 families, and Guizhou dialect notes (莫得, 没得, 屋头, 恼火, 活路).

# 因病: a serious diagnosis counts by itself; a hospital stay or a medical bill counts unless an accident or a disaster
# in the same event explains it (then it is typed by that cause).
_ILL_SERIOUS = _alt(
    "癌", "瘤", "白血病", "尿毒症", "肾衰竭?", "透析", "脑梗", "脑溢血", "脑出血", "中风", "心梗",
    "心肌梗塞?", "搭桥", "化疗", "放疗", "转移了", "大病", "重病", "病危", "重症(?!监护)", "肝硬化", "红斑狼疮", "晚期",
    "查出(?:来)?(?:是|了)?[^\\s,，。]{0,6}病",
)
_ILL_HOSPITAL = _alt("住院", "住了[^\\s,，。]{0,3}院", "医院住了", "手术", "开刀", "ICU", "重症监护", "抢救")
_ILL_COST = _alt("医药费", "医疗费", "手术费", "住院费", "药费", "看病", "治病") + rf"[^。；;\n]{{0,10}}?{_COST}"
# A chronic illness covered by the routine schemes is context, not a signal (慢病卡, 签约医生).
_PLANNED = re.compile(r"(?:想|准备|打算|计划|要去)[^\s,，。]{0,6}$")
_ILL_COVERED = re.compile(r"慢[病冰]卡|慢性病卡|慢特病|签约(?:家庭)?医生|家庭医生|按时(?:拿|吃)药|目前稳定|病情稳定")

_DISABLED = _alt(
    "残疾了", "成了?残疾", "落下(?:了)?残疾", "致残", "截肢", "瘫痪", "瘫了", "偏瘫", "脑瘫", "失明", "瞎了", "聋了",
    "(?:手指头?|指头|手|脚|腿|胳膊|眼睛?)[^\\s,，。]{0,4}(?:没了|废了|截了|截掉)", "(?:左|右|双|两只)?眼[^,，。]{0,10}看不见了?", "评残",
    "(?:以后|今后|这辈子|后半辈子)[^\\s,，。]{0,4}(?:下不了床|站不起来|走不了路|动不了)", "瘫在床上",
)

_SCHOOL_DROPOUT = _alt(
    "辍学", "退学", "失学", "休学", "逃学", "厌学", "不读(?:书)?了", "不想读(?:书)?了?", "不去上学", "不上学了", "没去(?:上)?学校?",
    "不去学校", "没上学", "读不起(?:书)?", "上不起学", "供不起", "开学[^。；;\n]{0,8}(?:还)?没(?:去|来|到)",
)
_SCHOOL_SHORT = _alt("学费", "住宿费", "生活费", "书费", "学杂费", "住校", "上学", "读书", "开学") + (
    r"[^。；;\n]{0,16}?(?:拿不出|凑不齐|交不起|没着落|供不起)"
)
_SCHOOL_COST = _alt("学费", "住宿费", "生活费", "书费", "学杂费", "上学的钱", "读书的钱") + (
    r"[^。；;\n]{0,10}?(?:没着落|交不起|凑不齐|拿不出|没钱|莫得钱|没得钱|困难|恼火|一年要|要" + _NUMW + r"|借|欠)"
)

# 因灾: a natural hazard and the damage it did, close together.
_HAZARD = _alt(
    "暴雨", "大雨", "洪水", "洪涝", "涨水", "发大水", "大水", "山洪", "冰雹", "雹子", "凝冻", "冰冻", "冻雨", "雪灾",
    "大雪", "干旱", "旱灾", "天干", "滑坡", "泥石流", "塌方", "地震", "台风", "大风", "龙卷风", "雷击", "雷劈", "火灾",
    "失火", "着火", "起火", "被雨", "雨水",
)
_DAMAGE = _alt(
    "垮", "塌", "冲(?:走|毁|垮|坏|断|掉|进|了)", "淹", "倒了", "打(?:烂|完|坏|碎|死|光|落)", "毁", "损失", "受灾",
    "冻(?:死|坏|住|裂|爆|伤)", "烧(?:了|光|毁|没)", "干(?:了|死)", "枯(?:了|死)", "没得?水", "绝收", "报灾", "死了", "掀", "刮(?:倒|飞|走|垮)",
)
_DISASTER_DIRECT = _alt("受灾", "遭灾", "灾情", "冻死", "被(?:大)?水冲", "房子?被烧", "被(?:火|雷)")

_JOB = _alt(
    "厂子?[^\\s,，。]{0,2}(?:搬走|倒闭|关门|停工|停产|垮了|没开工)", "没开工", "停工", "停产", "倒闭", "裁员",
    "被(?:辞|开除|辞退|裁)", "辞退", "失业", "下岗", "丢了工作", "工作丢了", "没(?:有)?(?:找到|找着)(?:工作|活路|活干|事做|活)",
    "找不到(?:工作|活路|活干|事做)", "没(?:得|有)?(?:活路|活干|事做)(?:了)?", "工资[^\\s,，。]{0,6}(?:一半|减半|降了|少了|没发|发不出|拖欠|拿不到|欠着)",
    "(?:拖)?欠(?:薪|工资)", "订单少", "没(?:有)?订单", "单子少", "没(?:有|得)?单子", "活路少", "没得活路", "放长假", "(?:回来|在家|屋头)闲(?:起|着|在家)", "歇业",
)

_FARM = _alt(
    "(?:陆续)?死了\\s*" + _NUMW + "+\\s*(?:多|来)?\\s*(?:头|只|条|窝|箱|群|匹|口)", "(?:死|烂|病)了(?:一大半|大半|一半|不少|好多|很多)",
    "(?:辣椒|包谷|玉米|洋芋|烤烟|茶叶|果树|苗子?|秧子?|庄稼|稻谷|水稻|蔬菜|菜)[^\\s,，。]{0,3}(?:得了?病|生病|遭虫|烂根|死苗|枯死)",
    "没(?:有|得)?(?:啥)?收成", "收成(?:很|太)?(?:差|不好)", "(?:猪|牛|羊|鸡|鸭|鹅|鱼|兔|蜂|马|崽)[^\\s,，。]{0,4}(?:病|瘟|毒)死", "猪瘟", "鸡瘟", "鸭瘟",
    "牛瘟", "发瘟", "瘟疫", "疫病", "口蹄疫", "蓝耳", "死光了?", "全死了", "绝收", "减产", "颗粒无收", "烂在地里",
    "病虫害", "虫害", "(?:野猪|猴子|老鼠|虫子?)[^\\s,，。]{0,4}(?:拱|吃|糟蹋|啃|咬)", "(?:养殖|种植|生意|合作社)[^\\s,，。]{0,4}(?:亏本|失败|垮了|倒了)",
)

_INCOME_PRICE = _alt("价(?:格|钱)?[^\\s,，。]{0,2}(?:跌|暴跌|大跌|掉|降|垮)", "跌价", "降价", "卖不起价", "不值钱了", "行情差",
                     "行情不好", "没人要", "卖不出去", "卖不掉", "滞销")
_INCOME_LOSS = _alt(
    "(?:一分)?收入都?(?:莫得|没有|没得|没了|断了)", "(?:没(?:有|得)?|莫得)(?:了)?收入", "断了?(?:收入|经济来源)",
    "收入[^\\s,，。]{0,2}(?:骤减|大减|减少|少了一半|减半|锐减|降了)", "没(?:有|得)经济来源",
    "(?:老公|丈夫|男人|爱人|顶梁柱|当家的)[^\\s,，。]{0,6}(?:去世|过世|病故|死了|不在了)",
)
_SPEND_EVENT = _alt("丧事", "办丧", "安葬", "后事", "彩礼", "酒席", "办酒", "结婚") + rf"[^。；;\n]{{0,8}}?{_COST}"
_SPEND_GENERIC = _alt(
    rf"借了?[^\s,，。]{{0,3}}{_NUMW}+\s*(?:多)?\s*(?:万|千)", "欠了?[^\\s,，。]{0,6}(?:万|债)", "负债", "借不到钱",
    rf"花了[^\s,，。]{{0,3}}{_NUMW}+\s*(?:多)?\s*万", "外债",
)

_LABOUR_STRONG = _alt(
    "缺劳(?:动)?力", "缺人手", "没(?:有|得)?劳(?:动)?力", "丧失劳动(?:能)?力", "失去劳动(?:能)?力", "劳动力丧失",
    "没人(?:干活|种地|做活路?)", "种不下去", "种不上了?", "(?:家里)?(?:就)?剩(?:下)?(?:她|他)?[^\\s,，。]{0,8}(?:娃|孩子|小孩|老人|老的|老两口)",
    "一个人带[^\\s,，。]{0,4}(?:娃|孩子|小孩)",
)
# The only worker or a lone elder: a signal only together with an incapacity (injury, illness, 干不动).
_LABOUR_SOLE = _alt("就(?:他|她)一个劳(?:动)?力", "(?:一家人|全家|一家)(?:都|全)?靠(?:他|她)", "(?:就)?靠(?:他|她)[^\\s,，。]{0,3}一个人", "唯一的?劳(?:动)?力", "(?:屋头|家里)?就(?:他|她)(?:们)?(?:一|两|俩)个(?:人)?(?:在家|在屋头)?",
                    "一个人(?:住|过)", "独居", "孤寡")
_LABOUR_UNABLE = _alt("(?:砍|挑|背|做|干|种)不动", "干不了(?:重)?活", "(?:还)?不能下地", "下不了地")

_HOUSE = _alt(
    "(?:房子?|屋|墙|墙体|堡坎|屋顶|房顶|灶房|厨房|屋基|地基)[^\\s,，。]{0,6}(?:裂|垮|塌|倒了|(?<!补)漏|歪|下沉)",
    "危[房防](?!改造|改|补助)", "山体[^\\s,，。]{0,3}(?:裂|滑)", "(?:暂时|临时)?(?:住|借住|搬)(?:到|在)?[^\\s,，。]{0,5}(?:兄弟|亲戚|儿子|女儿|邻居)家",
    "暂住", "没(?:地方|处)住", "住不(?:了|得)", "不能住(?:人)?", "无房可?住",
)
_WATER = _alt(
    "自来水[^\\s,，。]{0,8}(?:时有时无|停|断|不通|没水|不来)", "停水", "断水", "(?:几|\\d+|两|三|四|五)天没得?水",
    "没(?:得|有)?水(?:吃|喝|用)", "水窖[^\\s,，。]{0,2}(?:干|裂|漏|坏)", "吃水[^\\s,，。]{0,4}(?:难|困难|要去|靠挑|要挑)", "挑水吃",
    "水管[^\\s,，。]{0,4}(?:冻住|冻裂|冻爆|爆了|断了|冲断)",
)
# A lasting housing/water consequence of a disaster: displaced, house unusable, water supply gone.
_HOUSE_LASTING = re.compile(
    r"(?:暂时|临时)?(?:住|借住|搬)(?:到|在)?[^\s,，。]{0,5}(?:兄弟|亲戚|儿子|女儿|邻居)家|暂住|没(?:地方|处)住|住不(?:了|得)|"
    r"不能住|无房可?住|成了?危房|房子?(?:全)?(?:垮|塌|倒)了|" + _WATER
)

_OTHER = _alt(
    "被(?:人)?骗", "诈骗", "骗(?:走|了)", "上当受骗",
    "(?:老婆|媳妇|儿媳妇?|妻子|男人|老公|丈夫)[^\\s,，。]{0,6}(?:跑了|出走|改嫁|离婚|不回来了)",
    "离婚", "离家出走", "失踪", "坐牢", "判刑", "被抓", "服刑", "家暴", "赌博", "赌钱", "吸毒", "网贷", "高利贷", "催债", "套路贷",
)

_ACCIDENT = _alt(
    "车祸", "被车撞", "撞了", "摔(?:了|伤|断|下来|倒)", "从[^\\s,，。]{0,6}(?:摔|掉|跌)下来", "跌(?:了|伤|倒)", "骨折", "砸(?:了|伤|断|到)",
    "烧伤", "烫伤", "触电", "溺水", "淹死", "工伤", "受伤", "被[^\\s,，。]{0,3}(?:咬|撞|压|砸|夹|割)", "出了?(?:个)?意外",
    "翻(?:到|进|下|车)", "(?:顶|撞|咬|压|砸|摔|烫|烧|割|夹|扎|刺|踢|戳)伤", "出(?:了)?(?:个)?事(?!情|儿)", "(?:骨头|肋骨|腿|胳膊|手臂|腰)[^\\s,，。]{0,2}断",
)
# An accident counts when it is serious: a fracture, a hospital stay, a lost limb, a cost, a death.
_SEVERE = re.compile(
    r"骨折|住院|住了[^\s,，。]{0,3}院|医院住|手术|截肢|没了|断了|医药费|花了|自付|抢救|去世|死亡|死了|身亡|重伤|残|干不了|瘫|"
    r"缝了\s*\d+\s*针|昏迷|ICU|不能动|下不了床|不能下地|看不见|出(?:了)?(?:个)?事"
)

_DEATH_AFTER = re.compile(r"[^,，。]{0,8}?(?:走了|去世|过世|死了|没了|病故|不在了)")
_RESOLVED = re.compile(
    r"(?:已经?|都)(?:好了|治好|修好|接好|修复|恢复|解决|处理好|办好|通水|通了|找到(?:工作|活路|活)?)|(?:问题|困难)(?:已经?)?解决"
    r"|恢复得?(?:还|很|挺)?(?:可以|不错|好|行)|康复了|痊愈|好转|(?<!人)没(?:啥)?事了|(?:接|修|补)好了"
)
_NEGATION = re.compile(r"(?:(?:没有?|不|未|无|莫得?|没得)(?:啥|啥子|什么|多大|太大|大)?|并非|不是|不会|防止|预防|防)$")
_LONG_STANDING = re.compile(r"从小|一直|多年|先天|天生|早就|老早|去年|前年|几年前|早年|以前|小时候|年轻时|原来就")

_AMOUNT = re.compile(r"(?:[了得]|差不多)?[\d一二两三四五六七八九十百千万几半多来余]*[\d一二两三四五六七八九十百千万几半]"
                     r"[多来余]?(?:万|千|块|元|头|只|亩|斤)?多?")
_SENTENCE_END = re.compile(r"[。;；!！?？\n|｜]")
_CLAUSE_END = re.compile(r"[。;；!！?？\n|｜,，、:：\s]")


@dataclass(slots=True)
class _Hit:
    type: RiskType
    start: int
    end: int
    sentence: int  # index of the sentence the cue sits in (events do not cross sentences)
    generic: bool = False  # a money cue that stands down when a cause type explains it


def _view(text: str) -> str:
    """A length-preserving normalised copy, so that offsets found in it quote the caller's own text."""
    whole = text if text.isascii() else unicodedata.normalize("NFKC", text)
    if len(whole) == len(text) and all(len(unicodedata.normalize("NFKC", a)) == 1 for a, b in zip(text, whole, strict=True)
                                       if a != b):
        out = [whole]  # the usual case: full-width punctuation folds char for char, so one call does it
        ascii_only = True
    else:
        out = []
        ascii_only = False
    for ch in ([] if ascii_only else text):
        if not ascii_only:
            n = unicodedata.normalize("NFKC", ch)
            ch = n if len(n) == 1 else ch
        out.append(ch)
    view = "".join(out)
    if not text.isascii():
        try:
            view.encode("gb2312")
        except UnicodeEncodeError:
            try:
                from zhconv import convert

                conv = str(convert(view, "zh-cn"))
                if len(conv) == len(view):
                    view = conv
            except Exception:  # conversion is a convenience; the raw text still gets matched
                pass
    return view


@lru_cache(maxsize=64)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


class _Scan:
    def __init__(self, text: str) -> None:
        self.text = text
        self.sent_starts = [0] + [m.end() for m in _SENTENCE_END.finditer(text)]
        self.stops = [m.start() for m in _CLAUSE_END.finditer(text)]

    def sentence_of(self, pos: int) -> int:
        return max(0, bisect_right(self.sent_starts, pos) - 1)

    def clause(self, pos: int) -> tuple[int, int]:
        i = bisect_left(self.stops, pos)
        hi = self.stops[i] if i < len(self.stops) else len(self.text)
        lo = self.stops[i - 1] + 1 if i > 0 else 0
        return lo, hi

    def sentence(self, idx: int) -> tuple[int, int]:
        lo = self.sent_starts[idx]
        hi = self.sent_starts[idx + 1] if idx + 1 < len(self.sent_starts) else len(self.text)
        return lo, hi

    def window(self, start: int, end: int, before: int, after: int) -> str:
        lo, hi = self.sentence(self.sentence_of(start))
        return self.text[max(lo, start - before): min(hi, end + after)]

    def negated(self, start: int) -> bool:
        clo, _ = self.clause(start)
        return _NEGATION.search(self.text[max(clo, start - 4): start]) is not None

    def resolved(self, end: int) -> bool:
        _, hi = self.sentence(self.sentence_of(end - 1 if end else 0))
        return _RESOLVED.search(self.text[end: min(hi, end + 20)]) is not None

    def old(self, start: int, end: int) -> bool:
        clo, _ = self.clause(start)
        return _LONG_STANDING.search(self.text[max(clo, start - 10): end]) is not None

    def find(self, rtype: RiskType, pattern: str, *, generic: bool = False, keep_old: bool = False) -> list[_Hit]:
        found: list[_Hit] = []
        for m in _compiled(pattern).finditer(self.text):
            if m.end() == m.start() or self.negated(m.start()) or self.resolved(m.end()):
                continue
            if not keep_old and self.old(m.start(), m.end()):
                continue
            found.append(_Hit(rtype, m.start(), m.end(), self.sentence_of(m.start()), generic))
        return found

    def near(self, hits: list[_Hit], h: _Hit, span: int = 40) -> bool:
        return any(x.sentence == h.sentence and abs(x.start - h.start) <= span for x in hits)


def _evidence(text: str, s: _Scan, h: _Hit) -> str:
    """The cue's clause when it is short, else the cue with a few characters either side (a readable quote)."""
    view = s.text
    lo, hi = s.clause(h.start)
    hi = max(hi, h.end)
    if hi - lo > 14:
        # a long (run-on) clause: the cue itself, a little lead-in when it is short, and any amount that follows
        lo = max(lo, h.start - (4 if h.end - h.start < 6 else 0))
        m = _AMOUNT.match(view, h.end)
        hi = max(h.end, m.end()) if m else h.end
    return text[lo:hi].strip() or text[h.start:h.end]


def _any_cue() -> re.Pattern[str]:
    # Three messages in four state no risk at all; one pass of the union of every type's cues settles those
    # before the per-type scans (each hit below needs one of these patterns to match, so nothing is lost).
    parts = (_ACCIDENT, _DISABLED, _DISASTER_DIRECT, _FARM, _HAZARD, _HOUSE, _ILL_COST, _ILL_HOSPITAL, _ILL_SERIOUS,
             _INCOME_LOSS, _INCOME_PRICE, _JOB, _LABOUR_SOLE, _LABOUR_STRONG, _LABOUR_UNABLE, _OTHER, _SCHOOL_COST,
             _SCHOOL_DROPOUT, _SCHOOL_SHORT, _SPEND_EVENT, _SPEND_GENERIC, _WATER)
    return re.compile("|".join(f"(?:{p})" for p in parts))


_ANY_CUE = _any_cue()


def find_risks(text: str) -> list[Risk]:
    """Risk signals stated in `text` (a raw or normalised message), one per type, in order of appearance.

    Each evidence is a substring of `text` itself."""
    if not isinstance(text, str) or not text.strip():
        return []
    text = text[:MAX_CHARS]
    view = _view(text)
    if _ANY_CUE.search(view) is None:
        return []
    s = _Scan(view)

    accidents = [h for h in s.find(RiskType.ACCIDENT, _ACCIDENT)
                 if _SEVERE.search(s.window(h.start, h.end, 10, 40))]
    hazards = s.find(RiskType.DISASTER, _HAZARD)
    damages = [m for m in _compiled(_DAMAGE).finditer(view) if not s.negated(m.start())]
    disasters = [h for h in hazards if any(
        s.sentence_of(d.start()) == h.sentence and -12 <= d.start() - h.start <= 40 for d in damages)]
    disasters += s.find(RiskType.DISASTER, _DISASTER_DIRECT)
    causes_explaining = accidents + disasters

    illness: list[_Hit] = []
    for h in s.find(RiskType.ILLNESS, _ILL_SERIOUS):
        if not _ILL_COVERED.search(s.window(h.start, h.end, 12, 12)):
            illness.append(h)
    for h in s.find(RiskType.ILLNESS, _ILL_HOSPITAL) + s.find(RiskType.ILLNESS, _ILL_COST):
        if _PLANNED.search(view, max(0, h.start - 10), h.start):
            continue  # an operation only planned ("想去做个白内障手术") states no new event
        if not s.near(causes_explaining, h, 60) and not _ILL_COVERED.search(s.window(h.start, h.end, 12, 12)):
            illness.append(h)

    # an illness that ended in a death: the household's loss is the person (income, labour), not a medical bill
    died = [h for h in illness if _DEATH_AFTER.match(view, h.end)]
    illness = [h for h in illness if h not in died]
    disabled = s.find(RiskType.DISABILITY, _DISABLED)
    # a disability named as the diagnosis (确诊脑瘫) is typed 因残, not 因病
    illness = [h for h in illness if not any(d.start <= h.start < d.end or h.start <= d.start < h.end for d in disabled)]

    hits: list[_Hit] = []
    hits += illness + disabled + accidents + disasters
    hits += s.find(RiskType.SCHOOLING, _SCHOOL_DROPOUT) + s.find(RiskType.SCHOOLING, _SCHOOL_COST)
    hits += s.find(RiskType.SCHOOLING, _SCHOOL_SHORT)
    hits += s.find(RiskType.JOB, _JOB)
    # a die-off or crop loss a disaster caused is typed 因灾
    hits += [h for h in s.find(RiskType.FARMING, _FARM) if not s.near(disasters, h, 60)]
    hits += s.find(RiskType.OTHER, _OTHER)

    # housing / water: on its own a signal; inside a disaster only a lasting consequence counts as a second type
    for h in s.find(RiskType.HOUSING_WATER, _HOUSE) + s.find(RiskType.HOUSING_WATER, _WATER):
        if s.near(disasters, h, 60) and not _HOUSE_LASTING.fullmatch(view[h.start:h.end]) and not re.match(
                _HOUSE_LASTING, view[h.start:h.end]):
            continue
        hits.append(h)

    hits += s.find(RiskType.LABOUR, _LABOUR_STRONG)
    sole = s.find(RiskType.LABOUR, _LABOUR_SOLE, keep_old=True)
    unable = s.find(RiskType.LABOUR, _LABOUR_UNABLE)
    if sole and (illness or accidents or disabled):
        hits += sole[:1]
    elif sole and unable:
        hits += unable[:1]

    hits += [_Hit(RiskType.INCOME_DROP, h.start, h.end, h.sentence) for h in died[:1]]
    hits += s.find(RiskType.INCOME_DROP, _INCOME_PRICE)
    hits += s.find(RiskType.INCOME_DROP, _INCOME_LOSS, generic=True)
    hits += s.find(RiskType.SPENDING, _SPEND_EVENT)
    hits += s.find(RiskType.SPENDING, _SPEND_GENERIC, generic=True)

    cause_sentences = {h.sentence for h in hits if h.type not in CONSEQUENCES and h.type not in _FALLBACK}
    kept = [h for h in hits if not (h.generic and cause_sentences)]
    # one money shock per message: a death's funeral bill and its lost income are one event
    fallback = sorted((h for h in kept if h.type in _FALLBACK), key=lambda x: x.start)
    kept = [h for h in kept if h.type not in _FALLBACK or h is fallback[0]]

    out: list[Risk] = []
    seen: set[RiskType] = set()
    for h in sorted(kept, key=lambda x: (x.start, -x.end)):
        if h.type in seen:
            continue
        seen.add(h.type)
        out.append(Risk(h.type, _evidence(text, s, h)))
    return out
