"""Entries, visits, needs, follow-ups and attachments: writes and the reads the chat and reports need."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from storage.accounts import Scope
from storage.models import (
    Entry,
    FollowUp,
    Household,
    Need,
    OrgUnit,
    Pairing,
    RegistryChange,
    Signup,
    Visit,
    VisitAttachment,
)
from storage.reports import counted_visit, raised_by_live_visit


async def entry_by_source(session: AsyncSession, source_key: str) -> Entry | None:
    q = select(Entry).where(Entry.source_key == source_key).options(*_entry_loads())
    return (await session.execute(q)).scalar_one_or_none()


def _entry_loads() -> list[Any]:
    return [
        selectinload(Entry.visits).selectinload(Visit.needs),
        selectinload(Entry.visits).selectinload(Visit.follow_ups),
        selectinload(Entry.visits).selectinload(Visit.household).selectinload(Household.village),
        selectinload(Entry.visits).selectinload(Visit.attachments),
    ]


async def load_entry(session: AsyncSession, entry_id: int) -> Entry | None:
    q = select(Entry).where(Entry.id == entry_id).options(*_entry_loads()).execution_options(
        populate_existing=True
    )
    return (await session.execute(q)).scalar_one_or_none()


async def last_entry(session: AsyncSession, person_id: int, *, states: tuple[str, ...] = ("saved",)) -> Entry | None:
    q = (select(Entry).where(Entry.person_id == person_id, Entry.state.in_(states))
         .order_by(Entry.id.desc()).limit(1).options(*_entry_loads()))
    return (await session.execute(q)).scalar_one_or_none()


async def recent_entries(session: AsyncSession, person_id: int, limit: int = 10) -> list[Entry]:
    q = (select(Entry).where(Entry.person_id == person_id, Entry.state == "saved")
         .order_by(Entry.id.desc()).limit(limit).options(*_entry_loads()))
    return list((await session.execute(q)).scalars())


@dataclass
class NeedIn:
    category: str
    item: str
    qty: float | None = None
    unit: str | None = None
    status: str = "open"


@dataclass
class FollowUpIn:
    action: str
    due: date | None = None
    due_raw: str | None = None


async def add_visit(
    session: AsyncSession, *, entry: Entry, index: int, household_id: int, cadre_id: int,
    visit_date: date, visit_type: str, household_size: int | None, needs: list[NeedIn],
    follow_ups: list[FollowUpIn], now: datetime, outcome: str = "met",
) -> Visit:
    """The visit as stated. `household_size` is what the message said; the registry's size is not touched
    here (a stated size is only a proposal, see storage.registry_changes)."""
    v = Visit(
        source_key=f"{entry.source_key}#{index}", entry_id=entry.id, cadre_id=cadre_id,
        household_id=household_id, visit_date=visit_date, visit_type=visit_type,
        household_size=household_size, raw_text=entry.raw_text, parse=entry.parse, created_at=now,
        updated_at=now, outcome=outcome,
    )
    session.add(v)
    await session.flush()
    for n in needs:
        session.add(Need(
            visit_id=v.id, household_id=household_id, category=n.category, item=n.item,
            qty=None if n.qty is None else Decimal(str(n.qty)), unit=n.unit, status=n.status,
            raised_on=visit_date, met_at=now if n.status == "met" else None,
        ))
    for f in follow_ups:
        session.add(FollowUp(visit_id=v.id, household_id=household_id, action=f.action, due=f.due,
                             due_raw=f.due_raw))
    await session.flush()
    return v


async def clear_visits(session: AsyncSession, entry: Entry) -> None:
    """Remove an entry's visits and what they raised (used when an edit re-derives them)."""
    ids = [v.id for v in entry.visits]
    if not ids:
        return
    await session.execute(delete(Need).where(Need.visit_id.in_(ids)))
    await session.execute(delete(FollowUp).where(FollowUp.visit_id.in_(ids)))
    await session.execute(delete(VisitAttachment).where(VisitAttachment.visit_id.in_(ids)))
    await session.execute(delete(Visit).where(Visit.id.in_(ids)))
    await session.flush()


async def set_deleted(session: AsyncSession, entry: Entry, deleted: bool) -> None:
    for v in entry.visits:
        v.deleted = deleted
    await session.flush()


@dataclass
class HouseholdSummary:
    household: Household
    village: str
    last_visit: date | None
    open_needs: int


async def my_households(session: AsyncSession, person_id: int, limit: int = 200) -> list[HouseholdSummary]:
    last = (select(Visit.household_id, func.max(Visit.visit_date).label("last"))
            .where(counted_visit()).group_by(Visit.household_id).subquery())
    needs = (select(Need.household_id, func.count().label("n"))
             .where(Need.status == "open", raised_by_live_visit(Need.visit_id))
             .group_by(Need.household_id).subquery())
    q = (select(Household, OrgUnit.name, last.c.last, needs.c.n)
         .join(Pairing, Pairing.household_id == Household.id)
         .join(OrgUnit, OrgUnit.id == Household.village_id)
         .outerjoin(last, last.c.household_id == Household.id)
         .outerjoin(needs, needs.c.household_id == Household.id)
         .where(Pairing.person_id == person_id)
         .order_by(last.c.last.asc().nulls_first(), Household.id).limit(limit))
    return [HouseholdSummary(h, v, lv, n or 0) for h, v, lv, n in (await session.execute(q)).all()]


async def open_needs(session: AsyncSession, scope: Scope, person_id: int, limit: int = 30) -> list[tuple[Need, Household]]:
    hq = scope.household_filter(select(Household))
    paired = select(Pairing.household_id).where(Pairing.person_id == person_id)
    sub = hq.where(Household.id.in_(paired)).with_only_columns(Household.id)
    q = (select(Need, Household).join(Household, Household.id == Need.household_id)
         .join(Visit, Visit.id == Need.visit_id)
         .where(Need.status == "open", Need.household_id.in_(sub), Visit.deleted.is_(False))
         .order_by(Need.raised_on, Need.id).limit(limit))
    return [(n, h) for n, h in (await session.execute(q)).all()]


async def remove_added_households(session: AsyncSession, entry: Entry, household_ids: list[int]) -> list[str]:
    """Undo of an entry that added households from chat (the 添加 button): each one goes again, with this
    entry's visits of it, unless something else refers to it by now (another visit, a sign-up, another
    cadre's pairing). Returns the names of the households removed."""
    removed: list[str] = []
    for hid in household_ids:
        h = await session.get(Household, hid)
        if h is None:
            continue
        other_visit = select(Visit.id).where(Visit.household_id == hid, or_(Visit.entry_id.is_(None),
                                                                              Visit.entry_id != entry.id))
        signup = select(Signup.id).where(Signup.household_id == hid)
        other_pairing = select(Pairing.id).where(Pairing.household_id == hid, Pairing.person_id != entry.person_id)
        if any([(await session.execute(q.limit(1))).first() is not None
                for q in (other_visit, signup, other_pairing)]):
            continue
        ids = select(Visit.id).where(Visit.household_id == hid)
        await session.execute(delete(VisitAttachment).where(VisitAttachment.visit_id.in_(ids)))
        await session.execute(delete(Need).where(Need.household_id == hid))
        await session.execute(delete(FollowUp).where(FollowUp.household_id == hid))
        await session.execute(delete(Need).where(Need.visit_id.in_(ids)))
        await session.execute(delete(FollowUp).where(FollowUp.visit_id.in_(ids)))
        await session.execute(delete(Visit).where(Visit.household_id == hid))
        await session.execute(delete(RegistryChange).where(RegistryChange.household_id == hid))
        await session.execute(delete(Pairing).where(Pairing.household_id == hid))
        await session.execute(delete(Household).where(Household.id == hid))
        removed.append(h.head_name)
    if removed:
        session.expire(entry, ["visits"])
    await session.flush()
    return removed
