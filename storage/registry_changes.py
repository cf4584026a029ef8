"""Household fields stated in chat as proposed registry changes: propose, confirm (audited, previous value
kept), restore, and withdraw when the entry that stated them is undone."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import Enum

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import AuditLog, Household, RegistryChange
from storage.registry import mask_phone

# Household columns chat may propose changing, and how each is read back from its stored string.
FIELDS = ("size", "phone")


class Outcome(Enum):
    APPLIED = "applied"
    STALE = "stale"  # the registry no longer holds the value the proposal was made against
    NOT_OPEN = "not_open"  # already decided, restored or withdrawn


@dataclass(frozen=True)
class Proposal:
    household_id: int
    field: str
    new_value: str


def _current(h: Household, field: str) -> str | None:
    v = getattr(h, field)
    return None if v is None else str(v)


def _write(h: Household, field: str, value: str | None) -> None:
    if field == "size":
        h.size = None if value is None else int(value)
    else:
        setattr(h, field, value)


def _shown(field: str, value: str | None) -> str | None:
    """What the audit log keeps: phone numbers masked like everywhere else."""
    return mask_phone(value) if field == "phone" and value else value


async def propose(session: AsyncSession, *, entry_id: int | None, person_id: int, proposals: Sequence[Proposal],
                  now: datetime) -> list[RegistryChange]:
    """Open proposals for the values that differ from the registry; an open proposal of the same entry,
    household and field is replaced (a correction restates the value)."""
    out: list[RegistryChange] = []
    for p in proposals:
        if p.field not in FIELDS:
            raise ValueError(p.field)
        h = await session.get(Household, p.household_id)
        if h is None:
            continue
        await _withdraw(session, entry_id=entry_id, household_id=p.household_id, field=p.field, now=now)
        if _current(h, p.field) == p.new_value:
            continue
        rc = RegistryChange(household_id=h.id, entry_id=entry_id, field=p.field, old_value=_current(h, p.field),
                            new_value=p.new_value, status="proposed", proposed_by_id=person_id, created_at=now)
        session.add(rc)
        out.append(rc)
    await session.flush()
    return out


async def _withdraw(session: AsyncSession, *, entry_id: int | None, household_id: int, field: str,
                    now: datetime) -> None:
    q = select(RegistryChange).where(RegistryChange.entry_id == entry_id, RegistryChange.household_id == household_id,
                                     RegistryChange.field == field, RegistryChange.status == "proposed")
    for rc in (await session.execute(q)).scalars():
        rc.status, rc.decided_at = "withdrawn", now


async def for_entry(session: AsyncSession, entry_id: int) -> list[RegistryChange]:
    q = (select(RegistryChange).where(RegistryChange.entry_id == entry_id,
                                      RegistryChange.status.in_(("proposed", "confirmed")))
         .order_by(RegistryChange.id))
    return list((await session.execute(q)).scalars())


async def confirm(session: AsyncSession, rc: RegistryChange, *, person_id: int, now: datetime) -> Outcome:
    """Write the proposed value, keeping the previous one. Refused when the registry changed since the
    proposal (an import or another confirmation): an imported value wins over an unconfirmed chat value."""
    if rc.status != "proposed":
        return Outcome.NOT_OPEN
    h = await session.get(Household, rc.household_id)
    assert h is not None
    if _current(h, rc.field) != rc.old_value:
        rc.status, rc.decided_at, rc.decided_by_id = "stale", now, person_id
        return Outcome.STALE
    _write(h, rc.field, rc.new_value)
    h.updated_at = now
    rc.status, rc.decided_at, rc.decided_by_id = "confirmed", now, person_id
    session.add(AuditLog(at=now, actor=f"person:{person_id}", action="registry.chat_change", detail={
        "change": rc.id, "household": h.id, "field": rc.field, "old": _shown(rc.field, rc.old_value),
        "new": _shown(rc.field, rc.new_value), "entry": rc.entry_id}))
    await session.flush()
    return Outcome.APPLIED


async def restore(session: AsyncSession, rc: RegistryChange, *, actor: str, person_id: int | None,
                  now: datetime, reason: str) -> Outcome:
    """Put back the value a confirmed change replaced, unless the registry moved on since (then it is kept)."""
    if rc.status != "confirmed":
        return Outcome.NOT_OPEN
    h = await session.get(Household, rc.household_id)
    assert h is not None
    if _current(h, rc.field) != rc.new_value:
        return Outcome.STALE
    _write(h, rc.field, rc.old_value)
    h.updated_at = now
    rc.status, rc.decided_at, rc.decided_by_id = "restored", now, person_id
    session.add(AuditLog(at=now, actor=actor, action="registry.chat_change_restored", detail={
        "change": rc.id, "household": h.id, "field": rc.field, "restored": _shown(rc.field, rc.old_value),
        "replaced": _shown(rc.field, rc.new_value), "entry": rc.entry_id, "reason": reason}))
    await session.flush()
    return Outcome.APPLIED


async def revert_entry(session: AsyncSession, entry_id: int, *, actor: str, person_id: int | None,
                       now: datetime, reason: str) -> None:
    """Undo every registry effect of an entry: open proposals are withdrawn, confirmed ones restored."""
    for rc in await for_entry(session, entry_id):
        if rc.status == "proposed":
            rc.status, rc.decided_at = "withdrawn", now
        else:
            await restore(session, rc, actor=actor, person_id=person_id, now=now, reason=reason)
    await session.flush()


async def rehome(session: AsyncSession, entry_id: int, *, old_household: int, new_household: int, person_id: int,
                 now: datetime) -> None:
    """The entry's visit was moved to another household ("是A不是B"): what it stated about the wrong household
    is taken back and proposed for the right one instead."""
    moved: list[Proposal] = []
    for rc in await for_entry(session, entry_id):
        if rc.household_id != old_household:
            continue
        if rc.status == "confirmed":
            await restore(session, rc, actor=f"person:{person_id}", person_id=person_id, now=now,
                          reason="household corrected")
        else:
            rc.status, rc.decided_at = "withdrawn", now
        if rc.new_value is not None:
            moved.append(Proposal(new_household, rc.field, rc.new_value))
    await propose(session, entry_id=entry_id, person_id=person_id, proposals=moved, now=now)
