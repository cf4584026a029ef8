"""The queries behind reminders, weekly digests, bulletins and broadcasts: aggregates in SQL (GROUP BY,
correlated seeks on indexes), never Python loops over visit rows."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Date, and_, case, false, func, literal, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from storage.models import (
    ChatGroup,
    ChatIdentity,
    FollowUp,
    Household,
    Need,
    OrgUnit,
    OutboxMessage,
    Pairing,
    Person,
    SendLedger,
    Signup,
    TrainingSession,
    Visit,
)

# Signup states that hold (or held) a seat: what "sign-ups" counts in a digest.
ENROLLED = ("confirmed", "placeholder", "attended", "no_show")


def live_visit() -> ColumnElement[bool]:
    # `= false` rather than IS: SQLite then seeks the (household_id, deleted, visit_date) index.
    return Visit.deleted == false()


def counted_visit() -> ColumnElement[bool]:
    """A live visit that met the household: what coverage, visit counts and the visit-due clock count.
    Attempts (未遇) stay live, so what they raised is still listed, but they are not visits."""
    return and_(Visit.deleted == false(), Visit.outcome == "met")


def raised_by_live_visit(visit_id: Any) -> ColumnElement[bool]:
    """A need or follow-up whose visit was not undone. NOT IN over the (small, partially indexed) set of
    undone visits instead of a join: joining 1M visits makes PostgreSQL pick a sequential scan."""
    live: ColumnElement[bool] = visit_id.not_in(select(Visit.id).where(Visit.deleted == true()))
    return live


def known_visit(visit_id: Any, before: datetime | None) -> ColumnElement[bool]:
    """A need's or follow-up's visit was live and already logged at `before` (None: now). A digest counts
    what was known at the end of its week, so a visit logged later (even one dated inside the week) never
    changes a past week's figures."""
    if before is None:
        return raised_by_live_visit(visit_id)
    known: ColumnElement[bool] = visit_id.not_in(
        select(Visit.id).where(or_(Visit.deleted == true(), Visit.created_at >= before)))
    return known


def open_at(end_utc: datetime | None) -> ColumnElement[bool]:
    """A need that was open at `end_utc`: still open, or met only afterwards."""
    if end_utc is None:
        return Need.status == "open"
    return or_(Need.status == "open", and_(Need.status == "met", Need.met_at >= end_utc))


def undone_at(end_utc: datetime | None) -> ColumnElement[bool]:
    """A follow-up not yet done at `end_utc`."""
    if end_utc is None:
        return FollowUp.done_at.is_(None)
    return or_(FollowUp.done_at.is_(None), FollowUp.done_at >= end_utc)


def units_under(path: str | None) -> Any:
    """Ids of the units under `path` ("/1/5/"); None means the whole deployment."""
    q = select(OrgUnit.id)
    return q if path is None else q.where(OrgUnit.path.startswith(path))


async def scope_units(session: AsyncSession, unit: OrgUnit | None) -> Any:
    """`units_under(unit)` as a subquery, or None when the unit covers everything (it is the only
    root): the district-wide digest then skips the subtree filter and its per-row lookups."""
    if unit is None:
        return None
    if unit.parent_id is None:
        roots = (await session.execute(select(func.count()).select_from(OrgUnit)
                                       .where(OrgUnit.parent_id.is_(None)))).scalar_one()
        if roots == 1:
            return None
    return units_under(unit.path)


def in_units(col: Any, sub: Any) -> list[ColumnElement[bool]]:
    """Conditions putting a household-id column inside `sub` (none when `sub` is None)."""
    return [] if sub is None else [col.in_(select(Household.id).where(Household.unit_id.in_(sub)))]


def hh_in_units(sub: Any) -> list[ColumnElement[bool]]:
    return [] if sub is None else [Household.unit_id.in_(sub)]


def due_threshold(today: date, cadence_days: Mapping[str, int]) -> ColumnElement[Any]:
    """Per household type, the newest last-visit date that still makes a household due `today`."""
    default = cadence_days.get("default", 60)
    whens = [(Household.htype == t, literal(today - timedelta(days=d), Date))
             for t, d in cadence_days.items() if t != "default"]
    other = literal(today - timedelta(days=default), Date)
    return case(*whens, else_=other) if whens else other


def cadence_for(htype: str, cadence_days: Mapping[str, int]) -> int:
    return cadence_days.get(htype, cadence_days.get("default", 60))


def _logged_before(before: datetime | None) -> list[ColumnElement[bool]]:
    return [] if before is None else [Visit.created_at < before]


def _last_visit(as_of: date, before: datetime | None = None) -> Any:
    return (select(func.max(Visit.visit_date))
            .where(Visit.household_id == Household.id, counted_visit(), Visit.visit_date <= as_of,
                   *_logged_before(before))
            .correlate(Household).scalar_subquery())


def _is_due(as_of: date, cadence_days: Mapping[str, int], before: datetime | None = None) -> ColumnElement[bool]:
    """No live visit since the household's threshold (logged by `before`): one index seek per household."""
    recent = (select(Visit.id).where(Visit.household_id == Household.id, counted_visit(),
                                     Visit.visit_date > due_threshold(as_of, cadence_days),
                                     Visit.visit_date <= as_of, *_logged_before(before))
              .correlate(Household).exists())
    return ~recent


# ------------------------------------------------------------------------------------------ reminders


@dataclass
class DueHousehold:
    household_id: int
    head_name: str
    village: str
    htype: str
    last_visit: date | None
    open_needs: int
    due: bool  # by cadence; False when only a follow-up brings it into the list
    follow_ups: list[tuple[str, date]] = field(default_factory=list)


@dataclass
class CadreDue:
    person_id: int
    name: str
    quiet_start: str | None
    quiet_end: str | None
    snooze_until: date | None
    channel: str | None
    chat_id: str | None
    households: list[DueHousehold]


async def due_for_cadres(session: AsyncSession, *, today: date, cadence_days: Mapping[str, int],
                         person_ids: Sequence[int] | None = None) -> list[CadreDue]:
    """Every active person with at least one paired household that is due for a visit by cadence or
    has a follow-up due today or earlier; one query for households, one for follow-ups, one for people."""
    base = (select(Pairing.person_id, Household.id, Household.head_name, OrgUnit.name, Household.htype,
                   _last_visit(today))
            .join(Household, Household.id == Pairing.household_id)
            .join(OrgUnit, OrgUnit.id == Household.village_id)
            .join(Person, Person.id == Pairing.person_id)
            .where(Person.active.is_(True), Household.status == "active"))
    if person_ids is not None:
        base = base.where(Pairing.person_id.in_(list(person_ids)))

    fu_q = (select(Pairing.person_id, FollowUp.household_id, FollowUp.action, FollowUp.due)
            .join(Pairing, Pairing.household_id == FollowUp.household_id)
            .where(FollowUp.done_at.is_(None), FollowUp.due <= today, raised_by_live_visit(FollowUp.visit_id))
            .order_by(FollowUp.due, FollowUp.id))
    if person_ids is not None:
        fu_q = fu_q.where(Pairing.person_id.in_(list(person_ids)))
    fus: dict[tuple[int, int], list[tuple[str, date]]] = defaultdict(list)
    for pid, hid, action, due in (await session.execute(fu_q)).all():
        if due is not None:
            fus[(pid, hid)].append((action, due))

    per_person: dict[int, list[DueHousehold]] = defaultdict(list)
    for pid, hid, head, village, htype, last in (await session.execute(base)).all():
        # Due by cadence, decided here from the last visit: cheaper than a second index probe in SQL.
        is_due = last is None or (today - last).days >= cadence_for(htype, cadence_days)
        f = fus.get((pid, hid), [])
        if is_due or f:
            per_person[pid].append(DueHousehold(hid, head, village, htype, last, 0, is_due, f))
    if not per_person:
        return []

    # Open needs of the listed households: one GROUP BY on the open-needs index, not a probe per row.
    listed = {h.household_id for hs in per_person.values() for h in hs}
    nq = (select(Need.household_id, func.count(Need.id))
          .where(Need.status == "open", raised_by_live_visit(Need.visit_id)).group_by(Need.household_id))
    if len(listed) <= 500:
        nq = nq.where(Need.household_id.in_(sorted(listed)))
    needs = {hid: int(n) for hid, n in (await session.execute(nq)).all() if hid in listed}
    for hs in per_person.values():
        for h in hs:
            h.open_needs = needs.get(h.household_id, 0)

    newest = (select(ChatIdentity.person_id, func.max(ChatIdentity.id).label("iid"))
              .group_by(ChatIdentity.person_id).subquery())
    pq = (select(Person.id, Person.name, Person.quiet_start, Person.quiet_end, Person.snooze_until,
                 ChatIdentity.channel, ChatIdentity.chat_id)
          .outerjoin(newest, newest.c.person_id == Person.id)
          .outerjoin(ChatIdentity, ChatIdentity.id == newest.c.iid)
          .where(Person.active.is_(True)))
    if len(per_person) <= 500:
        pq = pq.where(Person.id.in_(list(per_person)))
    out: list[CadreDue] = []
    for pid, name, qs, qe, snooze, ch, chat in (await session.execute(pq)).all():
        if pid not in per_person:
            continue
        hs = per_person[pid]
        # Longest without a visit first (never visited at the very top), then by name.
        hs.sort(key=lambda h: (h.last_visit is not None, h.last_visit or date.min, h.head_name))
        out.append(CadreDue(pid, name, qs, qe, snooze, ch, chat, hs))
    out.sort(key=lambda c: c.person_id)
    return out


async def add_phone_visit(session: AsyncSession, *, person_id: int, household_id: int, day: date,
                          now: datetime) -> tuple[Visit, bool]:
    """Record a 电话回访 for `day`; pressing the button twice records one visit (the source key)."""
    key = f"phone:{person_id}:{household_id}:{day.isoformat()}"
    existing = (await session.execute(select(Visit).where(Visit.source_key == key))).scalar_one_or_none()
    if existing is not None:
        return existing, False
    v = Visit(source_key=key, cadre_id=person_id, household_id=household_id, visit_date=day,
              visit_type="电话回访", raw_text="（提醒消息中点了“已电话联系”）", parse={}, created_at=now,
              updated_at=now)
    session.add(v)
    await session.flush()
    return v, True


# ------------------------------------------------------------------------------------------ digests


@dataclass
class UnitRow:
    """One child unit (township or village) of the digest's unit: totals only."""

    name: str
    households: int = 0
    visited: int = 0  # distinct households visited in the week
    due: int = 0


@dataclass
class DigestStats:
    unit_name: str
    week_start: date
    week_end: date
    visits: int = 0
    visits_prev: int = 0
    households_visited: int = 0
    households: int = 0
    households_due: int = 0
    daily: list[int] = field(default_factory=lambda: [0] * 7)
    daily_prev: list[int] = field(default_factory=lambda: [0] * 7)
    by_unit: list[UnitRow] = field(default_factory=list)
    child_level: str = ""
    # category → (raised this week, met this week, open at the week's end)
    needs: dict[str, tuple[int, int, int]] = field(default_factory=dict)
    oldest_needs: list[tuple[date, str, str, str, str]] = field(default_factory=list)  # raised, cat, item, village, head
    overdue_followups: int = 0
    trainings_held: int = 0
    signups: int = 0
    attended: int = 0
    signups_made: int = 0  # sign-ups registered during the week, for any session

    @property
    def needs_open(self) -> int:
        return sum(v[2] for v in self.needs.values())

    @property
    def coverage(self) -> float:
        return 0.0 if not self.households else (self.households - self.households_due) / self.households


async def _child_map(session: AsyncSession, root: OrgUnit) -> tuple[dict[int, int], list[OrgUnit]]:
    """unit id → index of the root's child it lies under; units are few (hundreds), visits are many."""
    children = list((await session.execute(
        select(OrgUnit).where(OrgUnit.parent_id == root.id).order_by(OrgUnit.id))).scalars())
    idx = {c.id: i for i, c in enumerate(children)}
    mapping: dict[int, int] = {}
    for uid, path in (await session.execute(select(OrgUnit.id, OrgUnit.path).where(
            OrgUnit.path.startswith(root.path), OrgUnit.id != root.id))).all():
        rest = path[len(root.path):].split("/", 1)[0]
        if rest.isdigit() and int(rest) in idx:
            mapping[uid] = idx[int(rest)]
    return mapping, children


async def digest_stats(session: AsyncSession, *, unit: OrgUnit, week_start: date,
                       cadence_days: Mapping[str, int], week_start_utc: datetime,
                       week_end_utc: datetime) -> DigestStats:
    """Totals for `unit`'s subtree for the week starting `week_start` (a Monday) and the week before.
    `week_*_utc` bound the week in the deployment's time zone, for timestamp columns.

    Every figure is as of the end of the week (`week_end_utc`): visits and their needs and follow-ups
    logged by then, needs open then, follow-ups undone then. Re-running a past week later gives the same
    figures; only an undo or correction of the week's own records changes them."""
    b = week_end_utc
    logged = _logged_before(b)
    we = week_start + timedelta(days=6)
    prev = week_start - timedelta(days=7)
    st = DigestStats(unit_name=unit.name, week_start=week_start, week_end=we)
    sub = await scope_units(session, unit)
    mapping, children = await _child_map(session, unit)
    st.by_unit = [UnitRow(c.name) for c in children]
    st.child_level = children[0].level if children else ""

    def fold(uid: int) -> UnitRow | None:
        i = mapping.get(uid)
        return None if i is None else st.by_unit[i]

    # Households and those due at the end of the week, per household unit.
    hq = (select(Household.unit_id, func.count(),
                 func.sum(case((_is_due(we, cadence_days, b), 1), else_=0)))
          .where(Household.status == "active", *hh_in_units(sub)).group_by(Household.unit_id))
    for uid, n, due in (await session.execute(hq)).all():
        st.households += int(n)
        st.households_due += int(due or 0)
        if (r := fold(uid)) is not None:
            r.households += int(n)
            r.due += int(due or 0)

    # Visits per day over both weeks.
    vq = (select(Visit.visit_date, func.count())
          .where(counted_visit(), Visit.visit_date >= prev, Visit.visit_date <= we, *logged,
                 *in_units(Visit.household_id, sub))
          .group_by(Visit.visit_date))
    for d, n in (await session.execute(vq)).all():
        d = d if isinstance(d, date) else date.fromisoformat(str(d))
        k = (d - prev).days
        if k >= 7:
            st.daily[k - 7] += int(n)
        else:
            st.daily_prev[k] += int(n)
    st.visits, st.visits_prev = sum(st.daily), sum(st.daily_prev)

    # Distinct households visited this week, per household unit.
    dq = (select(Household.unit_id, func.count(func.distinct(Visit.household_id)))
          .join(Household, Household.id == Visit.household_id)
          .where(counted_visit(), Visit.visit_date >= week_start, Visit.visit_date <= we, *logged, *hh_in_units(sub))
          .group_by(Household.unit_id))
    for uid, n in (await session.execute(dq)).all():
        st.households_visited += int(n)
        if (r := fold(uid)) is not None:
            r.visited += int(n)

    # Needs by category: raised this week, met this week, open at the week's end. Three index-driven
    # queries rather than one OR over every need ever raised.
    def needs_by_cat(*cond: ColumnElement[bool]) -> Any:
        return (select(Need.category, func.count(Need.id))
                .where(known_visit(Need.visit_id, b), *in_units(Need.household_id, sub), *cond)
                .group_by(Need.category))

    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for k, q in enumerate((
            needs_by_cat(Need.raised_on >= week_start, Need.raised_on <= we),
            needs_by_cat(Need.status == "met", Need.met_at >= week_start_utc, Need.met_at < week_end_utc),
            needs_by_cat(open_at(b), Need.raised_on <= we))):
        for cat, n in (await session.execute(q)).all():
            counts[cat][k] = int(n)
    st.needs = {c: (v[0], v[1], v[2]) for c, v in counts.items()}

    village = OrgUnit
    oq = (select(Need.raised_on, Need.category, Need.item, village.name, Household.head_name)
          .join(Visit, Visit.id == Need.visit_id).join(Household, Household.id == Need.household_id)
          .join(village, village.id == Household.village_id)
          .where(open_at(b), Need.raised_on <= we, live_visit(), *logged, *hh_in_units(sub))
          .order_by(Need.raised_on, Need.id).limit(10))
    st.oldest_needs = [tuple(r) for r in (await session.execute(oq)).all()]  # type: ignore[misc]

    fq = (select(func.count(FollowUp.id))
          .where(undone_at(b), FollowUp.due <= we, known_visit(FollowUp.visit_id, b),
                 *in_units(FollowUp.household_id, sub)))
    st.overdue_followups = int((await session.execute(fq)).scalar_one())

    path = None if sub is None else unit.path
    st.trainings_held, st.signups, st.attended = await training_totals(
        session, path=path, start_utc=week_start_utc, end_utc=week_end_utc)
    st.signups_made = await signups_made(session, path=path, start_utc=week_start_utc, end_utc=week_end_utc)
    return st


def _signup_in(path: str | None) -> list[ColumnElement[bool]]:
    if path is None:
        return []
    return [or_(Signup.village_id.in_(units_under(path)),
                Signup.household_id.in_(select(Household.id).where(Household.unit_id.in_(units_under(path)))))]


async def signups_made(session: AsyncSession, *, path: str | None, start_utc: datetime, end_utc: datetime) -> int:
    """Sign-ups registered in [start, end) from the subtree, for any session, whatever became of them
    later (an event count, so a past week's figure never changes)."""
    q = (select(func.count(Signup.id))
         .where(Signup.created_at >= start_utc, Signup.created_at < end_utc, *_signup_in(path)))
    return int((await session.execute(q)).scalar_one() or 0)


async def training_totals(session: AsyncSession, *, path: str | None, start_utc: datetime,
                          end_utc: datetime) -> tuple[int, int, int]:
    """(sessions held with sign-ups from the subtree, sign-ups, attended) for sessions starting in range,
    counting sign-ups registered by the end of the range."""
    q = (select(func.count(func.distinct(Signup.session_id)), func.count(Signup.id),
                func.sum(case((Signup.status == "attended", 1), else_=0)))
         .join(TrainingSession, TrainingSession.id == Signup.session_id)
         .where(TrainingSession.starts_at >= start_utc, TrainingSession.starts_at < end_utc,
                Signup.created_at < end_utc, Signup.status.in_(ENROLLED), *_signup_in(path)))
    held, n, att = (await session.execute(q)).one()
    return int(held or 0), int(n or 0), int(att or 0)


DETAIL_LIMIT = 500


@dataclass
class DigestDetail:
    """Individual-level rows for the supervisor's private XLSX only."""

    due_households: list[tuple[str, str, str, date | None, str]]  # village, head, type, last visit, cadres
    overdue_followups: list[tuple[date | None, str, str, str, str]]  # due, village, head, action, cadres
    open_needs: list[tuple[date, str, str, str, str]]  # raised, village, head, category, item


async def digest_detail(session: AsyncSession, *, unit: OrgUnit, as_of: date,
                        cadence_days: Mapping[str, int], limit: int = DETAIL_LIMIT,
                        known_before: datetime | None = None) -> DigestDetail:
    """The most urgent `limit` rows of each list (oldest first); the full lists are `bangfu export`'s job.
    With `known_before` (the end of a digest's week), each list is as it stood then."""
    sub = await scope_units(session, unit)
    b = known_before
    village = OrgUnit
    dq = (select(Household.id, village.name, Household.head_name, Household.htype, _last_visit(as_of, b))
          .join(village, village.id == Household.village_id)
          .where(Household.status == "active", *hh_in_units(sub), _is_due(as_of, cadence_days, b))
          .order_by(village.name, Household.head_name).limit(limit))
    due_rows = (await session.execute(dq)).all()
    fq = (select(FollowUp.due, village.name, Household.head_name, FollowUp.action, Household.id)
          .join(Visit, Visit.id == FollowUp.visit_id).join(Household, Household.id == FollowUp.household_id)
          .join(village, village.id == Household.village_id)
          .where(undone_at(b), FollowUp.due <= as_of, live_visit(), *_logged_before(b), *hh_in_units(sub))
          .order_by(FollowUp.due, FollowUp.id).limit(limit))
    nq = (select(Need.raised_on, village.name, Household.head_name, Need.category, Need.item)
          .join(Visit, Visit.id == Need.visit_id).join(Household, Household.id == Need.household_id)
          .join(village, village.id == Household.village_id)
          .where(open_at(b), Need.raised_on <= as_of, live_visit(), *_logged_before(b), *hh_in_units(sub))
          .order_by(Need.raised_on, Need.id).limit(limit))
    fu_rows = (await session.execute(fq)).all()
    # Cadre names only for the households listed (a few hundred), not the whole subtree.
    cadres: dict[int, list[str]] = defaultdict(list)
    hids = sorted({r[0] for r in due_rows} | {r[4] for r in fu_rows})
    for i in range(0, len(hids), 500):
        cq = (select(Pairing.household_id, Person.name).join(Person, Person.id == Pairing.person_id)
              .where(Pairing.household_id.in_(hids[i:i + 500])).order_by(Person.name))
        for hid, name in (await session.execute(cq)).all():
            cadres[hid].append(name)

    def who(hid: int) -> str:
        return "、".join(cadres.get(hid, []))

    return DigestDetail(
        due_households=[(v, h, t, last, who(hid)) for hid, v, h, t, last in due_rows],
        overdue_followups=[(d, v, h, a, who(hid)) for d, v, h, a, hid in fu_rows],
        open_needs=[tuple(r) for r in (await session.execute(nq)).all()],  # type: ignore[misc]
    )


@dataclass
class Totals:
    """Bulletin figures: totals only, no names, nothing per village."""

    visits: int
    households_visited: int
    needs_raised: int
    needs_met: int
    followups_overdue: int
    households: int
    households_due: int
    trainings_held: int
    signups: int
    attended: int


async def bulletin_totals(session: AsyncSession, *, path: str | None, start: date, end: date,
                          start_utc: datetime, end_utc: datetime, cadence_days: Mapping[str, int]) -> Totals:
    """Totals over [start, end] (dates, inclusive) for the subtree under `path` (None: everything)."""
    sub = None if path is None else units_under(path)
    vq = (select(func.count(Visit.id), func.count(func.distinct(Visit.household_id)))
          .where(counted_visit(), Visit.visit_date >= start, Visit.visit_date <= end,
                 *in_units(Visit.household_id, sub)))
    visits, hv = (await session.execute(vq)).one()
    raised = and_(Need.raised_on >= start, Need.raised_on <= end)
    met = and_(Need.status == "met", Need.met_at >= start_utc, Need.met_at < end_utc)
    nr = nm = 0
    for cond in (raised, met):
        nq = (select(func.count(Need.id))
              .where(raised_by_live_visit(Need.visit_id), *in_units(Need.household_id, sub), cond))
        n = int((await session.execute(nq)).scalar_one())
        nr, nm = (n, nm) if cond is raised else (nr, n)
    fq = (select(func.count(FollowUp.id))
          .where(FollowUp.done_at.is_(None), FollowUp.due <= end, raised_by_live_visit(FollowUp.visit_id),
                 *in_units(FollowUp.household_id, sub)))
    fo = (await session.execute(fq)).scalar_one()
    hq = (select(func.count(Household.id), func.sum(case((_is_due(end, cadence_days), 1), else_=0)))
          .where(Household.status == "active", *hh_in_units(sub)))
    hn, hd = (await session.execute(hq)).one()
    th, su, at = await training_totals(session, path=path, start_utc=start_utc, end_utc=end_utc)
    return Totals(int(visits or 0), int(hv or 0), int(nr or 0), int(nm or 0), int(fo or 0), int(hn or 0),
                  int(hd or 0), th, su, at)


async def supervisors(session: AsyncSession, *, unit_ids: Sequence[int] | None = None) -> list[Person]:
    q = (select(Person).where(Person.role == "supervisor", Person.active.is_(True), Person.unit_id.is_not(None))
         .order_by(Person.id))
    if unit_ids is not None:
        q = q.where(Person.unit_id.in_(list(unit_ids)))
    return list((await session.execute(q)).scalars())


async def admins_with_chats(session: AsyncSession) -> list[tuple[Person, str, str]]:
    """Every active admin with a bound chat: (person, channel, chat id of their newest identity)."""
    newest = (select(ChatIdentity.person_id, func.max(ChatIdentity.id).label("iid"))
              .group_by(ChatIdentity.person_id).subquery())
    q = (select(Person, ChatIdentity.channel, ChatIdentity.chat_id)
         .join(newest, newest.c.person_id == Person.id).join(ChatIdentity, ChatIdentity.id == newest.c.iid)
         .where(Person.role == "admin", Person.active.is_(True)).order_by(Person.id))
    return [(p, ch, chat) for p, ch, chat in (await session.execute(q)).all()]


async def private_chat(session: AsyncSession, person_id: int) -> tuple[str, str] | None:
    """(channel, chat id) of the person's newest chat identity, or None if they never bound one."""
    q = (select(ChatIdentity.channel, ChatIdentity.chat_id).where(ChatIdentity.person_id == person_id)
         .order_by(ChatIdentity.id.desc()).limit(1))
    row = (await session.execute(q)).first()
    return None if row is None else (row[0], row[1])


async def bulletin_groups(session: AsyncSession) -> list[tuple[str, str, str | None]]:
    """(channel, chat id, unit path or None) of every group that takes bulletins."""
    q = (select(ChatGroup.channel, ChatGroup.chat_id, OrgUnit.path)
         .outerjoin(OrgUnit, OrgUnit.id == ChatGroup.unit_id)
         .where(ChatGroup.bulletins.is_(True)).order_by(ChatGroup.id))
    return [(c, i, p) for c, i, p in (await session.execute(q)).all()]


# ------------------------------------------------------------------------------------------ broadcasts


@dataclass
class Audience:
    people: list[tuple[int, str, str]]  # person id, channel, chat id (newest identity)
    unbound: int  # people in the audience with no chat identity: counted, not reachable
    groups: list[tuple[str, str]]  # channel, chat id


async def broadcast_audience(session: AsyncSession, *, path: str | None, roles: Sequence[str],
                             groups: bool, exclude_person: int | None = None) -> Audience:
    people: list[tuple[int, str, str]] = []
    unbound = 0
    if roles:
        newest = (select(ChatIdentity.person_id, func.max(ChatIdentity.id).label("iid"))
                  .group_by(ChatIdentity.person_id).subquery())
        q = (select(Person.id, ChatIdentity.channel, ChatIdentity.chat_id)
             .outerjoin(newest, newest.c.person_id == Person.id)
             .outerjoin(ChatIdentity, ChatIdentity.id == newest.c.iid)
             .where(Person.active.is_(True), Person.role.in_(list(roles))).order_by(Person.id))
        if path is not None:
            q = q.where(Person.unit_id.in_(units_under(path)))
        if exclude_person is not None:
            q = q.where(Person.id != exclude_person)
        for pid, ch, chat in (await session.execute(q)).all():
            if ch is None:
                unbound += 1
            else:
                people.append((pid, ch, chat))
    gs: list[tuple[str, str]] = []
    if groups:
        gq = select(ChatGroup.channel, ChatGroup.chat_id).order_by(ChatGroup.id)
        if path is not None:
            gq = gq.where(ChatGroup.unit_id.in_(units_under(path)))
        gs = [(c, i) for c, i in (await session.execute(gq)).all()]
    return Audience(people, unbound, gs)


async def batch_status(session: AsyncSession, *, prefix: str,
                       unreported_kind: str | None = None) -> dict[str, dict[str, int]]:
    """batch → {status: count} for outbox batches named `prefix…`; with `unreported_kind`, only batches
    with no ledger row of that kind yet (the ones still owed a delivery report)."""
    q = (select(OutboxMessage.batch, OutboxMessage.status, func.count())
         .where(OutboxMessage.batch.startswith(prefix))
         .group_by(OutboxMessage.batch, OutboxMessage.status))
    if unreported_kind is not None:
        done = select(SendLedger.period).where(SendLedger.kind == unreported_kind)
        q = q.where(OutboxMessage.batch.not_in(done))
    out: dict[str, dict[str, int]] = defaultdict(dict)
    for b, s, n in (await session.execute(q)).all():
        out[str(b)][s] = int(n)
    return dict(out)
