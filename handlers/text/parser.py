"""`parse()`: one chat message → the README parse schema (intent, households, dates, needs, training fields).

Pipeline: normalise → segment once → entities → clauses → intent → per-intent field filling. Never raises.
"""

from __future__ import annotations

import logging
import re
from bisect import bisect_right
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from itertools import groupby
from typing import Any

from . import _dates as D
from ._entities import (
    Clause,
    NameHit,
    SizeHit,
    Span,
    bare_places,
    boundaries,
    clauses,
    find_names,
    find_phones,
    find_sizes,
    find_villages,
    token_spans,
    tokenize,
    window_bounds,
)
from ._lexicon import KIN_WORDS
from ._needs import FU_LABEL, FU_LABEL_ONLY, action_text, extract_needs, is_followup
from ._norm import normalize
from ._numbers import NUM, parse_number
from ._segment import base_tokenizer
from .courses import find_course, normalise_course
from .outcome import visit_outcome
from .registry import Registry
from .risks import find_risks

log = logging.getLogger(__name__)

FIELDS = ("intent", "secondary_intents", "household_head", "village", "visit_date", "visit_type", "household_size",
          "needs", "follow_ups", "course", "course_norm", "participants", "phone", "training_date",
          "signup_deadline", "cancelled",
          "visit_outcome", "risks")


def empty_result(intent: str = "other") -> dict[str, Any]:
    r: dict[str, Any] = dict.fromkeys(FIELDS)
    r["intent"] = intent
    r["secondary_intents"] = []
    r["needs"] = []
    r["follow_ups"] = []
    r["risks"] = []
    return r


# ------------------------------------------------------------------------------------------------ cue patterns
_NOTICE = re.compile(
    r"^\s*【[^】]{0,20}(?:通知|通报|公告|提醒|会议|紧急|预警|要求|安排|动态|简报|公示|快讯|招生|招聘)[^】]{0,12}】"
    r"|^\s*【[^】]{0,12}(?:局|办|中心|专班|政府|指挥部|领导小组)】"
    r"|^\s*(?:通知|公告|通报|提醒|温馨提示|紧急通知)\s*[:：\s]"
    r"|^[^，。,\s]{0,14}(?:局|办|中心|专班|政府|指挥部)(?:通知|通报|提醒|要求)"
    r"|请各|各(?:村|乡镇)(?:要|务必|请|于)|务必|请于|严格执行|一律|(?<!得)不得(?!不)|"
    r"各位(?:帮扶|驻村|网格|同事|领导|干部)?.{0,12}请"
)
_FORM = re.compile(r"【?(?:走访记录|入户记录|走访情况|民情日记|帮扶记录|遍访)|户主\s*[:：]?\s*[\u4e00-\u9fff]{2,4}\s*[|｜]")
_PLAN_START = re.compile(r"^\s*(?:明天|后天|下周|下礼拜|下星期|下个月|近期|接下来|计划|准备|打算|周[一二三四五六日天]开始|"
                         r"下(?:周|礼拜|星期)[一二三四五六日天1-7]?开始|从.{0,8}开始)")
_PAST = re.compile(r"了|过|已经|已")
_ATTEND = re.compile(r"开班|开课|开学|结业|来了\s*\d+\s*(?:个|人|多人|多个)|到了\s*\d+\s*人|签到|出勤|参训|到课")
_QUERY = re.compile(r"[?？]|吗\s*$|吗[,，。]|呢\s*$|什么时候|啥时候|哪里|哪儿|在哪|哪个|哪些|谁|几点|几号|多少|怎么|咋|如何|是否"
                    r"|能不能|可不可以|有没有|是不是|要不要|还是.{0,8}$|哪天|哪一天|几时|何时|多久|多长时间|收不收|要钱不")
_SIGNUP = re.compile(r"报名|报个名|报了名|报上(?!去|来)|想报|要报|帮.{0,12}?报|给.{0,8}?报|报\s*(?:" + NUM + r")\s*个|参加.{0,8}(?:培训|班)"
                     r"|(?:^|[\s,，:：])报(?=[\s\u4e00-\u9fff]{0,3}(?:培训|班)|\s)")
# Seats held ("先占4个位置", "给我们留两个名额"); literal-first so the scan stays cheap, the numeral is checked after.
_SEATS = re.compile(rf"个(?:名额|位置|位子|指标)|[占留]\s*(?:{NUM})\s*个")
_NUM_CHARS = frozenset("0123456789零〇一二两俩三四五六七八九十百几")
# A seat count with no course or name yet ("我们组报5个 名字晚点发"): a sign-up all the same.
_SIGNUP_COUNT = re.compile(rf"(?:报|再加|加上)\s*(?:{NUM})\s*(?:个人|个|人|名|位)(?![户月岁])")
# An explicit request to sign someone up (a question mark does not make it a query: "帮我报个名行吗").
_SIGNUP_ASK = re.compile(r"帮.{0,12}?报|给.{0,8}?报|报个名|报上|报一下")
_CANCEL = re.compile(r"不去了|不参加了?|取消|退出|去不了|来不了|参加不了|退掉|撤掉|撤一个|撤下|划掉|不报了|退报|去不成|不学了|不来了"
                     r"|名额不要了?|不要(?:这个|那个)?名额|名额退了?|(?<![烧水肿热])退了(?![休钱款货])"
                     r"|不(?:去|参加|报|学)(?=[^,，。\s]{1,8}了)")
# A person withdrawing (only these forms count without a course: a bare 取消 may be about 低保 or a meeting).
_WITHDRAW = re.compile(r"不去了|不来了|不参加了?|参加不了了?|去不了了?|来不了了?|去不成了?|不报了|不学了|退出|退掉|退报|划掉|撤掉"
                       r"|撤一个|撤下"
                       r"|名额退了?|退了吧|不(?:去|参加|报|学)(?=[^,，。\s]{1,8}了)"
                       r"|名额不要了?|不要(?:这个|那个)?名额|(?:报名|名额)(?:也)?取消|取消(?:了)?(?:他|她)?(?:的)?(?:报名|名额)")
# What sits between a name and its withdrawal must not be an errand of its own ("马德忠说医院不去了", "开会不来了").
_NOT_TRAINING = re.compile(r"医院|卫生院|诊所|看病|住院|学校|上学|上班|开会|会议|院坝会|体检|检查|赶集|赶场|吃酒|低保|补贴|救助|工地|厂里"
                           r"|镇上|县里|乡里|城里|街上")
_IS_NOT = re.compile(r"(?:是|报的是)\s*(?P<pos>[\u4e00-\u9fff]{2,8}?)\s*[,，]?\s*(?:不是|而不是)\s*(?P<neg>[\u4e00-\u9fff]{2,8})"
                     r"|不是\s*(?P<neg2>[\u4e00-\u9fff]{2,8}?)\s*[,，]?\s*(?:是|而是)\s*(?P<pos2>[\u4e00-\u9fff]{2,8})")
_CLAUSE_BREAK = re.compile(r"[,，。;；!！?？\s]")
# Substitutions. old→new: 把X换成Y, X换Y, X改成Y, X的名额给Y, X不去了 换他表哥Y; new→old: Y顶替X, Y替X去, Y代替X.
_SUBST = re.compile(r"换成|换人|顶替|替换|改成|替他|替她|换为")
_SWAP = re.compile(
    r"(?P<old_first>->|=>|→|替换成|替换为|换成|换为|改成|改为|名额(?:让|转|留|交)?给|(?<![交转调更互切])换(?=他|她|[\u4e00-\u9fff]{2,4}))"
    r"|(?P<new_first>顶替|代替|接替|替换|替(?=他|她|[\u4e00-\u9fff]{2,4}))"
    r"|(?P<fill>顶上|补上|替上|顶进来|补进来)"  # 郑玉兰退出 龚小红顶上: the newcomer stands before the cue
)
_PHONE_VISIT = re.compile(r"电话回访|电话联系|电话打了|打了.{0,4}电话|给.{1,8}?打了?个?电话|打电话给|电话里|电话中|电话问|电话说"
                          r"|通了电话|电话沟通|电话核实|微信视频|视频通话|视频回访|视频连线|语音通话|微信语音|微信回访|微信联系"
                          r"|电话访问|电话走访|电话了解|打了一?通电话|电话打不通|电话没人接|电话没接|电话关机|打不通")
_GROUP_VISIT = re.compile(r"集中走访|院坝会|坝坝会|群众会|户主会|村民大会|村民会|在村委会.{0,8}(?:开|搞|召开|集中|座谈)|召集.{0,6}(?:群众|户)")
_HOME_VISIT = re.compile(
    r"入户|上门(?!女婿)|家访|(?:到|(?<![出回过])去|来到|进了?)[^,，。;；\s]{1,14}家|走访[^记表,，。\s]{0,12}家|走访了?\s*(?:" + NUM +
    r")\s*户|(?:走|跑|看|访)了\s*[^,，。;；\s]{0,6}?(?:" + NUM + r")\s*户|看了|看望|探望|慰问|去过|送了|送去"
    r"|送到(?![^,，。;；\s]{0,4}(?:医院|卫生院|诊所|住院))|给.{0,12}家送"
    r"|(?:去|跑|走)了(?:一)?趟")
_VISIT_EVIDENCE = re.compile(r"走访|回访|入户|上门(?!女婿)|家访|看望|探望|慰问|看了|去了|去过|跑了|走了|电话打了|打了?电话|"
                             r"通了电话|视频|院坝会|见了|了解到|送了|送去|送到|反映|说|她家|他家|家里")
_FAMILY_ALL = re.compile(r"[两三四五六七八九十几\d]+(?:家|户)\s*(?=都|各|每|一起|也)|两家|几家|每家|各家|每户|各(?=送|发|给|要|缺|领|拉|有)|都说|都要|都缺|都")
_COUNT_TOTAL = re.compile(rf"(?:一共|总共|共|合计|总计)\s*(?P<n>{NUM})\s*(?:个|人|位|名)")
_COUNT_MORE = re.compile(rf"还有\s*(?P<n>{NUM})\s*(?:个|人|位|名)")
_COUNT_PLAIN = re.compile(rf"(?:报\s*)?(?<![\d.])(?P<n>{NUM})\s*(?:个人|人|个|位|名)(?![月岁小])")
_PENDING_KIN = (r"妯娌|老婆|老公|媳妇|儿子|女儿|儿媳|女婿|丈夫|妻子|爱人|哥哥|弟弟|姐姐|妹妹|表哥|表弟|表姐|表妹|堂哥|堂弟|堂姐|堂妹|"
                r"侄子|侄女|嫂子|弟媳|邻居|亲戚|老伴")
# A relative signed up before their name is known: "还有她妯娌 名字我问下", "他老婆也想报，名字还没问".
_PENDING = re.compile(rf"还有\s*(?:他|她)?(?:的)?(?P<kin>{_PENDING_KIN}|一个|一位|一人)"
                      rf"|(?:他|她)(?:的)?(?P<kin2>{_PENDING_KIN})也(?:想|要)?(?:报|参加|去)")
_KIN_WORDS_RE = "|".join(sorted((k for k in KIN_WORDS if len(k) >= 2), key=len, reverse=True))
_KIN_AFTER = re.compile(rf"\s*(?:他|她)?(?:的)?(?P<kin>{_KIN_WORDS_RE})")
# An unnamed relative in a visit ("他儿子想学电工，帮他报个名"): the participant is pending.
_KIN_REF = re.compile(rf"(?:他|她)(?:家)?(?:的)?(?P<kin>{_KIN_WORDS_RE})")
_ASKS_STATUS = re.compile(r"报(?:名|上)?了(?:没|吗)|有没有报|报没报|是否报|报上没")
_DEADLINE_WORD = re.compile(r"截止|截至|之前|以前|前")
_NEED_HINT = re.compile(r"缺|坏|漏|塌|裂|没有|不够|想要|需要|申请|要办|还没|没钱|困难|冻")


@dataclass(slots=True)
class _Ctx:
    text: str
    today: date
    ref: date
    header_end: int
    villages: list[Span]
    names: list[NameHit]
    clauses: list[Clause]
    fu: list[bool]
    dates: list[D.DateHit]
    phones: list[tuple[int, int, str]]
    sizes: list[SizeHit]
    course: tuple[str, int] | None
    starts: list[int]
    swap: tuple[list[str], list[str]] | None  # (withdrawn, joining) names of a substitution
    listed: list[bool]  # the clause is an item of a form list (its own line, field or label section)


_TRAINING_CUE = re.compile(r"报|学|培训|班|名额|课|期")


def _course_in(t: str, avoid: list[tuple[int, int]]) -> tuple[str, int] | None:
    """The course a message names. A bare trade word (养殖, 电商) is a course only where the message speaks of
    training at all: "去养殖场问价" is an errand, "报个名 养鸡" a sign-up."""
    c = find_course(t, avoid)
    if c is not None and not _COURSE_WORD.search(c[0]) and not _TRAINING_CUE.search(t) and not _WITHDRAW.search(t) \
            and not _SWAP.search(t):
        return None
    return c


_COURSE_WORD = re.compile(r"培训|班|课")


def _today(now: Any) -> date:
    if isinstance(now, datetime):
        try:
            return now.astimezone(now.tzinfo).date() if now.tzinfo else now.date()
        except Exception:
            return now.date()
    if isinstance(now, date):
        return now
    return datetime.now().date()


def _clause_of(ctx: _Ctx, pos: int) -> int:
    i = bisect_right(ctx.starts, pos) - 1
    if i >= 0 and ctx.clauses[i].start <= pos < ctx.clauses[i].end:
        return i
    return -1


def _mask(text: str, spans: list[tuple[int, int]]) -> str:
    chars = list(text)
    for s, e in spans:
        for i in range(max(0, s), min(len(chars), e)):
            chars[i] = "\u3000"
    return "".join(chars)


def _uniq(xs: list[str]) -> list[str]:
    return list(dict.fromkeys(xs))


def parse(text: str, now: datetime, registry: Registry | None = None, intent: str | None = None) -> dict[str, Any]:
    """Parse one cadre message sent at `now` (tz-aware) into the README schema; never raises.
    `intent` forces a reading the cadre chose ("记走访" on a message read otherwise): every field of that
    intent is filled from the text as if the parser had picked it."""
    try:
        return _parse(text, now, registry, intent)
    except Exception:  # a parser bug must degrade to "other", not take the bot down
        log.exception("parse failed")
        return empty_result()


def _parse(text: str, now: datetime, registry: Registry | None, forced: str | None = None) -> dict[str, Any]:
    t = normalize(text)
    res = empty_result()
    if not t:
        return res
    today = _today(now)
    hd = D.header_date(t, today)
    ref = hd[0] if hd else today
    known_names: list[Span] = []
    known_villages: list[Span] = []
    if registry is not None:
        # registered names and villages are user words of the registry's tokenizer: one full cut finds them all
        tok = registry.tokenizer
        toks = tokenize(tok, t)
        bounds = boundaries(toks)
        known_names = token_spans(toks, registry.names)
        known_villages = token_spans(toks, registry.villages)
    else:
        tok = base_tokenizer()
        bounds = window_bounds(tok, t)
    villages = find_villages(t, bounds, known_villages)
    dates = D.find_dates(t, ref)
    if hd:
        dates = [d for d in dates if d.start >= hd[1]]
    phones = find_phones(t)
    blocked = [(d.start, d.end) for d in dates] + [(a, b) for a, b, _ in phones]
    names = find_names(t, tok, villages, known_names, blocked)
    cls = clauses(t)
    fu = followup_flags(t, cls)
    heads = [(n.start, n.end) for n in names if n.role == "head"]
    if heads:
        extra = bare_places(t, heads, villages)
        if extra:
            villages = sorted(villages + extra, key=lambda v: v.start)
    avoid = [(n.start, n.end) for n in names] + [(v.start, v.end) for v in villages]
    ctx = _Ctx(t, today, ref, hd[1] if hd else 0, villages, names, cls, fu, dates, phones, find_sizes(t),
               _course_in(t, avoid), [c.start for c in cls], _swap(t, names), _listed(t, cls))

    intent, secondary = _intent(ctx)
    if forced is not None and forced != intent:
        secondary = [x for x in [*secondary, intent] if x not in ("other", "query", forced)]
        intent = forced
    res["intent"] = intent
    res["secondary_intents"] = secondary
    course = ctx.course
    if intent == "visit_log":
        _fill_visit(ctx, res, hd is not None)
        res["visit_outcome"] = visit_outcome(t, res["household_head"])
    else:
        vs = _uniq([v.text for v in villages])
        res["village"] = vs[0] if len(vs) == 1 else (vs or None)
    if course and (intent != "visit_log" or secondary):
        res["course"] = course[0]
        res["course_norm"] = course[0] if intent == "other" and not _NOTICE.search(t) and _ATTEND.search(t) \
            else normalise_course(course[0])
    if intent in ("training_signup", "training_cancel") or secondary:
        _fill_training(ctx, res, intent, secondary, course)
    if intent == "other" and course and (_NOTICE.search(t) or re.search(r"报名|截止|名额", t)):
        _fill_announcement_dates(ctx, res)
    if phones and (intent != "other" or course):
        ph = _uniq([p for _, _, p in phones])
        res["phone"] = ph[0] if len(ph) == 1 else ph
    if intent != "query" and not (intent == "other" and _NOTICE.search(t)):
        # hardships a question or a township notice names are not this household's signals
        res["risks"] = [r.as_dict() for r in find_risks(text if isinstance(text, str) else t)]
    return res


_SPACE_ONLY = re.compile(r"[ \u3000]+")
_ITEM_SEP = re.compile(r"[\n|｜]")
_FIELD_LABEL = re.compile(r"^[\u4e00-\u9fff]{2,6}\s*[:：]")


def _listed(t: str, cls: list[Clause]) -> list[bool]:
    out = []
    for i, c in enumerate(cls):
        sep = t[cls[i - 1].end:c.start] if i else ""
        out.append(bool(_ITEM_SEP.search(sep)) or (sep in ("，", ",", "；", ";", "、") and bool(FU_LABEL.match(cls[i - 1].text))))
    return out


def followup_flags(t: str, cls: list[Clause]) -> list[bool]:
    """Which clauses are follow-ups: each scored on its own, and every item under a form label (帮扶措施：A，B /
    下步 报产业奖补) up to the next line or field."""
    flags = [is_followup(c.text) for c in cls]
    under_label = False
    for i, c in enumerate(cls):
        sep = t[cls[i - 1].end:c.start] if i else ""
        if _ITEM_SEP.search(sep) or _FIELD_LABEL.match(c.text):
            under_label = False
        if FU_LABEL_ONLY.match(c.text):
            flags[i] = False
            under_label = True
            continue
        if FU_LABEL.match(c.text):
            under_label = True
        if under_label and len(c.text.strip()) >= 2:
            flags[i] = True
    return flags


# ------------------------------------------------------------------------------------------------------ intent
def visit_verbs_early(t: str) -> bool:
    return re.search(r"走访|回访|入户|上门(?!女婿)|看望|去过|看了", t) is not None


_ASK_OPEN = re.compile(r"^\s*(?:问一下|请问|咨询一下|想问下?)|还能[^，。,\s]{0,8}不(?=\s|$|[,，。？?])")
_ANCHOR_VERB = re.compile(r"入户|上门|家访|走访")
_QUERY_MORE = re.compile(r"什么|啥|哪些|需不需要|用不用|收费|免费吗|要钱")
_COLLECT = re.compile(r"名单(?:发|报|交|给)(?:我|上来|过来)|把名单|报上来|统一报|汇总|各村|大家|各位|截止|截至")
_TRAINING_WORD = re.compile(r"培训|报名|名额|开班|开课|上课|结业|截止|学费|补贴标准")


def _seats(t: str) -> bool:
    for m in _SEATS.finditer(t):
        if m.group(0)[0] != "个" or t[:m.start()].rstrip()[-1:] in _NUM_CHARS:
            return True
    return False


def _visit_anchor(t: str, heads: list[NameHit], home: bool) -> bool:
    """An explicit visit: phoned / met at a 院坝会 / went to the home of a household named in the match.
    `home` says whether _HOME_VISIT or _PHONE_VISIT matched at all (already known to the caller)."""
    if home:
        if _PHONE_VISIT.search(t):
            return True
        for m in _HOME_VISIT.finditer(t):
            if _ANCHOR_VERB.match(m.group(0)) or any(m.start() <= h.start and h.end <= m.end() for h in heads):
                return True
    return _GROUP_VISIT.search(t) is not None


def _swap(t: str, names: list[NameHit]) -> tuple[list[str], list[str]] | None:
    """(withdrawn, joining) names when one person replaces another; each side must sit right next to its cue."""
    people = [n for n in names if n.role != "visitor"]
    if len(people) < 2:
        return None
    for m in _SWAP.finditer(t):
        before = [n for n in people if n.end <= m.start()]
        after = [n for n in people if n.start >= m.end()]
        old: list[NameHit]
        new: list[NameHit]
        if m.lastgroup == "fill":
            if len(before) < 2 or m.start() - before[-1].end > 2 or not _WITHDRAW.search(t, before[-2].end,
                                                                                          before[-1].start):
                continue
            old, new = before[:-1], before[-1:]
        elif m.lastgroup == "new_first":  # 覃小东顶替韦小兵 / 让覃小东替他去
            if not before or m.start() - before[-1].end > 3:
                continue
            new = [before[-1]]
            if after and after[0].start - m.end() <= 3:
                old = [after[0]]
            elif t[m.end(): m.end() + 1] in ("他", "她"):
                old = before[:-1]
            else:
                continue
        else:  # 把韦小兵换成覃小东 / 韦小兵不去了 换他表哥覃小东 / 李四的名额给王五
            gap = t[m.end():after[0].start] if after else ""
            if not before or not after or (after[0].start - m.end() > 5 and not _KIN_GAP.fullmatch(gap)) \
                    or m.start() - before[-1].end > 12:
                continue
            old, new = before, after[:1] + [n for n in after[1:] if n.role == "member" or n.start - m.end() <= 8]
        out_old = _uniq([n.name for n in old])
        out_new = [x for x in _uniq([n.name for n in new]) if x not in out_old]
        if out_old and out_new:
            return out_old, out_new
    return None


def _is_not(t: str, people: list[NameHit]) -> tuple[str, str, bool] | None:
    """A correction "是X 不是Y" / "不是Y 是X": (right, wrong, about_person). Only names or course words count."""
    m = _IS_NOT.search(t)
    if m is None:
        return None
    pos, neg = m.group("pos") or m.group("pos2"), m.group("neg") or m.group("neg2")
    names = {n.name for n in people}
    if pos in names and neg in names:
        return pos, neg, True
    if find_course(pos) is not None and find_course(neg) is not None:
        return pos, neg, False
    return None


def _withdrawal(t: str, names: list[NameHit], course: tuple[str, int] | None) -> bool:
    """A named person pulls out ("苏文斌不去了", "韦小兵家里有事不来了", "把郑玉兰的报名取消了") with no errand in between."""
    people = [n for n in names if n.role != "visitor"]
    for m in _WITHDRAW.finditer(t):
        before = [n for n in people if n.end <= m.start()]
        if not before:
            if any(0 <= n.start - m.end() <= 2 for n in people):  # 取消苏文斌的报名
                return True
            continue
        gap = t[before[-1].end:m.start()]
        if course is not None:
            gap = gap.replace(course[0], "")
        if len(gap) <= 8 and not _CLAUSE_BREAK.search(gap) and not _NOT_TRAINING.search(gap) and not \
                _NOT_TRAINING.search(t[m.end():m.end() + 4]):
            return True
    return False


_VISIT_CUE = re.compile(r"走访|回访|入户|上门|看望|探望|慰问|家访|(?:去|到|克)[^,，。;；\s]{0,12}(?:家|户|屋)|电话|视频|院坝会|群众会")
_DID_VISIT = re.compile(r"(?:去|到|看|访|走|跑|见|打|问|坐|摆|聊|来|送|拉|带|给|发)了|去过|看过|(?:电话|视频)(?:回访|联系)|回访了"
                        r"|入户了|通了")


def _only_planned(ctx: _Ctx) -> bool:
    """Every mention of a visit sits in a clause about the future, and nothing says one happened."""
    if not ctx.fu or not ctx.fu[0]:
        return False  # a report opens with what is (班小燕家 …); a plan opens with what will be done
    cues = [i for i, c in enumerate(ctx.clauses) if _VISIT_CUE.search(c.text)]
    return bool(cues) and all(ctx.fu[i] for i in cues) and _DID_VISIT.search(ctx.text) is None and not _FORM.match(
        ctx.text.lstrip("【"))


def _intent(ctx: _Ctx) -> tuple[str, list[str]]:
    t = ctx.text
    heads = [n for n in ctx.names if n.role == "head"]
    people = [n for n in ctx.names if n.role != "visitor"]
    fm = _FORM.search(t)
    form = fm is not None and fm.start() < 16  # a form opens with its label; 走访记录 mid-text is a topic
    if _NOTICE.search(t) and not form:
        return "other", []
    course = ctx.course
    if _only_planned(ctx):
        return "other", []  # "我准备腊月二十去杞有才家送慰问": a visit still to come is no visit log
    cancel = _CANCEL.search(t)
    signup_cue = _SIGNUP.search(t) is not None or _seats(t)
    signup = signup_cue or (course is not None and "报" in t[max(0, course[1] - 2): course[1]])
    if signup and course is None and (visit_verbs_early(t) or re.search(r"报名(?:单|册|表)", t)):
        signup = False  # 报名单 / a visit that mentions lists: not a training sign-up without a course
    visit_verbs = _VISIT_EVIDENCE.search(t) is not None
    home = _HOME_VISIT.search(t) is not None or _PHONE_VISIT.search(t) is not None
    sizes = ctx.sizes
    score = (2 if heads else 0) + (2 if visit_verbs else 0) + (1 if ctx.villages else 0) + (1 if sizes else 0) + (
        3 if form else 0) + (1 if home else 0) + (1 if heads and _NEED_HINT.search(t) else 0)
    training_ctx = course is not None or signup_cue
    anchor = _visit_anchor(t, heads, home)
    household_cue = form or bool(sizes) or "户主" in t
    q = _QUERY.search(t)
    if q and _ASKS_STATUS.search(t):
        return "query", []
    if (course is not None or "报" in t) and _is_not(t, people) is not None:
        return "training_signup", ["training_cancel"]  # "龙志强报的是电焊 不是电工": one course for another
    if ctx.swap and (training_ctx or not (anchor or household_cue)) and not (anchor and heads and not signup):
        return "training_signup", ["training_cancel"]
    withdrawn = cancel is not None and (training_ctx or (
        not (anchor or household_cue or visit_verbs_early(t)) and _withdrawal(t, ctx.names, course)))
    if withdrawn and cancel is not None and not (home and heads and not signup):
        if _SUBST.search(t[cancel.start():]):
            return "training_signup", ["training_cancel"]  # "韦小兵不去了 换人": the newcomer is still to be named
        return "training_cancel", []
    if withdrawn and course is not None and heads and anchor and not signup:
        return "visit_log", ["training_cancel"]  # "去马德忠家，他说下周的电焊培训去不了了"
    if (q or _QUERY_MORE.search(t)) and not people and not anchor and not _SIGNUP_ASK.search(t) and (
            course is not None or _TRAINING_WORD.search(t)):
        return "query", []  # "刺梨培训还有名额吗", "电工班哪天开课", "养鸡培训在哪报名", "报名要带什么材料"
    counted = _SIGNUP_COUNT.search(t) is not None or _seats(t)
    if signup and not people and not counted:
        if anchor or re.match(r"(?:今天|昨天|前天|上午|下午)?走访", t):
            return "visit_log", ["training_signup"]  # "走访了5户，有两户说养鸡培训想报名"
        if _COLLECT.search(t):
            return "other", []  # a call for lists ("电工培训报名的把名单发我，截止周五"), not a sign-up
    if signup and (course is not None or ctx.names):
        if heads and home and any(n.role == "member" for n in ctx.names):
            return "visit_log", ["training_signup"]
        if heads and (anchor or (home and score >= 4)) and not _SIGNUP.match(t):
            return "visit_log", ["training_signup"]
        return "training_signup", []
    if signup and counted and not (anchor or household_cue or visit_verbs_early(t)):
        return "training_signup", []  # "我们组报5个 名字晚点发": seats first, names later
    if _PLAN_START.search(t) and not heads and not _PAST.search(t[:12]):
        return "other", []
    if _ATTEND.search(t) and not heads:
        return "other", []
    if course is not None and ctx.names and not home and not visit_verbs_early(t) and not q:
        return "training_signup", []  # "养鸡培训 沙坝村 卢春花 谢长林": a bare list under a course
    if (_GROUP_VISIT.search(t) or _GROUP_MORE.search(t)) and not q and _PAST.search(t):
        return "visit_log", []  # a meeting held with the households (院坝会, 座谈会, 小会): a 集中走访 without names
    if (q or _ASK_OPEN.search(t)) and not heads and not re.search(r"(?:走访|入户|去|看|访)了|去过|回访了", t):
        return "query", []  # "国庆这几天要不要安排人入户？": about the work, not a report of it
    if score >= 3 and (heads or home or ctx.villages):
        return "visit_log", []
    if q:
        return "query", []
    if course is not None and len(ctx.names) >= 1 and not q:
        return "training_signup", []
    if heads and (visit_verbs or home):
        return "visit_log", []
    return "other", []


# ------------------------------------------------------------------------------------------------------- visit
_GROUP_MORE = re.compile(r"座谈会|群众会|小会|开会.{0,10}户|(?:户|人)来的|来了.{0,4}(?:户|个人)|户代表|院坝里|(?:和|跟)群众")
_PHONE_MORE = re.compile(r"通了个?电话|视频了|视频一下|跟.{1,10}视频|打了.{0,4}电话(?!给(?:社区|镇|站|局|办|村|医院))|电话来|接到.{0,6}电话"
                         r"|(?:走访|联系)方式\s*[:：]?\s*(?:电话|微信|视频)|(?:^|\s)电话(?:\s|$)|语音")
_HOME_MORE = re.compile(r"屋头|(?:去|到)了?[^,，。;；\s]{1,12}(?:那户|户)(?![口主])|走了.{1,8}家|在.{1,10}家(?:坐|摆|聊|看|吃)"
                        r"|拉了|拉过去|送过去|带过去|送了|带了|补了.{0,4}走访|(?:走访|联系)方式\s*[:：]?\s*(?:入户|上门)|入户\s*[:：]"
                        r"|去了.{1,8}(?:村|组|寨)|屋里(?:坐|摆|聊)|(?:去|克|到)的\s*[:：]|(?:去|克|到)了[\u4e00-\u9fff]{2,5}[，,\s]"
                        r"|克[^,，。;；\s]{1,14}(?:家|屋)|瞧了|跑了.{0,3}趟|遍访|(?:入户|走访)登记|拜年|顺便看了")


def _visit_type(ctx: _Ctx) -> str | None:
    """集中 beats the rest; being in the home beats a phone call in the same report (a call to an office or a
    relayed call does not make the visit remote). Only what already happened counts, not follow-up clauses."""
    live = " ".join(c.text for c, f in zip(ctx.clauses, ctx.fu, strict=False) if not f)
    if _GROUP_VISIT.search(live) or _GROUP_MORE.search(live):
        return "集中走访"
    explicit_phone = re.search(r"电话回访|视频回访|微信回访|(?:走访|联系)方式\s*[:：]?\s*(?:电话|微信|视频)", live)
    phone = explicit_phone is not None or _PHONE_VISIT.search(live) is not None or _PHONE_MORE.search(live) is not None
    home = _HOME_VISIT.search(live) is not None or _HOME_MORE.search(live) is not None
    if explicit_phone:
        return "电话回访"
    if home:
        return "入户走访"
    if phone:
        return "电话回访"
    return None


def _households(ctx: _Ctx) -> tuple[list[str], list[NameHit]]:
    heads = [n for n in ctx.names if n.role == "head"]
    return _uniq([h.name for h in heads]), heads


def _owner(pos: int, heads: list[NameHit], order: list[str]) -> str | None:
    owner: str | None = None
    for h in heads:
        if h.start <= pos:
            owner = h.name
    if owner is None and order:
        owner = order[0]
    return owner


def _household_major(rows: list[tuple[int, dict[str, Any]]], order: list[str]) -> list[dict[str, Any]]:
    """Needs (with the clause each came from) in message order, except that what one clause gives several
    households ("三户各送了一袋米两桶油") is listed household by household: 米 and 油 for the first, then the next."""
    rank = {name: i for i, name in enumerate(order)}
    out: list[dict[str, Any]] = []
    for _clause, group in groupby(rows, key=lambda r: r[0]):
        # sorted() is stable: within a household the items keep their order
        out.extend(d for _, d in sorted(group, key=lambda r: rank.get(r[1].get("household") or "", len(order))))
    return out


def _group_of(t: str, heads: list[NameHit], name: str) -> list[str]:
    """Heads listed together with `name` (孙光辉、马小琴两家): those joined only by 、/和."""
    groups: list[list[NameHit]] = []
    for h in heads:
        if groups and re.fullmatch(r"家?[\s、,，和跟及与]*", t[groups[-1][-1].end:h.start]):
            groups[-1].append(h)
        else:
            groups.append([h])
    for g in groups:
        if g[-1].name == name:
            return _uniq([x.name for x in g])
    return [name]


# How strongly a clause states the sender's own visit: going to the home beats a call; a call received is no visit.
_VISIT_STRONG = re.compile(r"走访|入户|上门(?!女婿)|家访|看望|探望|慰问|去看|看了|去过|(?:去|到|来到)[^,，。;；\s]{0,12}(?:家|屋头)"
                           r"|院坝会|坝坝会|座谈会|开了个?会")
_VISIT_WEAK = re.compile(r"回访|电话|视频|去了|到了|跑了|走了")
_CALL_RECEIVED = re.compile(r"接到[^,，。;；\s]{0,6}电话|接了[^,，。;；\s]{0,4}电话|来电话|打电话来|打来电话")
_PAST_MARK = re.compile(r"了|过|已|刚")
# A form's own date field ("走访时间：3月13日") dates the visit whatever else the form mentions.
_DATE_LABEL = re.compile(r"(?:走访|入户|回访|访问)?(?:时间|日期)\s*[:：]?\s*$")


def _visit_clause_score(text: str) -> int:
    if _CALL_RECEIVED.search(text):
        return 0
    if _VISIT_STRONG.search(text):
        return 2
    return 1 if _VISIT_WEAK.search(text) else 0


def _week_shift(ctx: _Ctx) -> int | None:
    for h in ctx.dates:
        if h.kind == "period" and h.last is not None and h.first is not None and (h.last - h.first).days == 6 \
                and h.first.weekday() == 0:  # a calendar week (本周), not a 7-day holiday (国庆假期)
            monday = ctx.ref - timedelta(days=ctx.ref.weekday())
            return (h.first - monday).days // 7
    return None


def _visit_dates(ctx: _Ctx, order: list[str], heads: list[NameHit], header: bool) -> Any:
    if header:
        return ctx.ref.isoformat()
    shift = _week_shift(ctx)
    usable: list[tuple[D.DateHit, Any]] = []
    for h in ctx.dates:
        idx = _clause_of(ctx, h.start)
        if idx >= 0 and ctx.fu[idx]:
            continue
        if h.deadline:
            continue
        if h.kind == "period" and shift is not None and h.first is not None and h.last is not None \
                and (h.last - h.first).days == 6 and h.first.weekday() == 0:
            continue
        idx = _clause_of(ctx, h.start)
        own = ctx.clauses[idx].text if idx >= 0 else ""
        if h.kind == "period" and h.last is not None and (h.last > ctx.today or not _visit_clause_score(own)):
            # a period not yet over (12月中旬, 月底, 这个月, 下周) is a plan, never the day of a visit; a past one
            # (国庆假期里) dates the visit only where its own clause states the visit
            continue
        tense: D.Tense = "past"
        if h.kind == "weekday" and shift is None and not _PAST_MARK.search(ctx.text):
            tense = None  # "周五 石板沟村韦德荣家 屋顶补漏" sent on a Saturday: yesterday's log or next Friday's plan
        v = D.to_value(h, ctx.ref, tense, shift if h.kind == "weekday" else None)
        if v is None:
            continue
        if isinstance(v, str) and v > ctx.today.isoformat():
            continue
        usable.append((h, v))
    if not usable:
        return None
    if len(usable) >= 2 and len(order) <= 1:
        # the date whose clause states the visit most strongly; the earliest one on a tie
        scored = [(3 if _DATE_LABEL.search(ctx.text, max(0, h.start - 8), h.start) else
                   _visit_clause_score(ctx.clauses[i].text) if (i := _clause_of(ctx, h.start)) >= 0 else 0, -n)
                  for n, (h, _) in enumerate(usable)]
        best = max(range(len(usable)), key=lambda n: scored[n])
        if scored[best][0] > 0:
            return usable[best][1]
    if len(order) >= 2 and len(usable) >= 2:
        per: dict[str, Any] = {}
        for h, v in usable:
            nxt = [x for x in heads if x.start >= h.end]
            if nxt:
                owner = nxt[0].name
                between = ctx.text[h.end:nxt[0].start]
                if len(between) <= 12 and owner not in per:
                    per[owner] = v
        if len(per) >= 2 and len({str(v) for v in per.values()}) >= 2:
            return [per.get(n) for n in order]
    return usable[0][1]


def _fill_visit(ctx: _Ctx, res: dict[str, Any], header: bool) -> None:
    t = ctx.text
    order, heads = _households(ctx)
    multi = len(order) >= 2
    res["household_head"] = (order if multi else order[0]) if order else None
    vs = [v for v in ctx.villages]
    if multi:
        per_v: list[str | None] = []
        for name in order:
            h = next(x for x in heads if x.name == name)
            before = [v for v in vs if v.end <= h.start]
            per_v.append(before[-1].text if before else (vs[0].text if vs else None))
        distinct = _uniq([v for v in per_v if v])
        res["village"] = distinct[0] if len(distinct) == 1 and all(per_v) else (per_v if any(per_v) else None)
        if len(distinct) == 1 and not all(per_v):
            res["village"] = distinct[0]
    else:
        uv = _uniq([v.text for v in vs])
        res["village"] = uv[0] if uv else None
    res["visit_type"] = _visit_type(ctx)
    evidence = res["visit_type"] is not None or _FORM.search(t) is not None or re.search(
        r"走访|回访|入户|看望|去过|看了|去了|到了|跑了|走了", t) is not None or bool(
        ctx.dates and ctx.dates[0].start == 0 and order)  # "周三 高坡村 孙光辉 …": a dated household entry
    res["visit_date"] = _visit_dates(ctx, order, heads, header) if (evidence or header) else None

    sizes = ctx.sizes
    if multi:
        per_s: list[int | None] = []
        for name in order:
            seg = next(x for x in heads if x.name == name)
            nxt = [x.start for x in heads if x.start > seg.start and x.name != name]
            end = min(nxt) if nxt else len(t)
            vals = [s.value for s in sizes if seg.start <= s.start < end]
            per_s.append(vals[-1] if vals else None)
        res["household_size"] = per_s
    else:
        res["household_size"] = sizes[-1].value if sizes else None

    spans = [(v.start, v.end) for v in ctx.villages] + [(n.start, n.end) for n in ctx.names] + [
        (d.start, d.end) for d in ctx.dates] + [(a, b) for a, b, _ in ctx.phones]
    masked = _mask(t, spans)
    needs = extract_needs(t, ctx.clauses, ctx.fu, masked, single=not multi)
    rows: list[tuple[int, dict[str, Any]]] = []
    for n in needs:
        if multi:
            owner = _owner(n.start, heads, order)
            if owner is None:
                n.households = []
            else:
                group = _group_of(t, heads, owner)
                ci = _clause_of(ctx, n.start)
                own_clause = ctx.clauses[ci].text if ci >= 0 else ""
                together = _FAMILY_ALL.search(t[heads[-1].end:]) or _FAMILY_ALL.search(own_clause)
                n.households = group if len(group) >= 2 and together else [owner]
        rows.extend((n.clause, d) for d in n.as_dict(multi))
    res["needs"] = _household_major(rows, order) if multi else [d for _, d in rows]

    fus: list[dict[str, Any]] = []
    for i, c in enumerate(ctx.clauses):
        if not ctx.fu[i]:
            continue
        dhits = [d for d in ctx.dates if c.start <= d.start < c.end]
        if not dhits:  # "…快吃完了10月8号我去卫生院帮她拿": the date closes the clause before the split
            dhits = [d for d in ctx.dates if c.start - 1 <= d.end <= c.start]
        due: Any = None
        for d in dhits:
            due = D.to_value(d, ctx.ref, "future")
            if due is not None:
                break
        action = action_text(c.text, [d.raw for d in dhits])
        if len(action) <= 3 and i > 0:
            action = ctx.clauses[i - 1].text + action
        item: dict[str, Any] = {"action": action, "due": due}
        if multi:
            item["household"] = _owner(c.start, heads, order)
        # consecutive follow-up fragments split by spaces describe one action ("我跟村里商量下 这个月底前把他家报"),
        # unless a form lists them as separate items
        if (fus and i > 0 and ctx.fu[i - 1] and fus[-1]["due"] is None and not ctx.listed[i]
                and (due is None or _SPACE_ONLY.fullmatch(t[ctx.clauses[i - 1].end:c.start]))):
            fus[-1]["action"] += action
            fus[-1]["due"] = due
            continue
        fus.append(item)
    res["follow_ups"] = fus


# ---------------------------------------------------------------------------------------------------- training
def _count(t: str, names: int) -> int | None:
    m = _COUNT_TOTAL.search(t)
    if m:
        v = parse_number(m.group("n"))
        if isinstance(v, int | float) and 0 < v <= 500:
            return max(int(v), names)
    more = _COUNT_MORE.search(t)
    if more:
        v = parse_number(more.group("n"))
        if isinstance(v, int | float) and 0 < v <= 500:
            return names + int(v)
    for m in _COUNT_PLAIN.finditer(t):
        v = parse_number(m.group("n"))
        if isinstance(v, int | float) and 0 < v <= 500 and v == int(v):
            return max(int(v), names)
    return None


def _fill_training(ctx: _Ctx, res: dict[str, Any], intent: str, secondary: list[str],
                   course: tuple[str, int] | None) -> None:
    t = ctx.text
    people = _trainees(t, [n for n in ctx.names if n.role != "visitor"])
    if intent == "visit_log":
        sm = _SIGNUP.search(t)
        idx = _clause_of(ctx, sm.start()) if sm else -1
        near = [n for n in people if idx >= 0 and _clause_of(ctx, n.start) in (idx, idx - 1)]
        members = [n for n in near if n.role == "member"] or near
        names: list[Any] = _uniq([n.name for n in members])
        if not names and idx >= 0:
            # "他儿子想学电工，帮他报个名": an unnamed relative of the household is the participant
            lo = ctx.clauses[max(0, idx - 1)].start
            km = _KIN_REF.search(t, lo, ctx.clauses[idx].end)
            head = _uniq([n.name for n in people if n.role == "head"])[:1]
            if km and head:
                names = [{"ambiguous": True, "raw": f"{head[0]}的{km.group('kin')}", "candidates": [],
                          "note": "name pending"}]
        if not names:
            names = _uniq([n.name for n in people if n.role == "head"])[:1]
        res["participants"] = {"names": names, "count": len(names) if names else _count(t, 0)}
        return
    cm = _CANCEL.search(t)
    sub = _SUBST.search(t)
    cancelled: list[str] = []
    joined: list[str] = []
    pending: list[Any] = []
    if ctx.swap is not None:
        cancelled, joined = ctx.swap
    elif sub and (cm or len(people) >= 2):
        cut = sub.start()
        cancelled = _uniq([n.name for n in people if n.start < cut])
        joined = _uniq([n.name for n in people if n.start >= sub.end()])
        km = _KIN_AFTER.match(t, sub.end())
        if not joined and km and cancelled:  # "韦小兵不去了 换成他表哥": the newcomer's name is still to come
            pending.append({"ambiguous": True, "raw": f"{cancelled[-1]}的{km.group('kin')}", "candidates": [],
                            "note": "name pending"})
    elif cm:
        cancelled = _uniq([n.name for n in people])
    else:
        joined = _uniq([n.name for n in people])
    if intent == "training_cancel":
        # a plain withdrawal: the dev set lists the withdrawn people as participants, `cancelled` stays null
        res["participants"] = {"names": cancelled, "count": len(cancelled) or _count(t, 0)}
        return
    if cancelled:
        res["cancelled"] = {"names": cancelled, "count": len(cancelled), "course": course[0] if course else None}
    names_out: list[Any] = list(joined) + pending
    for pm in _PENDING.finditer(t):
        kin = pm.group("kin") or pm.group("kin2")
        if kin in ("一个", "一位", "一人"):
            continue
        kin_end = pm.start() + pm.group(0).index(kin) + len(kin)
        if any(0 <= n.start - kin_end <= 1 for n in people):
            continue  # "还有她老公龙德贵": named, already a participant
        owner = [n.name for n in people if n.start < pm.start()]
        raw = f"{owner[-1]}的{kin}" if owner else kin
        names_out.append({"ambiguous": True, "raw": raw, "candidates": [], "note": "name pending"})
    names_out = _with_spouses(t, names_out, people)
    names_out = _kin_placeholders(t, names_out, people)
    fix = _is_not(t, people)
    if fix is not None:
        right, wrong, person = fix
        if person:
            names_out = [right]
            res["cancelled"] = {"names": [wrong], "count": 1, "course": course[0] if course else None}
        else:
            names_out = [x for x in names_out if isinstance(x, str)] or names_out
            res["course"], res["course_norm"] = right, normalise_course(right)
            res["cancelled"] = {"names": list(names_out), "count": len(names_out), "course": wrong}
    count = _count(t, len(names_out)) if not cancelled else len(names_out)
    res["participants"] = {"names": names_out, "count": count if count is not None else len(names_out)}
    if intent == "training_signup":
        _fill_announcement_dates(ctx, res)


_KIN_GAP = re.compile(rf"\s*(?:他|她)?的?(?:{_KIN_WORDS_RE}|妇)*\s*(?:叫|是|名字叫)?\s*")
_KIN_LINK = re.compile(rf"\s*的?(?:{_KIN_WORDS_RE}|妇)+\s*(?:叫|是)?\s*")
_COUPLE = re.compile(r"\s*(?:两口子|两口|夫妻俩|夫妻两个|老两口)")


def _trainees(t: str, people: list[NameHit]) -> list[NameHit]:
    """People a sign-up is for: in "吴德昌的媳妇张小翠" the trainee is 张小翠; 吴德昌 only says whose family."""
    out: list[NameHit] = []
    for i, n in enumerate(people):
        nxt = people[i + 1] if i + 1 < len(people) else None
        if nxt is not None and _KIN_LINK.fullmatch(t[n.end:nxt.start]) and nxt.start - n.end <= 8:
            continue
        out.append(n)
    return out


_KIN_UNNAMED = re.compile(rf"(?P<link>的|他|她)(?P<kin>{_KIN_WORDS_RE})(?!\s*(?:叫|是)?\s*[\u4e00-\u9fff]{{2,3}}(?:[\s,，、电]|$))")


def _kin_placeholders(t: str, names: list[Any], people: list[NameHit]) -> list[Any]:
    """"蓝秀莲的儿媳 名字等下问", "农德才他老婆算了": the trainee is the relative, still unnamed; X only says whose."""
    out = list(names)
    for n in people:
        m = _KIN_UNNAMED.match(t, n.end)
        if m is None or n.name not in out:
            continue
        nxt = [p for p in people if p.start >= m.end()]
        if nxt and nxt[0].start - m.end() <= 3:
            continue  # the relative is named right after (莫桂芳的女儿莫小丽)
        out[out.index(n.name)] = {"ambiguous": True, "raw": t[n.start:m.end()], "candidates": [],
                                  "note": "relative not named yet"}
    return out


def _with_spouses(t: str, names: list[Any], people: list[NameHit]) -> list[Any]:
    """A couple (X两口子) is two trainees: X and X's unnamed spouse, kept as a placeholder to be named later."""
    out = list(names)
    for n in people:
        if n.name in names and _COUPLE.match(t, n.end):
            at = out.index(n.name) + 1
            out.insert(at, {"ambiguous": True, "raw": f"{n.name}的配偶", "candidates": [], "note": "spouse (两口子) not named"})
    return out


def _fill_announcement_dates(ctx: _Ctx, res: dict[str, Any]) -> None:
    for h in ctx.dates:
        before = ctx.text[max(0, h.start - 6): h.start]
        if h.deadline or "截止" in before or "截至" in before:
            v = D.to_value(h, ctx.ref, "future")
            if isinstance(v, dict) and "by" in v:
                v = v["by"]
            if res["signup_deadline"] is None and isinstance(v, str):
                res["signup_deadline"] = v
            continue
        if res["training_date"] is None:
            idx = _clause_of(ctx, h.start)
            ctext = ctx.clauses[idx].text if idx >= 0 else ""
            if h.kind == "day" and h.md == 0 and not re.search(r"培训|上课|开班|开课|举办|开展|时间|班|学习", ctext):
                continue  # "还有三个明天补": a relative day about the list, not the session
            v = D.to_value(h, ctx.ref, "future")
            if v is not None and not (isinstance(v, dict) and v.get("ambiguous")):
                res["training_date"] = v
