"""Visit-due reminders: each working-day morning, one private message per cadre listing their households
due or overdue, with 明天再提醒 and 已电话联系 buttons. Also owns quiet hours and China's working-day
calendar."""

from __future__ import annotations

import logging
from datetime import date, datetime, time, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.callbacks import ReminderAction
from handlers.context import Context, Prefs
from handlers.format import WEEKDAYS, fmt_date
from handlers.outgoing import Outgoing, send_many
from handlers.types import Button, ChatRef, Reply
from storage.accounts import in_scope
from storage.messages import ledger_claim_many, ledger_set_outbox
from storage.models import Household, OrgUnit, Person
from storage.reports import CadreDue, DueHousehold, add_phone_visit, cadence_for, due_for_cadres

log = logging.getLogger("bangfu.reminders")

LEDGER_KIND = "visit_due"
MAX_LISTED = 8  # households written out in one message; a phone screen holds about this many
MAX_CALL_BUTTONS = 6


# ------------------------------------------------------------------------------ calendar and quiet hours


def is_workday(d: date) -> bool:
    """China's working days: public holidays off, 调休 make-up weekend days on."""
    try:
        import chinese_calendar

        return bool(chinese_calendar.is_workday(d))
    except NotImplementedError:
        # chinese_calendar only knows years the State Council has published; past that, Mon–Fri.
        log.warning("no holiday data for %s; treating Monday–Friday as working days", d.year)
        return d.weekday() < 5


def _hm(s: str) -> time:
    h, m = s.split(":")
    return time(int(h), int(m))


def quiet_until(now: datetime, start: str, end: str) -> datetime | None:
    """If `now` (aware, local) falls in the quiet hours [start, end), when they end; else None.
    start == end means quiet hours are off. The window may wrap past midnight (21:00–08:00)."""
    s, e = _hm(start), _hm(end)
    if s == e:
        return None
    t = now.timetz().replace(tzinfo=None)
    today = now.date()
    if s < e:
        inside, end_day = s <= t < e, today
    else:
        inside = t >= s or t < e
        end_day = today if t < e else today + timedelta(days=1)
    if not inside:
        return None
    return datetime.combine(end_day, e, tzinfo=now.tzinfo)


def hold_for_quiet(now: datetime, prefs: Prefs, quiet_start: str | None, quiet_end: str | None) -> datetime | None:
    """`not_before` for a private message to someone with these (possibly unset) quiet hours."""
    return quiet_until(now, quiet_start or prefs.quiet_start, quiet_end or prefs.quiet_end)


# ------------------------------------------------------------------------------ the morning message


def _household_line(i: int, h: DueHousehold, today: date, prefs: Prefs) -> list[str]:
    if h.last_visit is None:
        since = "从未走访"
    else:
        days = (today - h.last_visit).days
        since = f"{days}天未走访"
        if h.due and days >= 2 * cadence_for(h.htype, prefs.cadence_days):
            since += "（已超期）"
    bits = [since] if h.due else []
    if h.open_needs:
        bits.append(f"需求{h.open_needs}条未解决")
    lines = [f"{i}. {h.head_name}（{h.village}·{h.htype}）" + ("，".join(bits) if bits else "")]
    for action, due in h.follow_ups[:2]:
        late = (today - due).days
        when = "今天到期" if late == 0 else f"已逾期{late}天"
        lines.append(f"   ⏰ {action}（{when}）")
    if len(h.follow_ups) > 2:
        lines.append(f"   ⏰ 另有{len(h.follow_ups) - 2}条跟进")
    return lines


def render_reminder(c: CadreDue, today: date, prefs: Prefs) -> Reply:
    due = sum(1 for h in c.households if h.due)
    fus = sum(len(h.follow_ups) for h in c.households)
    head = [f"{c.name}，早上好！{today.month}月{today.day}日（周{WEEKDAYS[today.weekday()]}）"]
    parts = []
    if due:
        parts.append(f"{due}户该走访了")
    if fus:
        parts.append(f"{fus}条跟进到期")
    head.append("今天：" + "，".join(parts) + "。")
    lines = list(head)
    for i, h in enumerate(c.households[:MAX_LISTED], 1):
        lines.extend(_household_line(i, h, today, prefs))
    if len(c.households) > MAX_LISTED:
        lines.append(f"……另有{len(c.households) - MAX_LISTED}户，发“我的农户”查看。")
    lines.append("走访后直接发消息记录；电话联系过的点下面按钮。")
    buttons: list[tuple[Button, ...]] = []
    calls = [Button(f"☎ {h.head_name} 已电话联系", ReminderAction("c", h.household_id).pack())
             for h in c.households[:MAX_CALL_BUTTONS] if h.due]
    for k in range(0, len(calls), 2):
        buttons.append(tuple(calls[k:k + 2]))
    buttons.append((Button("明天再提醒", ReminderAction("s").pack()),))
    return Reply("\n".join(lines), buttons=tuple(buttons), private=True, card_key=f"rm:{today.isoformat()}")


async def morning_reminders(session: AsyncSession, *, now: datetime, prefs: Prefs, day: date | None = None,
                            person_ids: list[int] | None = None) -> int:
    """Write today's reminder rows; returns how many. Safe to call any number of times a day: the
    ledger (visit_due, date, person) lets each cadre get at most one.

    Off days (holidays, weekends that are not 调休 workdays) send only to people who pressed
    明天再提醒 for that day; a snooze into the future silences the days before it."""
    now = now.astimezone(prefs.tz)
    today = day or now.date()
    workday = is_workday(today)
    if not workday:
        snoozed = select(Person.id).where(Person.snooze_until == today, Person.active.is_(True))
        ids = list((await session.execute(snoozed)).scalars())
        if person_ids is not None:
            ids = [i for i in ids if i in set(person_ids)]
        if not ids:
            return 0
        person_ids = ids
    cadres = await due_for_cadres(session, today=today, cadence_days=prefs.cadence_days, person_ids=person_ids)
    cadres = [c for c in cadres if c.chat_id is not None and c.channel is not None
              and (c.snooze_until is None or c.snooze_until <= today)]
    if not cadres:
        return 0
    claimed = await ledger_claim_many(session, kind=LEDGER_KIND, period=today.isoformat(),
                                      recipients=[str(c.person_id) for c in cadres])
    rows, ledger_for = [], {}
    for c in cadres:
        lid = claimed.get(str(c.person_id))
        if lid is None:
            continue
        assert c.channel is not None and c.chat_id is not None
        reply = render_reminder(c, today, prefs)
        hold = hold_for_quiet(now, prefs, c.quiet_start, c.quiet_end)
        rows.append(Outgoing(reply, ChatRef(c.channel, c.chat_id), not_before=hold))
        ledger_for[(c.channel, c.chat_id)] = lid
    new_ids = await send_many(session, rows, now=now)
    await ledger_set_outbox(session, {lid: new_ids[key] for key, lid in ledger_for.items() if key in new_ids})
    return len(rows)


# ------------------------------------------------------------------------------ buttons


async def on_callback(ctx: Context, cb: ReminderAction) -> None:
    """s = 明天再提醒; c = 已电话联系 the household."""
    assert ctx.person is not None
    if cb.action == "s":
        tomorrow = ctx.today + timedelta(days=1)
        ctx.person.snooze_until = tomorrow
        note = "" if is_workday(tomorrow) else "（明天虽不是工作日，也会照常提醒您）"
        ctx.reply(f"好的，{fmt_date(tomorrow)}早上再提醒您{note}。")
        return
    if cb.action == "c":
        hid = cb.household_id
        hh = await ctx.session.get(Household, hid)
        if hh is None or ctx.scope is None or not await in_scope(ctx.session, ctx.scope, hid):
            raise ValueError("household not in scope")
        _, new = await add_phone_visit(ctx.session, person_id=ctx.person.id, household_id=hid, day=ctx.today,
                                       now=ctx.now)
        village = await ctx.session.get(OrgUnit, hh.village_id)
        where = f"（{village.name}）" if village else ""
        if new:
            ctx.reply(f"已记录：{fmt_date(ctx.today, ctx.today)} 电话回访 {hh.head_name}{where}。\n"
                      "有需求或要跟进的事，直接发消息补充即可。")
        else:
            ctx.reply(f"今天已经记过 {hh.head_name}{where} 的电话回访了。")
        return
    raise ValueError(cb)
