"""People's chat identities, invite codes, scope (which households a person may see) and lookup area (where
the households they write about are looked up)."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import ChatIdentity, Household, Invite, OrgUnit, Pairing, Person
from storage.registry import path_prefix

# No 0/O, 1/I/L: codes are read off paper and typed on phones.
CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CODE_LENGTH = 8


def hash_code(code: str) -> str:
    return hashlib.sha256(normalise_code(code).encode()).hexdigest()


def normalise_code(code: str) -> str:
    return "".join(ch for ch in code.upper() if ch.isalnum())


def looks_like_code(text: str) -> bool:
    c = normalise_code(text)
    return len(c) == CODE_LENGTH and all(ch in CODE_ALPHABET for ch in c)


async def create_invite(
    session: AsyncSession, *, role: str, now: datetime, person_id: int | None = None,
    unit_id: int | None = None, days: int = 7,
) -> str:
    """Returns the plain code; only its hash is stored."""
    code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
    session.add(Invite(code_hash=hash_code(code), role=role, person_id=person_id, unit_id=unit_id,
                       created_at=now, expires_at=now + timedelta(days=days)))
    await session.flush()
    return code


async def find_identity(session: AsyncSession, channel: str, external_id: str) -> ChatIdentity | None:
    q = select(ChatIdentity).where(ChatIdentity.channel == channel, ChatIdentity.external_id == external_id)
    return (await session.execute(q)).scalar_one_or_none()


@dataclass
class Redeemed:
    person: Person
    identity: ChatIdentity


class InviteError(Exception):
    pass


async def redeem_invite(
    session: AsyncSession, *, code: str, channel: str, external_id: str, chat_id: str,
    display_name: str, now: datetime,
) -> Redeemed:
    q = select(Invite).where(Invite.code_hash == hash_code(code)).with_for_update()
    inv = (await session.execute(q)).scalar_one_or_none()
    if inv is None:
        raise InviteError("invalid")
    if inv.used_at is not None:
        raise InviteError("used")
    if inv.expires_at <= now:
        raise InviteError("expired")
    if inv.person_id is not None:
        person = await session.get(Person, inv.person_id)
        if person is None:
            raise InviteError("invalid")
        person.role = inv.role
    else:
        person = Person(natural_key=f"{display_name or external_id}|{channel}:{external_id}",
                        name=display_name or "未命名", role=inv.role, unit_id=inv.unit_id)
        session.add(person)
        await session.flush()
    ident = await find_identity(session, channel, external_id)
    if ident is None:
        ident = ChatIdentity(person_id=person.id, channel=channel, external_id=external_id,
                             chat_id=chat_id, display_name=display_name, bound_at=now)
        session.add(ident)
    else:
        ident.person_id, ident.chat_id, ident.bound_at = person.id, chat_id, now
    await session.flush()
    inv.used_at = now
    inv.used_by_identity_id = ident.id
    return Redeemed(person=person, identity=ident)


async def home_village(session: AsyncSession, unit_id: int | None) -> OrgUnit | None:
    """The village a person's unit is (or lies in, for a group); None for township and district units."""
    unit = await session.get(OrgUnit, unit_id) if unit_id else None
    while unit is not None and unit.level == "group" and unit.parent_id is not None:
        unit = await session.get(OrgUnit, unit.parent_id)
    return unit if unit is not None and unit.level == "village" else None


async def unit_path(session: AsyncSession, unit_id: int | None) -> str | None:
    if unit_id is None:
        return None
    unit = await session.get(OrgUnit, unit_id)
    return None if unit is None else unit.path


@dataclass(frozen=True)
class Scope:
    """What a person may see: everything (admin), a unit subtree (supervisor), or their own
    paired households plus the households of their own village (cadre, secretary)."""

    everything: bool = False
    path_prefix: str | None = None
    paired_only_person: int | None = None

    def household_filter(self, q: Select[tuple[Household]]) -> Select[tuple[Household]]:
        if self.everything:
            return q
        conds = []
        if self.path_prefix is not None:
            sub = select(OrgUnit.id).where(OrgUnit.path.startswith(self.path_prefix))
            conds.append(Household.unit_id.in_(sub))
        if self.paired_only_person is not None:
            paired = select(Pairing.household_id).where(Pairing.person_id == self.paired_only_person)
            conds.append(Household.id.in_(paired))
        if not conds:
            return q.where(Household.id == -1)
        from sqlalchemy import or_

        return q.where(or_(*conds))


async def scope_for(session: AsyncSession, person: Person) -> Scope:
    if person.role == "admin":
        return Scope(everything=True)
    path = await unit_path(session, person.unit_id)
    if person.role in ("supervisor", "organiser"):
        return Scope(path_prefix=path) if path else Scope(paired_only_person=person.id)
    unit = await session.get(OrgUnit, person.unit_id) if person.unit_id else None
    # A village cadre also sees the rest of the village; a district or department cadre sees
    # only the households they are paired with.
    village_path = path if unit is not None and unit.level in ("village", "group") else None
    return Scope(path_prefix=village_path, paired_only_person=person.id)


async def in_scope(session: AsyncSession, scope: Scope, household_id: int) -> bool:
    q = scope.household_filter(select(Household.id).where(Household.id == household_id))  # type: ignore[arg-type]
    return (await session.execute(q)).first() is not None


async def scope_ids(session: AsyncSession, scope: Scope, household_ids: Collection[int]) -> set[int]:
    """Which of these households the scope covers: one query for all of them."""
    if not household_ids:
        return set()
    q = scope.household_filter(select(Household.id).where(Household.id.in_(list(household_ids))))  # type: ignore[arg-type]
    ids: list[Any] = list((await session.execute(q)).scalars())  # ids: household_filter is typed for rows
    return {int(i) for i in ids}


async def paired_household_ids(session: AsyncSession, person_id: int) -> set[int]:
    q = select(Pairing.household_id).where(Pairing.person_id == person_id)
    return set((await session.execute(q)).scalars())


@dataclass(frozen=True)
class LookupArea:
    """Where a person's written household names are resolved: the township(s) that hold their own unit and the
    townships of the households they are paired with (a county-bureau cadre paired in two townships gets both).
    Supervisors keep their whole unit subtree; admins look everywhere. Wider than `Scope` on purpose: cadres
    visit colleagues' households and the whole village during 遍访, and a visit there is attached only after
    the cadre confirms it."""

    everything: bool = False
    path_prefixes: tuple[str, ...] = ()


async def lookup_area(session: AsyncSession, person: Person) -> LookupArea:
    if person.role == "admin":
        return LookupArea(everything=True)
    own = await session.get(OrgUnit, person.unit_id) if person.unit_id else None
    paired_paths = select(OrgUnit.path).join(Household, Household.village_id == OrgUnit.id).join(
        Pairing, Pairing.household_id == Household.id).where(Pairing.person_id == person.id).distinct()
    paths = set((await session.execute(paired_paths)).scalars())
    prefixes: set[str] = set()
    if own is not None:
        if person.role in ("supervisor", "organiser"):
            prefixes.add(own.path)
        elif own.level != "district":
            # A county-bureau cadre (unit: the district) gets only the townships of their pairings.
            paths.add(own.path)
    ancestor_ids = {int(i) for p in paths for i in p.strip("/").split("/") if i}
    if ancestor_ids:
        prefixes |= set((await session.execute(select(OrgUnit.path).where(
            OrgUnit.id.in_(ancestor_ids), OrgUnit.level == "township"))).scalars())
    # A village hung straight under a district (no township above it) still covers itself.
    for p in paths:
        if not any(p.startswith(t) for t in prefixes):
            prefixes.add(p)
    # Drop prefixes that lie inside another: each household is then matched once.
    kept = tuple(sorted(p for p in prefixes if not any(p != q and p.startswith(q) for q in prefixes)))
    return LookupArea(path_prefixes=kept)


async def in_area(session: AsyncSession, area: LookupArea, household_ids: Collection[int]) -> set[int]:
    """Which of these (active) households lie in the lookup area: one query for all candidates."""
    if not household_ids:
        return set()
    q = select(Household.id).where(Household.id.in_(list(household_ids)), Household.status == "active")
    if not area.everything:
        if not area.path_prefixes:
            return set()
        q = q.join(OrgUnit, OrgUnit.id == Household.village_id).where(
            or_(*(path_prefix(OrgUnit.path, p) for p in area.path_prefixes)))
    return set((await session.execute(q)).scalars())


@dataclass(frozen=True)
class HouseholdLabel:
    """What a choice button shows about a household: 村, 组 and 人口, nothing personal."""

    id: int
    head: str
    village: str
    group: str | None
    size: int | None


async def household_labels(session: AsyncSession, household_ids: Collection[int]) -> dict[int, HouseholdLabel]:
    if not household_ids:
        return {}
    village = OrgUnit.__table__.alias("v")
    unit = OrgUnit.__table__.alias("u")
    q = (select(Household.id, Household.head_name, village.c.name, unit.c.name, unit.c.level, Household.size)
         .join(village, village.c.id == Household.village_id).join(unit, unit.c.id == Household.unit_id)
         .where(Household.id.in_(list(household_ids))))
    return {i: HouseholdLabel(i, head, vname, uname if level == "group" else None, size)
            for i, head, vname, uname, level, size in (await session.execute(q)).all()}
