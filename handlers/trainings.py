"""Training sign-ups by chat: notices → sessions, browsing, sign-up / cancel / substitute by text or button,
placeholder seats, check-in, rosters, figures, and the reminder tick (`due_training_reminders`)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from handlers import callbacks as cbs
from handlers.context import Context, Prefs
from handlers.format import WEEKDAYS, mask_phone
from handlers.outgoing import send_reply
from handlers.reminders import hold_for_quiet
from handlers.resolver import get_registry
from handlers.text import Announcement, match_course, parse, parse_announcement
from handlers.types import Button, ChatRef, Document, Reply
from handlers.xlsx import XLSX_MIME, Sheet, sheets_to_xlsx
from storage import trainings as st
from storage.accounts import home_village
from storage.messages import ledger_claim, ledger_set_outbox
from storage.models import Household, InboxMessage, OrgUnit, Person, Signup, TrainingSession

# ta: confirm/drop a parsed notice · tj: sign up from the list · tp: pick the session for a message
# tx: cancel one sign-up · tc/tk/te: check-in view, mark one, finish · tr: roster · to: reopen
_ORGANISER_CALLBACKS = (cbs.CheckinView, cbs.MarkAttendance, cbs.CloseCheckin, cbs.SendRoster, cbs.ReopenSession)
TRAINING_CALLBACKS = (cbs.ConfirmNotice, cbs.JoinSession, cbs.PickSession, cbs.CancelSignup, *_ORGANISER_CALLBACKS)
ORGANISER_ROLES = ("organiser", "admin")
MATCH_MIN = 70.0
ANSWER_WINDOW = timedelta(minutes=30)

_HAN_NAME = r"[\u4e00-\u9fff]{2,4}"
_CHECKIN = re.compile(r"^\s*签到\s*[:：]?\s*(\d{4,6})\s*(.*)$", re.S)
_NUM = {"一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9, "十": 10}
_COUNT = re.compile(r"(?:报|占|留)(?:名)?\s*(\d{1,2}|[一二两三四五六七八九十])\s*(?:个|人|名)")
_LATER = re.compile(r"(?:名字|名单|姓名|人名).{0,4}(?:晚点|稍后|后面|回头|明天|再|后)|(?:晚点|稍后|后面|回头|明天)(?:再)?(?:发|补|报)")
_CANCEL_WORDS = r"(?:不去了|不参加了|去不了了?|参加不了了?|来不了了?|不来了|不报了|取消)"
_KIN = re.compile(r"^(?:[他她]的?)?(?:表|堂)?(?:哥哥|弟弟|姐姐|妹妹|哥|弟|姐|妹|叔叔|叔|婶婶|婶|嫂子|嫂|侄子|侄女|"
                  r"儿子|女儿|媳妇|老婆|老公|爱人|父亲|母亲|爸爸|妈妈|爸|妈|亲戚|邻居|朋友)?")
_AGE = re.compile(r"(\d{2})\s*岁")
_NAMES_PREFIX = re.compile(r"^(?:补(?:报)?(?:名字|名单)?|名字|名单|姓名)\s*[:：]?\s*")
_SPLIT = re.compile(r"[\s,，、;；/]+")


def _is_organiser(ctx: Context) -> bool:
    return ctx.person is not None and ctx.person.role in ORGANISER_ROLES


def fmt_when(dt: datetime, tz: Any) -> str:
    d = dt.astimezone(tz)
    return f"{d.month}月{d.day}日(周{WEEKDAYS[d.weekday()]}) {d:%H:%M}"


def _label(ts: TrainingSession, tz: Any) -> str:
    place = f"，{ts.place}" if ts.place else ""
    return f"{ts.course.name}（{fmt_when(ts.starts_at, tz)}{place}）"


def _status_zh(status: str, position: int | None = None) -> str:
    if status == "waitlisted" and position:
        return f"候补第{position}位"
    return st.STATUS_ZH.get(status, status)


# ---------------------------------------------------------------------------------------------- who and where


async def _home_village(ctx: Context) -> OrgUnit | None:
    return await home_village(ctx.session, ctx.person.unit_id if ctx.person else None)


async def _village(ctx: Context, name: str | None) -> tuple[int | None, str | None]:
    if not name:
        home = await _home_village(ctx)
        return (home.id, home.name) if home else (None, None)
    q = select(OrgUnit).where(OrgUnit.name == name, OrgUnit.level == "village").limit(2)
    found = list((await ctx.session.execute(q)).scalars())
    return (found[0].id, name) if len(found) == 1 else (None, name)


async def participant(ctx: Context, name: str, *, village: str | None = None, phone: str | None = None,
                      age: int | None = None) -> st.Participant:
    """Linked to the registered household whose head has this name in the village, where one matches."""
    vid, vname = await _village(ctx, village)
    q: Any = select(Household).where(Household.head_name == name, Household.status == "active")
    if vid is not None:
        q = q.where(Household.village_id == vid)
    elif vname:
        q = q.join(OrgUnit, OrgUnit.id == Household.village_id).where(OrgUnit.name == vname)
    elif ctx.scope is not None:
        q = ctx.scope.household_filter(q)
    found = list((await ctx.session.execute(q.limit(2))).scalars())
    p = st.Participant(name=name, village_id=vid, village_name=vname, phone=phone, age=age)
    if len(found) == 1:
        h = found[0]
        p.household_id, p.htype = h.id, h.htype
        if p.village_id is None:
            v = await ctx.session.get(OrgUnit, h.village_id)
            p.village_id, p.village_name = h.village_id, v.name if v else vname
        if p.phone is None:
            p.phone = h.phone
        if p.age is None:
            p.age = st.age_from_id_number(h.id_number, ctx.now)
    return p


# ---------------------------------------------------------------------------------------------- finding sessions


async def _upcoming(ctx: Context) -> list[TrainingSession]:
    return await st.list_sessions(ctx.session, now=ctx.now, status="open")


async def match_sessions(ctx: Context, course: str | None, *more: str | None) -> list[TrainingSession]:
    """Open sessions whose course matches fuzzily (刺黎→刺梨); several sessions of one course all come back."""
    sessions = await _upcoming(ctx)
    names = [s.course.name for s in sessions]
    best: dict[str, float] = {}
    for q in (course, *more):
        if not q:
            continue
        for name, score in match_course(q, names):
            best[name] = max(best.get(name, 0.0), score)
    if not best:
        return []
    top = max(best.values())
    if top < MATCH_MIN:
        return []
    # A clearly better course wins outright; near-ties are asked about.
    keep = {n for n, s in best.items() if s >= max(MATCH_MIN, top - 8)}
    return [s for s in sessions if s.course.name in keep]


async def _ask_session(ctx: Context, sessions: Sequence[TrainingSession], what: str) -> None:
    assert ctx.inbox_id is not None
    rows = tuple((Button(_label(s, ctx.prefs.tz)[:60], cbs.PickSession(ctx.inbox_id, s.id).pack()),)
                 for s in sessions[:8])
    ctx.reply(f"{what}是哪一期？", buttons=rows, card_key=f"tq:{ctx.inbox_id}")


async def _no_session(ctx: Context, course: str | None) -> None:
    ups = await _upcoming(ctx)
    names = "、".join(dict.fromkeys(s.course.name for s in ups)) or "暂无"
    what = f"“{course}”" if course else "这个"
    ctx.reply(f"没有找到正在报名的{what}培训。\n现在可报名的：{names}\n发“培训”查看详情。")


# ---------------------------------------------------------------------------------------------- the /train command


async def command(ctx: Context, args: str) -> None:
    """培训 [统计|名单 ID|签到 ID|重开 ID|截止 ID|名额 ID N|缺席|我的]"""
    words = args.split()
    head = words[0].lower() if words else ""
    rest = words[1:]
    first = rest[0].lstrip("#") if rest else ""
    sid = int(first) if first.isdigit() else None
    if head in ("", "list", "列表"):
        await list_upcoming(ctx)
    elif head in ("stats", "统计"):
        await show_stats(ctx, " ".join(rest))
    elif head in ("mine", "my", "我的"):
        await show_mine(ctx)
    elif head in ("help", "帮助", "?"):
        ctx.reply(TRAIN_HELP)
    elif head in ("roster", "名单", "checkin", "签到", "reopen", "重开", "开放", "close", "截止", "关闭",
                  "capacity", "名额", "noshow", "缺席"):
        if not _is_organiser(ctx):
            ctx.reply("这个操作只有培训组织者可以用。")
            return
        if head in ("noshow", "缺席"):
            await show_no_shows(ctx)
            return
        if sid is None:
            ctx.reply(f"请写上期号，例如“培训 {words[0]} 12”。发“培训”可以看到每期的期号。")
            return
        if head in ("roster", "名单"):
            await send_roster(ctx, sid)
        elif head in ("checkin", "签到"):
            await checkin_view(ctx, sid)
        elif head in ("reopen", "重开", "开放"):
            await reopen(ctx, sid, rest[1:])
        elif head in ("capacity", "名额"):
            await set_capacity(ctx, sid, rest[1:])
        else:
            ts = await st.set_open(ctx.session, ts_id=sid, open_=False)
            ctx.reply(f"已停止报名：{_label(ts, ctx.prefs.tz)}。要重新开放发“培训 重开 {sid}”。")
    else:
        ctx.reply(TRAIN_HELP)


TRAIN_HELP = (
    "培训报名这样用：\n"
    "· 发“培训”看正在报名的班\n"
    "· 报名：“帮红岩村苏文斌报个名 蜜蜂养殖”“报名 茶叶加工 郑玉兰 龚小红”\n"
    "· 先占位：“电工报5个 名字晚点发”，之后直接发名字\n"
    "· 取消：“苏文斌不去了”  换人：“把苏文斌换成郑玉兰”\n"
    "· 签到：“签到 签到码 姓名”\n"
    "· 我的报名：“培训 我的”  统计：“培训 统计”"
)


async def list_upcoming(ctx: Context) -> None:
    sessions = await _upcoming(ctx)
    org = _is_organiser(ctx)
    if org and ctx.person is not None:
        drafts = await st.list_sessions(ctx.session, now=ctx.now, status="draft", organiser_id=ctx.person.id)
        if drafts:
            ctx.reply(f"您有{len(drafts)}条通知还没确认发布，请在之前的卡片上点“确认发布”。")
    if not sessions:
        ctx.reply("目前没有开放报名的培训班。" + ("\n发一条培训通知给我就能发布。" if org else ""))
        return
    lines = ["正在报名的培训："]
    rows: list[tuple[Button, ...]] = []
    for ts in sessions[:10]:
        c = await st.seat_counts(ctx.session, ts=ts)
        why = st.signup_open(ts, ctx.now)
        state = f"剩{c.left}/{c.capacity}个名额" if c.left else f"已满，候补{c.waitlisted}人"
        quota = f"，每村限{ts.village_quota}人" if ts.village_quota else ""
        dl = f"，{fmt_when(ts.deadline, ctx.prefs.tz)}截止" if ts.deadline and why is None else ""
        lines.append(f"#{ts.id} {_label(ts, ctx.prefs.tz)}\n   {why or state}{quota}{dl}")
        if why is None:
            rows.append((Button(f"报名 #{ts.id} {ts.course.name}"[:40], cbs.JoinSession(ts.id).pack()),))
        if org:
            rows.append((Button(f"#{ts.id} 名单", cbs.SendRoster(ts.id).pack()),
                         Button("签到", cbs.CheckinView(ts.id).pack())))
    ctx.reply("\n".join(lines), buttons=tuple(rows), card_key="tlist")


async def show_mine(ctx: Context) -> None:
    assert ctx.person is not None
    q = (select(Signup).where(Signup.cadre_id == ctx.person.id, Signup.status.in_(st.ACTIVE))
         .join(TrainingSession, TrainingSession.id == Signup.session_id)
         .where(TrainingSession.starts_at > ctx.now - timedelta(days=1)).order_by(Signup.session_id, Signup.id))
    rows = list((await ctx.session.execute(q)).scalars())
    if not rows:
        ctx.reply("您还没有帮人报名培训。发“培训”看正在报名的班。")
        return
    lines: list[str] = ["您报的名："]
    last = None
    for s in rows:
        if s.session_id != last:
            ts = await st.get_session(ctx.session, s.session_id)
            assert ts is not None
            lines.append(f"#{ts.id} {_label(ts, ctx.prefs.tz)}")
            last = s.session_id
        pos = await st.waitlist_position(ctx.session, s) if s.status == "waitlisted" else None
        lines.append(f"  · {s.participant_name or '（占位）'} {_status_zh(s.status, pos)}")
    ctx.reply("\n".join(lines))


# ---------------------------------------------------------------------------------------------- signing up


@dataclass
class Request:
    """What a sign-up message asks for, from the parse plus the counts the parse may miss."""

    course: str | None
    course_norm: str | None
    names: list[str]
    count: int
    villages: list[str | None]
    phones: list[str | None]
    ages: list[int | None] = field(default_factory=list)

    @property
    def placeholders(self) -> int:
        return max(0, self.count - len(self.names))


def _list(v: Any) -> list[Any]:
    return [] if v is None else list(v) if isinstance(v, list) else [v]


def _count_word(s: str) -> int:
    return int(s) if s.isdigit() else _NUM.get(s, 0)


def request_from(text: str, parsed: dict[str, Any]) -> Request:
    parts = parsed.get("participants") or {}
    raw_names = _list(parts.get("names") if isinstance(parts, dict) else None)
    names = [n for n in raw_names if isinstance(n, str) and n]
    count = parts.get("count") if isinstance(parts, dict) else None
    count = count if isinstance(count, int) and count > 0 else len(raw_names)
    m = _COUNT.search(text)
    if m and _LATER.search(text):
        count = max(count, _count_word(m.group(1)))
    count = max(count, len(names))
    vill = parsed.get("village")
    villages = [v if isinstance(v, str) else None for v in vill] if isinstance(vill, list) else [
        vill if isinstance(vill, str) else None] * max(1, len(names))
    ph = parsed.get("phone")
    phones = [p if isinstance(p, str) else None for p in ph] if isinstance(ph, list) else [
        ph if isinstance(ph, str) else None] * max(1, len(names))
    ages: list[int | None] = [None] * len(names)
    if len(names) == 1 and (a := _AGE.search(text)):
        ages = [int(a.group(1))]
    course = parsed.get("course")
    norm = parsed.get("course_norm")
    return Request(course if isinstance(course, str) else None, norm if isinstance(norm, str) else None,
                   names, count, villages, phones, ages)


def _at(xs: Sequence[Any], i: int) -> Any:
    return xs[i] if i < len(xs) else (xs[0] if len(xs) == 1 else None)


async def on_text(ctx: Context, parsed: dict[str, Any]) -> None:
    """Parsed intents training_signup (with `cancelled`: a substitution) and training_cancel."""
    text = ctx.incoming.text
    if parsed.get("intent") == "training_cancel":
        names = [n for n in _list((parsed.get("participants") or {}).get("names")) if isinstance(n, str)]
        await cancel_by_names(ctx, names, parsed.get("course_norm") or parsed.get("course"))
        return
    cancelled = parsed.get("cancelled") or {}
    old = [n for n in _list(cancelled.get("names") if isinstance(cancelled, dict) else None) if isinstance(n, str)]
    req = request_from(text, parsed)
    if old and req.names:
        await substitute_by_names(ctx, old[0], req.names[0], parsed.get("course_norm") or parsed.get("course"))
        return
    await signup_request(ctx, req)


async def signup_request(ctx: Context, req: Request, *, ts_id: int | None = None) -> None:
    if not req.names and not req.placeholders:
        ctx.reply("请写上参加人的姓名，例如“报名 茶叶加工 郑玉兰 龚小红”；名字还没定可以发“报3个 名字晚点发”。")
        return
    if ts_id is not None:
        ts = await st.get_session(ctx.session, ts_id)
        sessions = [ts] if ts is not None else []
    elif req.course or req.course_norm:
        sessions = await match_sessions(ctx, req.course_norm, req.course)
    else:
        sessions = await _session_from_context(ctx)
    if not sessions:
        await _no_session(ctx, req.course)
        return
    if len(sessions) > 1:
        await _ask_session(ctx, sessions, f"“{req.course or '这个培训'}”有{len(sessions)}期在报名，")
        return
    await do_signup(ctx, sessions[0], req)


async def _session_from_context(ctx: Context) -> list[TrainingSession]:
    """No course named: the session of the card just answered, else the only open one, else all to choose."""
    sid = await _answered_session(ctx, ("tjn", "tph", "tsu"))
    if sid is not None:
        ts = await st.get_session(ctx.session, sid)
        if ts is not None:
            return [ts]
    return await _upcoming(ctx)


async def _answered_session(ctx: Context, prefixes: tuple[str, ...]) -> int | None:
    key = ctx.card_key
    if key is None:
        row = await st.last_card_to(ctx.session, channel=ctx.incoming.channel, chat_id=ctx.chat.chat_id,
                                    since=ctx.now - ANSWER_WINDOW)
        key = row.card_key if row is not None else None
    if key and key.split(":")[0] in prefixes:
        try:
            return int(key.split(":")[1])
        except (IndexError, ValueError):
            return None
    return None


async def do_signup(ctx: Context, ts: TrainingSession, req: Request) -> None:
    """Names fill this sender's held seats in the session first, then take new seats (or the waitlist)."""
    assert ctx.person is not None
    lines = [_label(ts, ctx.prefs.tz)]
    held = await st.placeholders(ctx.session, cadre_id=ctx.person.id, ts_id=ts.id)
    for i, name in enumerate(req.names):
        p = await participant(ctx, name, village=_at(req.villages, i), phone=_at(req.phones, i),
                              age=_at(req.ages, i))
        if held:
            res = await st.substitute(ctx.session, signup_id=held[0].id, participant=p, now=ctx.now)
            if res.signup is not None:
                held.pop(0)
                res.signup.note = None
        else:
            res = await st.sign_up(ctx.session, ts_id=ts.id, participant=p, cadre_id=ctx.person.id, now=ctx.now)
        lines.append(_outcome_line(name, p, res))
    n_hold = 0
    for _ in range(req.placeholders):
        p = await participant(ctx, "", village=_at(req.villages, 0))
        res = await st.sign_up(ctx.session, ts_id=ts.id, participant=p, cadre_id=ctx.person.id, now=ctx.now,
                               placeholder=True)
        if res.outcome != "placeholder":
            lines.append(f"❌ 占位失败：{res.reason}")
            break
        n_hold += 1
    held_now = await st.placeholders(ctx.session, cadre_id=ctx.person.id, ts_id=ts.id)
    if held_now:
        by = f"请在{fmt_when(ts.deadline, ctx.prefs.tz)}前" if ts.deadline else "请在开班前"
        new = f"已占{n_hold}个位，" if n_hold else ""
        lines.append(f"🪑 {new}还有{len(held_now)}个位等名字。{by}直接发名字（如“郑玉兰 龚小红”），过期自动释放。")
        ctx.reply("\n".join(lines), card_key=f"tph:{ts.id}")
    else:
        ctx.reply("\n".join(lines), card_key=f"tsu:{ts.id}")


def _outcome_line(name: str, p: st.Participant, res: st.SignupResult) -> str:
    where = p.village_name or ""
    hh = "，已关联农户" if p.household_id else ""
    if res.outcome == "confirmed":
        return f"✅ {name}（{where}{hh}）报名成功"
    if res.outcome == "waitlisted":
        return f"⏳ {name} 名额已满，排候补第{res.position}位，有人退出会自动补上并通知您"
    if res.outcome == "duplicate" and res.existing is not None:
        return f"ℹ️ {name} 已经报过了，现在是：{_status_zh(res.existing.status, res.position)}"
    if res.outcome in ("ineligible", "quota", "closed"):
        return f"❌ {name} 没报上：{res.reason}"
    return f"❌ {name}：{res.reason or res.outcome}"


# ---------------------------------------------------------------------------------------------- cancel, substitute


async def _own_active(ctx: Context, name: str, course: str | None, statuses: Sequence[str] = st.ACTIVE) -> list[Signup]:
    """This sender's active sign-ups of `name` (organisers: anyone's), narrowed by course when given."""
    assert ctx.person is not None
    cadre = None if _is_organiser(ctx) else ctx.person.id
    rows = [s for s in await st.find_signups(ctx.session, name=name, cadre_id=cadre, statuses=statuses)
            if s.session.starts_at > ctx.now]
    if course and len(rows) > 1:
        names = list({s.session.course.name for s in rows})
        ok = {n for n, sc in match_course(course, names) if sc >= MATCH_MIN}
        rows = [s for s in rows if s.session.course.name in ok] or rows
    return rows


async def cancel_by_names(ctx: Context, names: Sequence[str], course: Any) -> None:
    course = course if isinstance(course, str) else None
    if not names:
        ctx.reply("要取消谁的报名？请写上姓名，例如“苏文斌不去了”。")
        return
    for name in names:
        rows = await _own_active(ctx, name, course)
        if not rows:
            ctx.reply(f"没有找到{name}的有效报名。")
        elif len(rows) > 1:
            btns = tuple((Button(f"取消 {_label(s.session, ctx.prefs.tz)}"[:60], cbs.CancelSignup(s.id).pack()),)
                         for s in rows[:6])
            ctx.reply(f"{name}报了{len(rows)}期，取消哪一期？", buttons=btns)
        else:
            await cancel_one(ctx, rows[0])


async def cancel_one(ctx: Context, row: Signup) -> None:
    ts = row.session
    name = row.participant_name or "占位"
    promoted = await st.cancel_signup(ctx.session, signup_id=row.id, now=ctx.now)
    msg = f"已取消：{name} · {_label(ts, ctx.prefs.tz)}"
    if promoted is not None:
        msg += f"\n候补的{promoted.participant_name}已自动补上。"
        await notify_promoted(ctx.session, promoted, ts, tz=ctx.prefs.tz, now=ctx.now, ctx=ctx)
    ctx.reply(msg)


def _promotion_text(promoted: Signup, ts: TrainingSession, tz: Any) -> str:
    return (f"🎉 好消息：有人退出，候补的{promoted.participant_name}已转为正式报名。\n"
            f"{_label(ts, tz)}，请通知本人准时参加。")


async def notify_promoted(session: AsyncSession, promoted: Signup, ts: TrainingSession, *, tz: Any,
                          now: datetime, ctx: Context | None = None) -> bool:
    """A private message to the cadre who signed the promoted person up (their newest chat)."""
    if promoted.cadre_id is None:
        return False
    ident = await st.chat_identity(session, promoted.cadre_id)
    if ident is None:
        return False
    text = _promotion_text(promoted, ts, tz)
    if ctx is not None:
        ctx.send_to(ChatRef(ident.channel, ident.chat_id), text, private=True)
    else:
        await send_reply(session, Reply(text, private=True), chat=ChatRef(ident.channel, ident.chat_id), now=now)
    return True


def _strip_kin(s: str) -> str:
    return _KIN.sub("", s, count=1)


async def substitute_by_names(ctx: Context, old: str, new: str, course: Any) -> None:
    course = course if isinstance(course, str) else None
    rows = await _own_active(ctx, old, course)
    if not rows:
        ctx.reply(f"没有找到{old}的有效报名，无法换人。要给{new}报名请直接发“报名 培训名 {new}”。")
        return
    if len(rows) > 1:
        ctx.reply(f"{old}报了{len(rows)}期，请写上是哪个培训，例如“电工 把{old}换成{new}”。")
        return
    row = rows[0]
    p = await participant(ctx, new, village=row.village_name)
    res = await st.substitute(ctx.session, signup_id=row.id, participant=p, now=ctx.now)
    if res.signup is None:
        why = (f"{new}已经报过了（{_status_zh(res.existing.status)}）" if res.existing is not None
               else res.reason or "")
        ctx.reply(f"没换成：{why}。{old}的报名保留不变。")
        return
    ctx.reply(f"已换人：{old} → {new}（{_status_zh(row.status)}，名额保留）\n{_label(row.session, ctx.prefs.tz)}")


# ---------------------------------------------------------------------------------------------- before the parser


def claims_outright(text: str, now: datetime) -> bool:
    """A check-in code ("签到 123456 …") or a training notice: never a visit, whatever else it mentions."""
    if _CHECKIN.match(text):
        return True
    a = parse_announcement(text, now)
    return a is not None and bool(a.course_norm or a.course)


async def pending_reply(ctx: Context, text: str) -> bool:
    """Messages only this module understands, caught before free-text parsing: check-in codes, notices,
    names for held seats, and cancellations or substitutions of people this sender has signed up."""
    if ctx.person is None:
        return False
    m = _CHECKIN.match(text)
    if m:
        await checkin_by_code(ctx, m.group(1), _names_in(m.group(2)))
        return True
    if await _maybe_announcement(ctx, text):
        return True
    if await _maybe_cancel_or_swap(ctx, text):
        return True
    if await _maybe_names(ctx, text):
        return True
    if _COUNT.search(text) and _LATER.search(text):
        parsed = parse(text, ctx.now, await get_registry(ctx.session))
        if parsed.get("intent") in ("training_signup", "training_cancel"):
            return False  # the parser saw it; on_text handles it with the counts merged in
        await signup_request(ctx, request_from(text, parsed))
        return True
    return False


def _names_in(s: str) -> list[str]:
    s = _NAMES_PREFIX.sub("", s.strip())
    toks = [t for t in _SPLIT.split(s) if t]
    return toks if toks and all(re.fullmatch(_HAN_NAME, t) for t in toks) else []


async def _maybe_names(ctx: Context, text: str) -> bool:
    """A bare list of names answers the sign-up card just sent, or fills this sender's held seats."""
    toks = [t for t in _SPLIT.split(_NAMES_PREFIX.sub("", text.strip())) if t]
    village = None
    if toks and re.fullmatch(r"[\u4e00-\u9fff]{1,6}(?:村|组|寨|社区)", toks[0]):
        village = toks.pop(0)
    names = toks if toks and len(toks) <= 30 and all(re.fullmatch(_HAN_NAME, t) for t in toks) else []
    if not names or any(n.endswith(("培训", "村", "组")) for n in names):
        return False
    assert ctx.person is not None
    sid = await _answered_session(ctx, ("tjn", "tph"))
    if sid is None:
        held = await st.placeholders(ctx.session, cadre_id=ctx.person.id)
        if not held:
            return False
        sid = held[-1].session_id
    ts = await st.get_session(ctx.session, sid)
    if ts is None:
        return False
    req = Request(None, None, names, len(names), [village], [None])
    await do_signup(ctx, ts, req)
    return True


async def _maybe_cancel_or_swap(ctx: Context, text: str) -> bool:
    """Only when the text names someone this sender has an active, not yet started sign-up for: the
    parser would read "苏文斌不去了" as a visit, and "把X换成Y" as nothing. A bare 取消 counts only next
    to a training word, so "张桂英家的低保取消了" stays a visit."""
    cancel_words = _CANCEL_WORDS if re.search(r"培训|报名|名额|课|班", text) else _CANCEL_WORDS.replace("|取消", "")
    if "换成" not in text and not re.search(cancel_words, text):
        return False
    assert ctx.person is not None
    cadre = None if _is_organiser(ctx) else ctx.person.id
    q = (select(Signup.participant_name).join(TrainingSession, TrainingSession.id == Signup.session_id)
         .where(Signup.status.in_(st.ACTIVE), Signup.participant_name.is_not(None),
                TrainingSession.starts_at > ctx.now))
    if cadre is not None:
        q = q.where(Signup.cadre_id == cadre)
    known = sorted({n for n in (await ctx.session.execute(q.distinct())).scalars() if n and n in text},
                   key=len, reverse=True)
    if not known:
        return False
    old = known[0]
    course = parse(text, ctx.now).get("course") if len(text) > len(old) + 6 else None
    swap = re.search(re.escape(old) + r".{0,8}?换成\s*([\u4e00-\u9fff]{2,10})", text)
    if swap:
        new = _strip_kin(swap.group(1))[:4]
        if re.fullmatch(_HAN_NAME, new) and new != old:
            await substitute_by_names(ctx, old, new, course)
            return True
        return False
    if re.search(re.escape(old) + r".{0,14}?" + cancel_words, text):
        await cancel_by_names(ctx, [old], course)
        return True
    return False


# ---------------------------------------------------------------------------------------------- notices


# Notice terms that name a household type; anything else (妇女, 青年…) is shown but not enforced.
_HTYPE_TERMS = {"脱贫户": "脱贫户", "脱贫人口": "脱贫户", "脱贫劳动力": "脱贫户", "监测户": "监测户", "监测对象": "监测户",
                "边缘户": "监测户", "低保户": "低保户"}


def _at_time(day: str, hhmm: str | None, tz: Any, default: time) -> datetime:
    t = time.fromisoformat(hhmm) if hhmm else default
    return datetime.combine(date.fromisoformat(day), t, tzinfo=tz)


async def _maybe_announcement(ctx: Context, text: str) -> bool:
    a = parse_announcement(text, ctx.now)
    course = (a.course_norm or a.course) if a is not None else None
    if a is None or not course:
        return False
    if not _is_organiser(ctx):
        ctx.inbox_state = "notice"
        ctx.reply(f"这看起来是一条培训通知（{course}），不是报名。\n"
                  "通知由培训组织者发布；要给人报名请发“报名 培训名 姓名”，或发“培训”看正在报名的班。")
        return True
    await draft_from_announcement(ctx, a, text, course)
    return True


async def draft_from_announcement(ctx: Context, a: Announcement, text: str, course: str) -> None:
    """One draft session per dated session in the notice; the organiser's button publishes them all."""
    tz = ctx.prefs.tz
    if not a.sessions:
        ctx.reply("这条通知里没看出开班日期。请补上日期后重发，例如“12月8日开班”。")
        return
    el: dict[str, Any] = {}
    types = list(dict.fromkeys(_HTYPE_TERMS[t] for t in a.eligibility if t in _HTYPE_TERMS))
    if types:
        el = {"htypes": types, "priority": any("优先" in t for t in a.eligibility)}
    if a.age_range:
        el["age"] = [a.age_range[0], a.age_range[1]]
    deadline = _at_time(a.deadline, None, tz, time(23, 59)) if a.deadline else None
    contact = " ".join(x for x in (a.contact_name, a.contact_phone) if x) or None
    assert ctx.person is not None
    drafts = []
    for sess in a.sessions[:6]:
        start = _at_time(sess.start, sess.times[0] if sess.times else None, tz, time(9, 0))
        end = _at_time(sess.end, sess.times[-1] if len(sess.times) > 1 else None, tz, time(17, 0)) \
            if sess.end and sess.end != sess.start else None
        drafts.append(await st.create_session(
            ctx.session, course_name=course, starts_at=start, ends_at=end, now=ctx.now, place=(a.place or "")[:128],
            capacity=a.quota_total or 50, village_quota=a.quota_per_village, deadline=deadline, eligibility=el,
            organiser_id=ctx.person.id, contact=contact[:64] if contact else None, status="draft", notice_text=text))
    first = drafts[0]
    more = f"（共{len(drafts)}期，开班：" + "、".join(fmt_when(d.starts_at, tz) for d in drafts) + "）\n" \
        if len(drafts) > 1 else ""
    ctx.reply("请核对这条培训通知：\n" + more + session_card(first, tz, capacity_stated=a.quota_total is not None),
              buttons=((Button("✅ 确认发布", cbs.ConfirmNotice(first.id, "ok").pack()),
                        Button("不要了", cbs.ConfirmNotice(first.id, "no").pack())),),
              card_key=f"tann:{first.id}")


def session_card(ts: TrainingSession, tz: Any, *, capacity_stated: bool = True) -> str:
    el = ts.eligibility or {}
    lines = [f"课程：{ts.course.name}", f"开班：{fmt_when(ts.starts_at, tz)}"
             + (f" 至 {fmt_when(ts.ends_at, tz)}" if ts.ends_at else "")]
    if ts.place:
        lines.append(f"地点：{ts.place}")
    cap = f"{ts.capacity}人" + ("" if capacity_stated else f"（通知没写，默认；可发“培训 名额 {ts.id} 人数”修改）")
    lines.append(f"名额：{cap}" + (f"，每村限{ts.village_quota}人" if ts.village_quota else ""))
    if el.get("htypes"):
        lines.append(f"对象：{'/'.join(el['htypes'])}{'优先' if el.get('priority') else '（只招这些）'}")
    if el.get("age"):
        lines.append(f"年龄：{el['age'][0]}–{el['age'][1]}岁")
    if ts.deadline:
        lines.append(f"报名截止：{fmt_when(ts.deadline, tz)}")
    if ts.contact:
        lines.append(f"联系人：{ts.contact}")
    return "\n".join(lines)


async def _confirm_announcement(ctx: Context, ts_id: int, ok: bool) -> None:
    ts = await st.get_session(ctx.session, ts_id)
    if ts is None or not _is_organiser(ctx):
        ctx.reply("这个按钮已经失效了。")
        return
    if ts.status != "draft":
        ctx.reply("这条通知已经处理过了。")
        return
    q = select(TrainingSession).where(TrainingSession.status == "draft",
                                      TrainingSession.organiser_id == ts.organiser_id,
                                      TrainingSession.notice_text == ts.notice_text,
                                      TrainingSession.created_at == ts.created_at)
    siblings = list((await ctx.session.execute(q)).scalars())
    for x in siblings:
        x.status = "open" if ok else "cancelled"
    if not ok:
        ctx.reply("好的，这条通知不发布。", card_key=f"tann:{ts.id}", edit_card=True)
        return
    codes = "、".join(f"#{x.id} {x.checkin_code}" for x in siblings)
    ctx.reply(f"✅ 已发布 {'、'.join(f'#{x.id}' for x in siblings)}\n" + session_card(ts, ctx.prefs.tz)
              + f"\n签到码：{codes}（开班当天公布）\n帮扶干部现在可以发“报名 {ts.course.name} 姓名”报名。",
              card_key=f"tann:{ts.id}", edit_card=True)


async def reopen(ctx: Context, ts_id: int, rest: Sequence[str]) -> None:
    until = None
    if rest:
        try:
            d = date.fromisoformat(rest[0])
            until = datetime.combine(d, time(23, 59), tzinfo=ctx.prefs.tz)
        except ValueError:
            ctx.reply("新的截止日期请写成 2026-12-01 这样。")
            return
    ts = await st.set_open(ctx.session, ts_id=ts_id, open_=True, until=until)
    dl = f"，{fmt_when(until, ctx.prefs.tz)}截止" if until else "，开班前都可报名"
    ctx.reply(f"已重新开放报名：#{ts.id} {_label(ts, ctx.prefs.tz)}{dl}。")


async def set_capacity(ctx: Context, ts_id: int, rest: Sequence[str]) -> None:
    ts = await st.lock_session(ctx.session, ts_id)
    if ts is None or not rest or not rest[0].isdigit() or int(rest[0]) < 1:
        ctx.reply(f"请这样发：培训 名额 {ts_id} 40")
        return
    ts.capacity = int(rest[0])
    promoted = []
    while ts.seats_taken < ts.capacity:
        p = await st.promote_waitlisted(ctx.session, ts, ctx.now)
        if p is None:
            break
        promoted.append(p)
        await notify_promoted(ctx.session, p, ts, tz=ctx.prefs.tz, now=ctx.now, ctx=ctx)
    extra = f"，{len(promoted)}位候补已转正" if promoted else ""
    ctx.reply(f"#{ts.id} 名额改为{ts.capacity}人{extra}。")


# ---------------------------------------------------------------------------------------------- attendance


async def checkin_by_code(ctx: Context, code: str, names: list[str]) -> None:
    ts = await st.session_by_code(ctx.session, code=code, now=ctx.now)
    if ts is None:
        ctx.reply("签到码不对，或这期培训不在今天。请向组织者核对签到码。")
        return
    if not names:
        ctx.reply(f"请在签到码后面写上姓名，例如“签到 {code} 苏文斌 郑玉兰”。")
        return
    lines = [f"签到 · {_label(ts, ctx.prefs.tz)}"]
    for name in names:
        q = select(Signup).where(Signup.session_id == ts.id, Signup.participant_name == name,
                                 Signup.status.in_(("confirmed", "attended", "no_show"))).limit(1)
        row = (await ctx.session.execute(q)).scalar_one_or_none()
        if row is None:
            lines.append(f"❌ {name}：名单上没有（候补或未报名的不能签到）")
            continue
        await st.mark_attendance(ctx.session, signup_id=row.id, attended=True, now=ctx.now)
        lines.append(f"✅ {name} 已签到")
    ctx.reply("\n".join(lines))


async def checkin_view(ctx: Context, ts_id: int, *, edit: bool = False) -> None:
    ts = await st.get_session(ctx.session, ts_id)
    if ts is None:
        ctx.reply("没有这一期培训。")
        return
    rows = await st.roster(ctx.session, ts_id=ts_id, statuses=("confirmed", "attended", "no_show"))
    came = sum(r.status == "attended" for r in rows)
    mark = {"attended": "✅", "no_show": "❌", "confirmed": "▫️"}
    text = (f"签到 #{ts.id} {_label(ts, ctx.prefs.tz)}\n签到码：{ts.checkin_code}（干部可发“签到 {ts.checkin_code} 姓名”）\n"
            f"已到 {came}/{len(rows)}。点姓名标记到场，点“缺”标记缺席。")
    btns: list[tuple[Button, ...]] = [
        (Button(f"{mark.get(r.status, '')}{r.name}（{r.village}）"[:40], cbs.MarkAttendance(r.signup_id, "a").pack()),
         Button("缺", cbs.MarkAttendance(r.signup_id, "n").pack())) for r in rows[:40]]
    btns.append((Button("结束签到（未到的记缺席）", cbs.CloseCheckin(ts.id).pack()),))
    ctx.reply(text, buttons=tuple(btns), card_key=f"tck:{ts.id}", edit_card=edit)


async def _mark(ctx: Context, signup_id: int, attended: bool) -> None:
    row = await ctx.session.get(Signup, signup_id)
    if row is None:
        ctx.reply("这个按钮已经失效了。")
        return
    try:
        await st.mark_attendance(ctx.session, signup_id=signup_id, attended=attended, now=ctx.now)
    except LookupError:
        ctx.reply("此人不在正式名单上。")
        return
    await checkin_view(ctx, row.session_id, edit=True)


async def show_no_shows(ctx: Context) -> None:
    rows = await st.no_show_counts(ctx.session)
    if not rows:
        ctx.reply("还没有缺席记录。")
        return
    lines = ["缺席次数（多的在前）："] + [f"· {n}（{v}）{c}次" for n, v, c in rows[:30]]
    ctx.reply("\n".join(lines))


# ---------------------------------------------------------------------------------------------- rosters, stats


async def roster_xlsx(session: AsyncSession, ts_id: int, *, full_phones: bool) -> tuple[str, bytes, int]:
    """(file name, xlsx bytes, rows): 姓名, 村, 户, 电话, 状态. Phones masked unless `full_phones`;
    ID numbers are never read."""
    ts = await st.get_session(session, ts_id)
    if ts is None:
        raise LookupError(f"no training session {ts_id}")
    rows = await st.roster(session, ts_id=ts_id)
    pos = 0
    out = []
    for r in rows:
        pos += r.status == "waitlisted"
        phone = (r.phone or "") if full_phones else mask_phone(r.phone)
        out.append([r.name, r.village, r.household, phone, _status_zh(r.status, pos or None)])
    sheet = Sheet(f"{ts.course.name}"[:31], ["姓名", "村", "户", "电话", "状态"], out)
    d = ts.starts_at
    return f"名单_{ts.course.name}_{d:%m%d}_#{ts.id}.xlsx", sheets_to_xlsx([sheet]), len(out)


async def send_roster(ctx: Context, ts_id: int) -> None:
    assert ctx.person is not None
    try:
        name, data, _n = await roster_xlsx(ctx.session, ts_id, full_phones=ctx.person.role == "organiser")
    except LookupError:
        ctx.reply("没有这一期培训。")
        return
    ts = await st.get_session(ctx.session, ts_id)
    assert ts is not None
    c = await st.seat_counts(ctx.session, ts=ts)
    ctx.reply(f"#{ts_id} {_label(ts, ctx.prefs.tz)} 名单：正式{c.taken}/{c.capacity}，候补{c.waitlisted}",
              document=Document(name, data, XLSX_MIME), private=True)


def _period(args: str, now: datetime, tz: Any) -> tuple[datetime | None, datetime | None, str]:
    a = args.strip()
    local = now.astimezone(tz)
    if a in ("全部", "all"):
        return None, None, "全部"
    if a in ("本月", "month"):
        start = datetime(local.year, local.month, 1, tzinfo=tz)
        end = datetime(local.year + (local.month == 12), local.month % 12 + 1, 1, tzinfo=tz)
        return start, end, f"{local.year}年{local.month}月"
    m = re.fullmatch(r"(\d{4})(?:[-年](\d{1,2})月?)?", a)
    year = int(m.group(1)) if m else local.year
    if m and m.group(2):
        mo = int(m.group(2))
        return (datetime(year, mo, 1, tzinfo=tz), datetime(year + (mo == 12), mo % 12 + 1, 1, tzinfo=tz),
                f"{year}年{mo}月")
    return datetime(year, 1, 1, tzinfo=tz), datetime(year + 1, 1, 1, tzinfo=tz), f"{year}年"


async def show_stats(ctx: Context, args: str) -> None:
    since, until, label = _period(args, ctx.now, ctx.prefs.tz)
    by_course = await st.stats(ctx.session, since=since, until=until, by="course")
    if not by_course:
        ctx.reply(f"培训统计（{label}）：还没有培训。")
        return
    lines = [f"培训统计（{label}）", "按课程：期数 / 报名 / 参加人次"]
    lines += [f"· {r.key}：{r.sessions}期 / {r.signups}人 / {r.attended}人次" for r in by_course]
    t = (sum(r.sessions for r in by_course), sum(r.signups for r in by_course), sum(r.attended for r in by_course))
    lines.append(f"合计：{t[0]}期 / {t[1]}人 / {t[2]}人次")
    by_village = await st.stats(ctx.session, since=since, until=until, by="village")
    if by_village:
        lines.append("按村：报名 / 参加人次")
        lines += [f"· {r.key}：{r.signups}人 / {r.attended}人次" for r in by_village[:20]]
    ctx.reply("\n".join(lines))


# ---------------------------------------------------------------------------------------------- buttons


async def on_callback(ctx: Context, cb: cbs.Callback) -> None:
    """The training buttons (TRAINING_CALLBACKS); the organiser's own ones are refused to others."""
    match cb:
        case cbs.ConfirmNotice(session_id, answer):
            await _confirm_announcement(ctx, session_id, answer == "ok")
        case cbs.JoinSession(session_id):
            ts = await st.get_session(ctx.session, session_id)
            why = st.signup_open(ts, ctx.now) if ts is not None else "没有这一期培训"
            if ts is None or why is not None:
                ctx.reply(f"不能报名：{why}。")
                return
            ctx.reply(f"报名 {_label(ts, ctx.prefs.tz)}\n请直接发参加人姓名，多人用空格隔开，例如：\n“郑玉兰 龚小红”或“红岩村 苏文斌”\n"
                      "名字还没定可以发“报3个 名字晚点发”。", card_key=f"tjn:{ts.id}")
        case cbs.PickSession(inbox_id, session_id):
            await _picked_session(ctx, inbox_id, session_id)
        case cbs.CancelSignup(signup_id):
            row = await ctx.session.get(Signup, signup_id)
            assert ctx.person is not None
            if row is None or (row.cadre_id != ctx.person.id and not _is_organiser(ctx)):
                raise ValueError("not yours")
            ts = await st.get_session(ctx.session, row.session_id)
            assert ts is not None
            row.session = ts
            if row.status not in st.ACTIVE:
                ctx.reply("这条报名已经取消了。")
                return
            await cancel_one(ctx, row)
        case _ if isinstance(cb, _ORGANISER_CALLBACKS):
            if not _is_organiser(ctx):
                ctx.reply("这个操作只有培训组织者可以用。")
                return
            await _organiser_button(ctx, cb)
        case _:
            raise ValueError(cb)


async def _organiser_button(ctx: Context, cb: cbs.Callback) -> None:
    match cb:
        case cbs.CheckinView(session_id):
            await checkin_view(ctx, session_id)
        case cbs.MarkAttendance(signup_id, mark):
            await _mark(ctx, signup_id, mark == "a")
        case cbs.CloseCheckin(session_id):
            n = await st.close_checkin(ctx.session, ts_id=session_id, now=ctx.now)
            await checkin_view(ctx, session_id, edit=True)
            ctx.reply(f"签到结束，{n}人记为缺席。")
        case cbs.SendRoster(session_id):
            await send_roster(ctx, session_id)
        case cbs.ReopenSession(session_id):
            await reopen(ctx, session_id, [])


async def _picked_session(ctx: Context, inbox_id: int, ts_id: int) -> None:
    """The answer to "which session?": the original message is read back from the inbox and redone."""
    row = await ctx.session.get(InboxMessage, inbox_id)
    if row is None or row.sender_id != ctx.incoming.sender_id or row.channel != ctx.incoming.channel:
        raise ValueError("not this sender's message")
    text = row.text or ""
    parsed = parse(text, ctx.now, await get_registry(ctx.session))
    await signup_request(ctx, request_from(text, parsed), ts_id=ts_id)


# ---------------------------------------------------------------------------------------------- the tick


async def due_training_reminders(session: AsyncSession, *, now: datetime, prefs: Prefs) -> int:
    """Writes due reminder messages to the outbox; returns how many. Safe to run every minute from any
    number of processes: each (kind, session, cadre) is claimed once in the send ledger.

    · the day before and N hours before (prefs.training_hours_before) to cadres with enrolled people;
      when the tick was late, only the nearest reminder is sent;
    · a day before the deadline, to cadres still holding seats without names;
    · at the deadline, unnamed seats are freed and promoted people's cadres told.
    """
    sent = 0
    tz = prefs.tz
    for p in await st.release_expired_placeholders(session, now=now):
        ts = await st.get_session(session, p.session_id)
        if ts is not None and await notify_promoted(session, p, ts, tz=tz, now=now):
            sent += 1
    hours = sorted({h for h in prefs.training_hours_before if h > 0}, reverse=True)
    for i, h in enumerate(hours):
        nearer = hours[i + 1] if i + 1 < len(hours) else 0
        targets = await st.reminder_targets(session, now=now, window_start=now + timedelta(hours=nearer),
                                            window_end=now + timedelta(hours=h))
        for t in targets:
            if await _send_once(session, kind=f"training_reminder_{h}h", period=str(t.ts.id),
                                person_id=t.cadre_id, now=now, text=_reminder_text(t, now, tz), prefs=prefs):
                sent += 1
    for ts, cadre_id, n in await st.placeholder_holders(session, now=now, before=timedelta(hours=24)):
        assert ts.deadline is not None
        text = (f"📝 {_label(ts, tz)}\n您还有{n}个占位没填名字，{fmt_when(ts.deadline, tz)}截止，过期自动释放。\n"
                "直接回复这条消息发名字，例如“郑玉兰 龚小红”。")
        if await _send_once(session, kind="training_names", period=str(ts.id), person_id=cadre_id, now=now,
                            text=text, card_key=f"tph:{ts.id}", prefs=prefs):
            sent += 1
    return sent


def _reminder_text(t: st.ReminderTarget, now: datetime, tz: Any) -> str:
    start = t.ts.starts_at.astimezone(tz)
    day = "今天" if start.date() == now.astimezone(tz).date() else (
        "明天" if start.date() == now.astimezone(tz).date() + timedelta(days=1) else f"{start.month}月{start.day}日")
    who = "、".join(t.names[:10]) + (f"等{len(t.names)}人" if len(t.names) > 10 else f"（共{len(t.names)}人）")
    lines = [f"⏰ 培训提醒：{day} {start:%H:%M} {t.ts.course.name}" + (f"，地点：{t.ts.place}" if t.ts.place else "")]
    if t.names:
        lines.append(f"您报名的：{who}，请提醒他们准时参加。")
    if t.placeholders:
        lines.append(f"还有{t.placeholders}个占位没填名字，请尽快发名字。")
    return "\n".join(lines)


async def _send_once(session: AsyncSession, *, kind: str, period: str, person_id: int, now: datetime, text: str,
                     card_key: str | None = None, prefs: Prefs | None = None) -> bool:
    ident = await st.chat_identity(session, person_id)
    if ident is None:
        return False
    claim = await ledger_claim(session, kind=kind, period=period, recipient=str(person_id))
    if claim is None:
        return False
    not_before = None
    if prefs is not None:
        # Private reminders wait out the person's quiet hours like the morning reminders do.
        person = await session.get(Person, person_id)
        not_before = hold_for_quiet(now, prefs, person.quiet_start if person else None,
                                    person.quiet_end if person else None)
    row_id = await send_reply(session, Reply(text, card_key=card_key, private=True),
                              chat=ChatRef(ident.channel, ident.chat_id), now=now, not_before=not_before)
    await ledger_set_outbox(session, {claim: row_id})
    return True


