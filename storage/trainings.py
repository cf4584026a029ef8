"""Training courses, sessions and sign-ups: capacity and per-village quotas enforced under a row lock,
the waitlist and its promotion, substitutions, placeholders, attendance, rosters, figures and reminders."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from storage.models import (
    ChatIdentity,
    Course,
    Household,
    OrgUnit,
    OutboxMessage,
    Person,
    Signup,
    TrainingSession,
)

# A seat is held by these; attended / no_show keep it (the seat was used, or wasted, but not freed).
SEATED = ("confirmed", "placeholder", "attended", "no_show")
ACTIVE = (*SEATED, "waitlisted")
STATUS_ZH = {"confirmed": "已报名", "placeholder": "占位待补名", "waitlisted": "候补", "cancelled": "已取消",
             "attended": "已签到", "no_show": "缺席"}


# ---------------------------------------------------------------------------------------------- catalogue


async def get_or_create_course(session: AsyncSession, *, name: str, category: str = "就业") -> Course:
    c = (await session.execute(select(Course).where(Course.name == name))).scalar_one_or_none()
    if c is None:
        c = Course(name=name, category=category)
        session.add(c)
        await session.flush()
    return c


async def _new_checkin_code(session: AsyncSession, now: datetime) -> str:
    """Four digits, unique among sessions that have not ended more than a week ago (so codes recycle)."""
    recent = select(TrainingSession.checkin_code).where(TrainingSession.starts_at >= now - timedelta(days=7))
    used = set((await session.execute(recent)).scalars())
    for _ in range(200):
        code = f"{secrets.randbelow(9000) + 1000}"
        if code not in used:
            return code
    return f"{secrets.randbelow(900000) + 100000}"


async def create_session(
    session: AsyncSession, *, course_name: str, starts_at: datetime, now: datetime, place: str = "",
    capacity: int = 50, ends_at: datetime | None = None, village_quota: int | None = None,
    deadline: datetime | None = None, eligibility: dict[str, Any] | None = None,
    organiser_id: int | None = None, contact: str | None = None, status: str = "open",
    notice_text: str | None = None,
) -> TrainingSession:
    """eligibility: {"htypes": [...], "priority": bool (only a preference), "age": [min, max]}."""
    if capacity < 1:
        raise ValueError("capacity must be at least 1")
    course = await get_or_create_course(session, name=course_name)
    ts = TrainingSession(
        course_id=course.id, starts_at=starts_at, ends_at=ends_at, place=place, capacity=capacity,
        village_quota=village_quota, eligibility=eligibility or {}, deadline=deadline, closed=False,
        organiser_id=organiser_id, contact=contact, checkin_code=await _new_checkin_code(session, now),
        seats_taken=0, status=status, notice_text=notice_text, created_at=now,
    )
    session.add(ts)
    await session.flush()
    ts.course = course
    return ts


async def get_session(session: AsyncSession, ts_id: int) -> TrainingSession | None:
    q = select(TrainingSession).where(TrainingSession.id == ts_id).options(selectinload(TrainingSession.course))
    return (await session.execute(q)).scalar_one_or_none()


async def list_sessions(session: AsyncSession, *, now: datetime | None = None, status: str | None = "open",
                        organiser_id: int | None = None) -> list[TrainingSession]:
    """Sessions in start order; with `now`, only those not yet started."""
    q = select(TrainingSession).options(selectinload(TrainingSession.course)).order_by(
        TrainingSession.starts_at, TrainingSession.id)
    if now is not None:
        q = q.where(TrainingSession.starts_at > now)
    if status is not None:
        q = q.where(TrainingSession.status == status)
    if organiser_id is not None:
        q = q.where(TrainingSession.organiser_id == organiser_id)
    return list((await session.execute(q)).scalars())


def signup_open(ts: TrainingSession, now: datetime) -> str | None:
    """None when sign-up is open, else why not (Chinese, for the user)."""
    if ts.status != "open":
        return "这期培训还没有发布" if ts.status == "draft" else "这期培训已取消"
    if ts.starts_at <= now:
        return "这期培训已经开班了"
    if ts.closed:
        return "这期培训已停止报名"
    if ts.deadline is not None and ts.deadline <= now:
        return "报名已截止"
    return None


async def set_open(session: AsyncSession, *, ts_id: int, open_: bool, until: datetime | None = None) -> TrainingSession:
    """Reopen (clearing a passed deadline, or setting a new one) or close sign-up by hand."""
    ts = await get_session(session, ts_id)
    if ts is None:
        raise LookupError(f"no training session {ts_id}")
    if open_:
        ts.closed = False
        ts.deadline = until
        if ts.status == "draft":
            ts.status = "open"
    else:
        ts.closed = True
    return ts


# ---------------------------------------------------------------------------------------------- rules


def eligibility_problem(ts: TrainingSession, *, htype: str | None, age: int | None) -> str | None:
    """Why this participant may not join (Chinese), or None. Preferences (优先) never refuse."""
    el = ts.eligibility or {}
    types = el.get("htypes") or []
    if types and not el.get("priority"):
        if htype is None:
            return f"这期只招{'/'.join(types)}，花名册里没找到此人的农户，无法核实"
        if htype not in types:
            return f"这期只招{'/'.join(types)}，此人是{htype}"
    rng = el.get("age")
    if rng and age is not None and not (int(rng[0]) <= age <= int(rng[1])):
        return f"年龄要求{rng[0]}–{rng[1]}岁，此人{age}岁"
    return None


def age_from_id_number(idn: str | None, on: datetime) -> int | None:
    if not idn or len(idn) != 18 or not idn[6:14].isdigit():
        return None
    y, m, d = int(idn[6:10]), int(idn[10:12]), int(idn[12:14])
    return on.year - y - ((on.month, on.day) < (m, d))


@dataclass
class SignupResult:
    """outcome: confirmed | placeholder | waitlisted | duplicate | quota | closed | ineligible."""

    outcome: str
    signup: Signup | None = None
    position: int | None = None  # on the waitlist, 1-based
    reason: str | None = None
    existing: Signup | None = None


@dataclass
class Participant:
    name: str | None
    village_id: int | None = None
    village_name: str | None = None
    household_id: int | None = None
    htype: str | None = None
    phone: str | None = None
    age: int | None = None
    note: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


async def lock_session(session: AsyncSession, ts_id: int) -> TrainingSession | None:
    """The session row, locked until commit (PostgreSQL FOR UPDATE; SQLite's BEGIN IMMEDIATE already
    serializes writers), re-read so counts taken after this see every committed seat."""
    q = (select(TrainingSession).where(TrainingSession.id == ts_id).with_for_update()
         .options(selectinload(TrainingSession.course)).execution_options(populate_existing=True))
    return (await session.execute(q)).scalar_one_or_none()


def _same_person(ts_id: int, p: Participant) -> Any:
    conds = [Signup.session_id == ts_id, Signup.status.in_(ACTIVE)]
    if p.household_id is not None:
        who = or_(Signup.household_id == p.household_id,
                  (Signup.participant_name == p.name) & (Signup.village_id == p.village_id))
    elif p.village_id is not None:
        who = (Signup.participant_name == p.name) & (Signup.village_id == p.village_id)
    else:
        who = (Signup.participant_name == p.name) & (Signup.village_name == p.village_name)
    return select(Signup).where(*conds, who).limit(1)


async def find_duplicate(session: AsyncSession, *, ts_id: int, p: Participant) -> Signup | None:
    if not p.name:
        return None
    return (await session.execute(_same_person(ts_id, p))).scalar_one_or_none()


async def village_seats(session: AsyncSession, *, ts_id: int, village_id: int | None,
                        village_name: str | None) -> int:
    q = select(func.count()).select_from(Signup).where(Signup.session_id == ts_id, Signup.status.in_(SEATED))
    q = q.where(Signup.village_id == village_id) if village_id is not None else q.where(
        Signup.village_name == village_name)
    return int((await session.execute(q)).scalar_one())


async def _take_seat(session: AsyncSession, ts: TrainingSession) -> bool:
    """The conditional UPDATE: succeeds only while a seat is left, whatever this process believes."""
    res = await session.execute(
        update(TrainingSession).where(TrainingSession.id == ts.id,
                                      TrainingSession.seats_taken < TrainingSession.capacity)
        .values(seats_taken=TrainingSession.seats_taken + 1).execution_options(synchronize_session=False))
    ok = bool(getattr(res, "rowcount", 0))
    if ok:
        ts.seats_taken = (ts.seats_taken or 0) + 1
    return ok


async def _free_seat(session: AsyncSession, ts: TrainingSession) -> None:
    await session.execute(
        update(TrainingSession).where(TrainingSession.id == ts.id, TrainingSession.seats_taken > 0)
        .values(seats_taken=TrainingSession.seats_taken - 1).execution_options(synchronize_session=False))
    ts.seats_taken = max(0, (ts.seats_taken or 0) - 1)


async def waitlist_position(session: AsyncSession, signup: Signup) -> int:
    q = select(func.count()).select_from(Signup).where(
        Signup.session_id == signup.session_id, Signup.status == "waitlisted",
        Signup.wait_position <= (signup.wait_position or 0))
    return int((await session.execute(q)).scalar_one())


async def sign_up(session: AsyncSession, *, ts_id: int, participant: Participant, cadre_id: int | None,
                  now: datetime, placeholder: bool = False, check_deadline: bool = True) -> SignupResult:
    """One participant (or one placeholder seat when `placeholder`). Checks, in order: open, duplicate,
    eligibility, then under the row lock: village quota, capacity (else the waitlist)."""
    ts = await lock_session(session, ts_id)
    if ts is None:
        raise LookupError(f"no training session {ts_id}")
    why = signup_open(ts, now)
    if why is not None and (check_deadline or ts.status != "open"):
        return SignupResult("closed", reason=why)
    p = participant
    if not placeholder:
        dup = await find_duplicate(session, ts_id=ts.id, p=p)
        if dup is not None:
            pos = await waitlist_position(session, dup) if dup.status == "waitlisted" else None
            return SignupResult("duplicate", existing=dup, position=pos)
        bad = eligibility_problem(ts, htype=p.htype, age=p.age)
        if bad is not None:
            return SignupResult("ineligible", reason=bad)
    if ts.village_quota is not None and (p.village_id is not None or p.village_name):
        held = await village_seats(session, ts_id=ts.id, village_id=p.village_id, village_name=p.village_name)
        if held >= ts.village_quota:
            return SignupResult("quota", reason=f"每村限报{ts.village_quota}人，{p.village_name or '本村'}已报满")
    row = Signup(session_id=ts.id, participant_name=None if placeholder else p.name, village_id=p.village_id,
                 village_name=p.village_name, household_id=None if placeholder else p.household_id,
                 phone=None if placeholder else p.phone, age=None if placeholder else p.age, note=p.note,
                 cadre_id=cadre_id, created_at=now, updated_at=now)
    if await _take_seat(session, ts):
        row.status = "placeholder" if placeholder else "confirmed"
        session.add(row)
        await session.flush()
        return SignupResult(row.status, signup=row)
    if placeholder:
        return SignupResult("quota", reason="名额已满，不能再占位")
    last = (await session.execute(select(func.max(Signup.wait_position)).where(
        Signup.session_id == ts.id))).scalar_one()
    row.status, row.wait_position = "waitlisted", int(last or 0) + 1
    session.add(row)
    await session.flush()
    return SignupResult("waitlisted", signup=row, position=await waitlist_position(session, row))


async def promote_waitlisted(session: AsyncSession, ts: TrainingSession, now: datetime) -> Signup | None:
    """The first waitlisted whose village still has quota room takes the freed seat."""
    q = (select(Signup).where(Signup.session_id == ts.id, Signup.status == "waitlisted")
         .order_by(Signup.wait_position, Signup.id))
    for cand in (await session.execute(q)).scalars():
        if ts.village_quota is not None and (cand.village_id is not None or cand.village_name):
            held = await village_seats(session, ts_id=ts.id, village_id=cand.village_id,
                                       village_name=cand.village_name)
            if held >= ts.village_quota:
                continue
        if not await _take_seat(session, ts):
            return None
        cand.status, cand.wait_position, cand.updated_at = "confirmed", None, now
        await session.flush()
        return cand
    return None


async def cancel_signup(session: AsyncSession, *, signup_id: int, now: datetime) -> Signup | None:
    """Cancel; when it held a seat, the first on the waitlist is promoted and returned (to notify their cadre)."""
    row = await session.get(Signup, signup_id)
    if row is None:
        raise LookupError(f"no sign-up {signup_id}")
    ts = await lock_session(session, row.session_id)
    assert ts is not None
    await session.refresh(row)
    if row.status not in ACTIVE:
        return None
    seated = row.status in SEATED
    row.status, row.wait_position, row.updated_at = "cancelled", None, now
    await session.flush()
    if not seated:
        return None
    await _free_seat(session, ts)
    if ts.starts_at <= now:
        return None
    return await promote_waitlisted(session, ts, now)


async def substitute(session: AsyncSession, *, signup_id: int, participant: Participant,
                     now: datetime) -> SignupResult:
    """Y takes X's place: same row, same status and seat; refused if Y is already on the list or ineligible."""
    row = await session.get(Signup, signup_id)
    if row is None:
        raise LookupError(f"no sign-up {signup_id}")
    ts = await lock_session(session, row.session_id)
    assert ts is not None
    dup = await find_duplicate(session, ts_id=ts.id, p=participant)
    if dup is not None and dup.id != row.id:
        return SignupResult("duplicate", existing=dup)
    bad = eligibility_problem(ts, htype=participant.htype, age=participant.age)
    if bad is not None:
        return SignupResult("ineligible", reason=bad)
    old = row.participant_name or "（占位）"
    row.participant_name, row.household_id, row.phone, row.age = (
        participant.name, participant.household_id, participant.phone, participant.age)
    if participant.village_id is not None or participant.village_name:
        row.village_id, row.village_name = participant.village_id, participant.village_name
    row.note = f"替换 {old}"[:128]
    if row.status == "placeholder":
        row.status = "confirmed"
    row.updated_at = now
    await session.flush()
    return SignupResult(row.status, signup=row)


async def placeholders(session: AsyncSession, *, cadre_id: int, ts_id: int | None = None) -> list[Signup]:
    q = select(Signup).where(Signup.cadre_id == cadre_id, Signup.status == "placeholder").order_by(Signup.id)
    if ts_id is not None:
        q = q.where(Signup.session_id == ts_id)
    return list((await session.execute(q)).scalars())


async def find_signups(session: AsyncSession, *, name: str, ts_ids: Sequence[int] | None = None,
                       cadre_id: int | None = None, statuses: Sequence[str] = ACTIVE) -> list[Signup]:
    q = (select(Signup).where(Signup.participant_name == name, Signup.status.in_(statuses))
         .options(selectinload(Signup.session).selectinload(TrainingSession.course)).order_by(Signup.id))
    if ts_ids is not None:
        q = q.where(Signup.session_id.in_(ts_ids))
    if cadre_id is not None:
        q = q.where(Signup.cadre_id == cadre_id)
    return list((await session.execute(q)).scalars())


async def release_expired_placeholders(session: AsyncSession, *, now: datetime) -> list[Signup]:
    """Seats held for names that never came are freed at the deadline; returns the promoted sign-ups."""
    q = (select(Signup.id).join(TrainingSession, TrainingSession.id == Signup.session_id)
         .where(Signup.status == "placeholder", TrainingSession.deadline.is_not(None),
                TrainingSession.deadline <= now))
    promoted = []
    for sid in list((await session.execute(q)).scalars()):
        p = await cancel_signup(session, signup_id=sid, now=now)
        if p is not None:
            promoted.append(p)
    return promoted


# ---------------------------------------------------------------------------------------------- attendance


async def mark_attendance(session: AsyncSession, *, signup_id: int, attended: bool, now: datetime) -> Signup:
    row = await session.get(Signup, signup_id)
    if row is None or row.status not in SEATED or row.status == "placeholder":
        raise LookupError("not a seated participant")
    row.status, row.updated_at = ("attended" if attended else "no_show"), now
    return row


async def session_by_code(session: AsyncSession, *, code: str, now: datetime) -> TrainingSession | None:
    """The session with this check-in code that is on today (started or starting within a day)."""
    q = (select(TrainingSession).where(TrainingSession.checkin_code == code, TrainingSession.status == "open",
                                       TrainingSession.starts_at <= now + timedelta(days=1),
                                       TrainingSession.starts_at >= now - timedelta(days=30))
         .options(selectinload(TrainingSession.course)).order_by(TrainingSession.starts_at.desc()).limit(1))
    return (await session.execute(q)).scalar_one_or_none()


async def close_checkin(session: AsyncSession, *, ts_id: int, now: datetime) -> int:
    """Everyone still only confirmed when the organiser closes the check-in did not come."""
    res = await session.execute(
        update(Signup).where(Signup.session_id == ts_id, Signup.status == "confirmed")
        .values(status="no_show", updated_at=now).execution_options(synchronize_session=False))
    return int(getattr(res, "rowcount", 0) or 0)


async def no_show_counts(session: AsyncSession, *, name: str | None = None,
                         household_id: int | None = None) -> list[tuple[str, str, int]]:
    """(name, village, no-shows) per participant, most first; identified by household when linked."""
    vil = func.coalesce(OrgUnit.name, Signup.village_name, "")
    q = (select(Signup.participant_name, vil, func.count())
         .outerjoin(OrgUnit, OrgUnit.id == Signup.village_id)
         .where(Signup.status == "no_show", Signup.participant_name.is_not(None))
         .group_by(Signup.participant_name, vil).order_by(func.count().desc()))
    if name is not None:
        q = q.where(Signup.participant_name == name)
    if household_id is not None:
        q = q.where(Signup.household_id == household_id)
    return [(str(n), str(v), int(c)) for n, v, c in (await session.execute(q)).all()]


# ---------------------------------------------------------------------------------------------- rosters, figures


@dataclass
class RosterRow:
    signup_id: int
    name: str
    village: str
    household: str
    phone: str | None
    status: str
    cadre: str
    wait_position: int | None


async def roster(session: AsyncSession, *, ts_id: int, statuses: Sequence[str] = ACTIVE) -> list[RosterRow]:
    """Seated first, then the waitlist in order. The ID number is never read here."""
    q = (select(Signup, OrgUnit.name, Household.head_name, Household.htype, Household.phone, Person.name)
         .outerjoin(OrgUnit, OrgUnit.id == Signup.village_id)
         .outerjoin(Household, Household.id == Signup.household_id)
         .outerjoin(Person, Person.id == Signup.cadre_id)
         .where(Signup.session_id == ts_id, Signup.status.in_(statuses)))
    rows = []
    for s, vname, head, htype, hphone, cadre in (await session.execute(q)).all():
        rows.append(RosterRow(
            signup_id=s.id, name=s.participant_name or "（待补名）", village=vname or s.village_name or "",
            household=f"{head}户（{htype}）" if head else "", phone=s.phone or hphone, status=s.status,
            cadre=cadre or "", wait_position=s.wait_position))
    order = {"attended": 0, "confirmed": 0, "no_show": 0, "placeholder": 1, "waitlisted": 2, "cancelled": 3}
    rows.sort(key=lambda r: (order.get(r.status, 9), r.wait_position or 0, r.signup_id))
    return rows


@dataclass
class SeatCounts:
    taken: int
    capacity: int
    waitlisted: int

    @property
    def left(self) -> int:
        return max(0, self.capacity - self.taken)


async def seat_counts(session: AsyncSession, *, ts: TrainingSession) -> SeatCounts:
    w = (await session.execute(select(func.count()).select_from(Signup).where(
        Signup.session_id == ts.id, Signup.status == "waitlisted"))).scalar_one()
    return SeatCounts(taken=ts.seats_taken, capacity=ts.capacity, waitlisted=int(w))


@dataclass
class StatRow:
    key: str
    sessions: int
    signups: int
    attended: int


async def stats(session: AsyncSession, *, since: datetime | None = None, until: datetime | None = None,
                by: str = "course") -> list[StatRow]:
    """Sessions, sign-ups (seated) and attendances (人次) per course or per village, by session start."""
    key: Any = Course.name if by == "course" else func.coalesce(OrgUnit.name, Signup.village_name, "未填村")
    conds = [TrainingSession.status == "open"]
    if since is not None:
        conds.append(TrainingSession.starts_at >= since)
    if until is not None:
        conds.append(TrainingSession.starts_at < until)
    q = (select(key, func.count(func.distinct(TrainingSession.id)),
                func.count(Signup.id).filter(Signup.status.in_(SEATED)),
                func.count(Signup.id).filter(Signup.status == "attended"))
         .select_from(TrainingSession).join(Course, Course.id == TrainingSession.course_id))
    if by == "course":
        q = q.outerjoin(Signup, Signup.session_id == TrainingSession.id)
    else:
        q = q.join(Signup, Signup.session_id == TrainingSession.id).outerjoin(
            OrgUnit, OrgUnit.id == Signup.village_id)
    q = q.where(*conds).group_by(key).order_by(key)
    return [StatRow(str(k), int(a), int(b), int(c)) for k, a, b, c in (await session.execute(q)).all()]


# ---------------------------------------------------------------------------------------------- reaching people


async def chat_identity(session: AsyncSession, person_id: int) -> ChatIdentity | None:
    """The most recently bound chat of a person: where a private notice to them goes."""
    q = (select(ChatIdentity).where(ChatIdentity.person_id == person_id)
         .order_by(ChatIdentity.bound_at.desc(), ChatIdentity.id.desc()).limit(1))
    return (await session.execute(q)).scalar_one_or_none()


async def last_card_to(session: AsyncSession, *, channel: str, chat_id: str,
                       since: datetime) -> OutboxMessage | None:
    """The newest message the bot sent to this chat since `since`: the question a bare answer answers."""
    q = (select(OutboxMessage).where(OutboxMessage.channel == channel, OutboxMessage.chat_id == chat_id,
                                     OutboxMessage.created_at >= since)
         .order_by(OutboxMessage.id.desc()).limit(1))
    return (await session.execute(q)).scalar_one_or_none()


@dataclass
class ReminderTarget:
    ts: TrainingSession
    cadre_id: int
    names: list[str]
    placeholders: int


async def reminder_targets(session: AsyncSession, *, now: datetime, window_start: datetime,
                           window_end: datetime) -> list[ReminderTarget]:
    """Cadres with seated participants in open sessions starting in [window_start, window_end)."""
    q = (select(Signup, TrainingSession).join(TrainingSession, TrainingSession.id == Signup.session_id)
         .where(TrainingSession.status == "open", TrainingSession.starts_at >= window_start,
                TrainingSession.starts_at < window_end, TrainingSession.starts_at > now,
                Signup.status.in_(("confirmed", "placeholder")), Signup.cadre_id.is_not(None))
         .options(selectinload(TrainingSession.course)).order_by(TrainingSession.id, Signup.id))
    out: dict[tuple[int, int], ReminderTarget] = {}
    for s, ts in (await session.execute(q)).all():
        assert s.cadre_id is not None
        t = out.setdefault((ts.id, s.cadre_id), ReminderTarget(ts, s.cadre_id, [], 0))
        if s.status == "placeholder":
            t.placeholders += 1
        else:
            t.names.append(s.participant_name or "")
    return list(out.values())


async def placeholder_holders(session: AsyncSession, *, now: datetime,
                              before: timedelta) -> list[tuple[TrainingSession, int, int]]:
    """(session, cadre, placeholders) for deadlines within `before` from now: time to send the names."""
    q = (select(TrainingSession, Signup.cadre_id, func.count())
         .join(Signup, Signup.session_id == TrainingSession.id)
         .where(Signup.status == "placeholder", Signup.cadre_id.is_not(None), TrainingSession.status == "open",
                TrainingSession.deadline.is_not(None), TrainingSession.deadline > now,
                TrainingSession.deadline <= now + before)
         .group_by(TrainingSession.id, Signup.cadre_id))
    rows = [(ts, int(c or 0), int(n)) for ts, c, n in (await session.execute(q)).all()]
    for ts, _, _ in rows:
        await session.refresh(ts, ["course"])
    return rows
