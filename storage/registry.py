"""The registry: org-unit tree (with subtree filters on `path`), people, households and pairings,
including the bulk upserts by natural key used by spreadsheet import, and the masking helpers."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import ColumnElement, Select, Table, delete, insert, literal, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.sql import operators
from sqlalchemy.sql.elements import Grouping
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import Boolean

from storage.base import utcnow
from storage.models import LEVELS, Household, OrgUnit, Pairing, Person

# Well under SQLite's 32766 and asyncpg's 32767 bind-parameter limits.
_CHUNK = 5000

# Roles an import may set. Anything else (supervisor, admin…) was granted by hand and must survive re-imports.
IMPORTABLE_ROLES = ("cadre", "secretary")

HOUSEHOLD_FIELDS = ("size", "htype", "poverty_cause", "phone", "id_number")
PERSON_FIELDS = ("role", "unit_id", "org_name", "title", "level")


# --- masking -------------------------------------------------------------------------------------------------

# An optional +86 / 86 prefix and spaces or dashes between the groups, as people type them.
_MOBILE_IN_TEXT = re.compile(r"(?<![\d+])(?:\+?86[ -]?)?(1[3-9]\d)[ -]?(\d{4})[ -]?(\d{4})(?!\d)")
_ID_IN_TEXT = re.compile(r"(?<![0-9A-Za-z])(\d{3})\d{11}(\d{3}[0-9Xx])(?![0-9A-Za-z])")
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


def mask_phone(phone: str | None) -> str:
    """"13812345678" → "138****5678"; landlines keep area code and last 4; short numbers become "****"."""
    if not phone:
        return ""
    digits = re.sub(r"\D", "", phone)
    if len(digits) == 13 and digits.startswith("86"):
        digits = digits[2:]
    if len(digits) == 11 and digits.startswith("1"):
        return f"{digits[:3]}****{digits[-4:]}"
    if len(digits) >= 9 and digits.startswith("0"):
        area = 3 if digits[1] in "12" else 4  # 010, 02x are three digits; the rest (0851…) four
        return f"{digits[:area]}-{'*' * (len(digits) - area - 4)}{digits[-4:]}"
    if len(digits) > 4:
        return "*" * (len(digits) - 4) + digits[-4:]
    return "****"


def mask_id_number(id_number: str | None) -> str:
    """"520402199001011234" → "520***********1234": no birth date, no county, last 4 to tell two apart."""
    if not id_number:
        return ""
    s = id_number.strip()
    if len(s) <= 7:
        return "*" * len(s)
    return f"{s[:3]}{'*' * (len(s) - 7)}{s[-4:]}"


def mask_personal_text(text: str | None) -> str:
    """Mask mobile and ID numbers inside free text (what cadres typed) before it leaves the system."""
    if not text:
        return ""
    text = _ID_IN_TEXT.sub(lambda m: f"{m.group(1)}***********{m.group(2)}", text)
    return _MOBILE_IN_TEXT.sub(lambda m: f"{m.group(1)}****{m.group(3)}", text)


def is_valid_id_number(value: str) -> bool:
    """An 18-character resident ID with a correct ISO 7064 MOD 11-2 check character."""
    s = value.strip().upper()
    if len(s) != 18 or not s[:17].isdigit() or s[17] not in "0123456789X":
        return False
    total = sum(int(c) * w for c, w in zip(s[:17], _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11] == s[17]


def id_check_char(first17: str) -> str:
    total = sum(int(c) * w for c, w in zip(first17, _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11]


# --- natural keys --------------------------------------------------------------------------------------------


def person_key(name: str, phone: str | None = None, org_name: str | None = None) -> str:
    return f"{name}|{phone}" if phone else f"{name}|{org_name or ''}"


def household_key(village_id: int, group_name: str | None, head_name: str) -> str:
    return f"{village_id}|{group_name or ''}|{head_name}"


# --- org tree ------------------------------------------------------------------------------------------------


class _PathPrefix(FunctionElement[bool]):
    """`path` starts with a literal prefix, compiled so each backend can use its index on `path`.

    Clauses: the column, the LIKE pattern, the GLOB pattern. Whole patterns are bound (not built with ||)
    because both planners only turn a constant pattern into an index range."""

    type = Boolean()
    inherit_cache = True
    name = "path_prefix"

    def self_group(self, against: Any = None) -> Any:
        # It renders as a comparison: without this, SQLite gets "… GLOB ? = 1", which defeats the index.
        return Grouping(self) if against is not None and against not in (operators.and_, operators.or_,
                                                                         operators._asbool) else self


@compiles(_PathPrefix)
def _path_prefix_default(element: _PathPrefix, compiler: Any, **kw: Any) -> str:
    col, like, _glob = list(element.clauses)
    return f"{compiler.process(col, **kw)} LIKE {compiler.process(like, **kw)}"


@compiles(_PathPrefix, "sqlite")
def _path_prefix_sqlite(element: _PathPrefix, compiler: Any, **kw: Any) -> str:
    # LIKE is case-insensitive in SQLite and so never uses a BINARY index; GLOB is and does. Paths hold only
    # digits and slashes, so neither pattern needs escaping.
    col, _like, glob = list(element.clauses)
    return f"{compiler.process(col, **kw)} GLOB {compiler.process(glob, **kw)}"


def path_prefix(column: ColumnElement[str] | InstrumentedAttribute[str], prefix: str) -> ColumnElement[bool]:
    """`column` is `prefix` or below it. Prefixes are "/1/5/" style, so "/1/5/" never matches "/1/50/"."""
    if not re.fullmatch(r"(/\d+)+/", prefix):
        raise ValueError(f"not an org path: {prefix!r}")
    return _PathPrefix(column, literal(prefix + "%"), literal(prefix + "*"))


def subtree_filter(unit: OrgUnit) -> ColumnElement[bool]:
    """A WHERE clause on OrgUnit selecting `unit` and everything below it."""
    return path_prefix(OrgUnit.path, unit.path)


def subtree_ids_select(unit: OrgUnit) -> Select[int]:
    return select(OrgUnit.id).where(subtree_filter(unit))


def in_subtree(unit_column: Any, unit: OrgUnit) -> ColumnElement[bool]:
    """`unit_column` (a foreign key to org_unit) points into `unit`'s subtree: one subquery, no id list."""
    inside: ColumnElement[bool] = unit_column.in_(subtree_ids_select(unit))
    return inside


async def subtree_unit_ids(session: AsyncSession, unit_id: int) -> list[int]:
    """Ids of the unit and all its descendants (empty if the unit does not exist)."""
    unit = await session.get(OrgUnit, unit_id)
    if unit is None:
        return []
    return list((await session.scalars(subtree_ids_select(unit).order_by(OrgUnit.id))).all())


async def get_or_create_unit(session: AsyncSession, *, name: str, level: str, parent: OrgUnit | None) -> OrgUnit:
    """The child of `parent` named `name`, created (with its path) if missing."""
    if level not in LEVELS:
        raise ValueError(f"unknown level {level!r}")
    parent_id = parent.id if parent is not None else None
    cond = OrgUnit.parent_id == parent_id if parent_id is not None else OrgUnit.parent_id.is_(None)
    found = await session.scalar(select(OrgUnit).where(cond, OrgUnit.name == name))
    if found is not None:
        return found
    unit = OrgUnit(name=name, level=level, parent_id=parent_id, path="")
    session.add(unit)
    await session.flush()
    unit.path = f"{parent.path if parent is not None else '/'}{unit.id}/"
    await session.flush()
    return unit


async def find_units_by_name(session: AsyncSession, name: str, *, level: str | None = None) -> list[OrgUnit]:
    """Units called `name`; "旧州镇/大坝村" (or with ／ or >) narrows by ancestors. Shallowest first."""
    parts = [p.strip() for p in re.split(r"[/／>＞]", name) if p.strip()]
    if not parts:
        return []
    stmt = select(OrgUnit).where(OrgUnit.name == parts[-1])
    if level is not None:
        stmt = stmt.where(OrgUnit.level == level)
    units = list((await session.scalars(stmt.order_by(OrgUnit.path))).all())
    if len(parts) == 1 or not units:
        return units
    # Keep only candidates whose ancestors include the given names, in order.
    ancestor_ids = {int(i) for u in units for i in u.path.strip("/").split("/")[:-1]}
    names = dict((await session.execute(select(OrgUnit.id, OrgUnit.name).where(OrgUnit.id.in_(ancestor_ids)))).all())
    out = []
    for u in units:
        chain = [names.get(int(i), "") for i in u.path.strip("/").split("/")[:-1]]
        it = iter(chain)
        if all(any(a == want for a in it) for want in parts[:-1]):
            out.append(u)
    return out


async def unit_ancestors(session: AsyncSession, unit: OrgUnit) -> list[OrgUnit]:
    """Root first, excluding `unit` itself."""
    ids = [int(i) for i in unit.path.strip("/").split("/")[:-1]]
    if not ids:
        return []
    rows = {u.id: u for u in (await session.scalars(select(OrgUnit).where(OrgUnit.id.in_(ids)))).all()}
    return [rows[i] for i in ids if i in rows]


def unit_label(unit: OrgUnit, ancestors: Sequence[OrgUnit]) -> str:
    return "/".join([*(a.name for a in ancestors if a.level != "district"), unit.name])


@dataclass(slots=True)
class UnitsResult:
    ids: dict[tuple[str, ...], int]
    created: int


async def ensure_units(session: AsyncSession, chains: Iterable[tuple[str, ...]]) -> UnitsResult:
    """Make every name chain ("西秀区", "双堡镇", "大坝村"[, "一组"]) exist; levels follow LEVELS by depth.

    Bulk: one lookup by name, then one INSERT … RETURNING and one path UPDATE per depth.
    """
    wanted: set[tuple[str, ...]] = set()
    for chain in chains:
        if len(chain) > len(LEVELS):
            raise ValueError(f"org chain too deep: {chain}")
        for depth in range(1, len(chain) + 1):
            wanted.add(chain[:depth])
    names = sorted({c[-1] for c in wanted})
    existing: dict[tuple[int | None, str], tuple[int, str]] = {}
    for i in range(0, len(names), _CHUNK):
        rows = await session.execute(
            select(OrgUnit.id, OrgUnit.parent_id, OrgUnit.name, OrgUnit.path).where(
                OrgUnit.name.in_(names[i:i + _CHUNK])
            )
        )
        for uid, parent_id, uname, upath in rows:
            existing.setdefault((parent_id, uname), (uid, upath))

    ids: dict[tuple[str, ...], int] = {}
    paths: dict[tuple[str, ...], str] = {}
    created = 0
    for depth in range(1, len(LEVELS) + 1):
        level_chains = sorted(c for c in wanted if len(c) == depth)
        missing: list[tuple[str, ...]] = []
        for chain in level_chains:
            parent_id = ids[chain[:-1]] if depth > 1 else None
            hit = existing.get((parent_id, chain[-1]))
            if hit is None:
                missing.append(chain)
            else:
                ids[chain], paths[chain] = hit
        if not missing:
            continue
        params = [
            {"name": c[-1], "level": LEVELS[depth - 1], "parent_id": ids[c[:-1]] if depth > 1 else None, "path": ""}
            for c in missing
        ]
        await session.execute(insert(_table(OrgUnit)), params)
        by_key: dict[tuple[int | None, str], int] = {}
        new_names = sorted({c[-1] for c in missing})
        for i in range(0, len(new_names), _CHUNK):
            fresh = await session.execute(
                select(OrgUnit.id, OrgUnit.parent_id, OrgUnit.name).where(
                    OrgUnit.name.in_(new_names[i:i + _CHUNK]), OrgUnit.path == ""
                )
            )
            by_key.update({(pid, n): uid for uid, pid, n in fresh})
        path_updates = []
        for chain in missing:
            parent_id = ids[chain[:-1]] if depth > 1 else None
            uid = by_key[(parent_id, chain[-1])]
            ids[chain] = uid
            paths[chain] = f"{paths[chain[:-1]] if depth > 1 else '/'}{uid}/"
            path_updates.append({"id": uid, "path": paths[chain]})
        await session.execute(update(OrgUnit), path_updates)
        created += len(missing)
    return UnitsResult(ids=ids, created=created)


# --- people and households -----------------------------------------------------------------------------------


async def find_people_by_name(session: AsyncSession, name: str, *, active_only: bool = True) -> list[Person]:
    stmt = select(Person).where(Person.name == name)
    if active_only:
        stmt = stmt.where(Person.active.is_(True))
    return list((await session.scalars(stmt.order_by(Person.id))).all())


async def households_by_village(session: AsyncSession, village_id: int) -> list[Household]:
    stmt = select(Household).where(Household.village_id == village_id, Household.status == "active")
    return list((await session.scalars(stmt.order_by(Household.unit_id, Household.head_name))).all())


async def households_in_unit(session: AsyncSession, unit: OrgUnit) -> list[Household]:
    """Active households anywhere in `unit`'s subtree."""
    stmt = select(Household).where(in_subtree(Household.unit_id, unit), Household.status == "active")
    return list((await session.scalars(stmt.order_by(Household.village_id, Household.head_name))).all())


async def households_by_cadre(session: AsyncSession, person_id: int) -> list[Household]:
    stmt = (
        select(Household)
        .join(Pairing, Pairing.household_id == Household.id)
        .where(Pairing.person_id == person_id, Household.status == "active")
        .order_by(Household.village_id, Household.head_name)
    )
    return list((await session.scalars(stmt)).all())


async def find_households_by_head(
    session: AsyncSession, head_name: str, *, within: OrgUnit | None = None
) -> list[Household]:
    stmt = select(Household).where(Household.head_name == head_name, Household.status == "active")
    if within is not None:
        stmt = stmt.where(in_subtree(Household.unit_id, within))
    return list((await session.scalars(stmt.order_by(Household.id))).all())


async def cadres_of_households(session: AsyncSession, household_ids: Sequence[int]) -> dict[int, list[Person]]:
    out: dict[int, list[Person]] = {}
    for i in range(0, len(household_ids), _CHUNK):
        rows = await session.execute(
            select(Pairing.household_id, Person)
            .join(Person, Person.id == Pairing.person_id)
            .where(Pairing.household_id.in_(household_ids[i:i + _CHUNK]))
            .order_by(Pairing.household_id, Pairing.id)
        )
        for hid, person in rows:
            out.setdefault(hid, []).append(person)
    return out


@dataclass(slots=True)
class Counts:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0

    @property
    def changed(self) -> int:
        return self.created + self.updated + self.removed


@dataclass(slots=True)
class UpsertResult:
    counts: Counts
    ids: dict[str, int]  # natural key → id


def _changes(current: Mapping[str, Any], new: Mapping[str, Any], fields: Iterable[str]) -> dict[str, Any]:
    return {f: new[f] for f in fields if f in new and current.get(f) != new[f]}


async def _existing_by_key(session: AsyncSession, model: type[Household] | type[Person], cols: Sequence[Any],
                           keys: Sequence[str]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for i in range(0, len(keys), _CHUNK):
        rows = await session.execute(select(model.id, model.natural_key, *cols).where(
            model.natural_key.in_(keys[i:i + _CHUNK])))
        for row in rows.mappings():
            out[row["natural_key"]] = dict(row)
    return out


async def upsert_households(
    session: AsyncSession, rows: Sequence[Mapping[str, Any]], *, fields: Iterable[str] = HOUSEHOLD_FIELDS
) -> UpsertResult:
    """Insert or update households by natural_key. Each row has natural_key, village_id, unit_id, head_name
    and any of `fields`; only those fields are compared and written, so columns a file lacks stay as they are.
    Rows whose values already match are not touched (updated_at does not move)."""
    fields = [f for f in fields if f in HOUSEHOLD_FIELDS]
    compare = ["village_id", "unit_id", "head_name", *fields]
    keys = [r["natural_key"] for r in rows]
    existing = await _existing_by_key(session, Household, [getattr(Household, c) for c in (*compare, "status")], keys)
    counts = Counts()
    ids: dict[str, int] = {}
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    now = utcnow()
    for r in rows:
        cur = existing.get(r["natural_key"])
        if cur is None:
            row = {c: r.get(c) for c in ("natural_key", *compare)}
            row["htype"] = row.get("htype") or "一般户"
            row.update(created_at=now, updated_at=now, status="active")
            inserts.append(row)
            continue
        ids[r["natural_key"]] = cur["id"]
        diff = _changes(cur, r, compare)
        if diff.get("htype", "") is None:
            del diff["htype"]  # the column is NOT NULL; no type given means keep the one stored
        if cur["status"] != "active":  # it is in the file, so it is back
            diff["status"] = "active"
        if diff:
            updates.append({"id": cur["id"], **diff, "updated_at": now})
            counts.updated += 1
        else:
            counts.unchanged += 1
    if inserts:
        ids.update(await _insert_and_key(session, Household, inserts))
        counts.created = len(inserts)
    await _bulk_update(session, Household, updates)
    return UpsertResult(counts=counts, ids=ids)


async def upsert_people(
    session: AsyncSession, rows: Sequence[Mapping[str, Any]], *, fields: Iterable[str] = PERSON_FIELDS
) -> UpsertResult:
    """Insert or update people by natural_key (rows have natural_key, name, phone and any of `fields`).

    A role other than cadre/secretary was granted on purpose and is never overwritten by an import."""
    fields = [f for f in fields if f in PERSON_FIELDS]
    keys = [r["natural_key"] for r in rows]
    existing = await _existing_by_key(session, Person, [getattr(Person, c) for c in ("name", "phone", *PERSON_FIELDS)], keys)
    counts = Counts()
    ids: dict[str, int] = {}
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    now = utcnow()
    for r in rows:
        cur = existing.get(r["natural_key"])
        if cur is None:
            row = {c: r.get(c) for c in ("natural_key", "name", "phone", *fields)}
            row["role"] = row.get("role") or "cadre"
            row.update(active=True, created_at=now)
            inserts.append(row)
            continue
        ids[r["natural_key"]] = cur["id"]
        diff = _changes(cur, r, fields)
        if "role" in diff and cur["role"] not in IMPORTABLE_ROLES:
            del diff["role"]
        if diff:
            updates.append({"id": cur["id"], **diff})
            counts.updated += 1
        else:
            counts.unchanged += 1
    if inserts:
        ids.update(await _insert_and_key(session, Person, inserts))
        counts.created = len(inserts)
    await _bulk_update(session, Person, updates)
    return UpsertResult(counts=counts, ids=ids)


def _table(model: type[Any]) -> Table:
    return cast(Table, model.__table__)


async def _insert_and_key(session: AsyncSession, model: type[Household] | type[Person],
                          rows: list[dict[str, Any]]) -> dict[str, int]:
    # A Core executemany and a keyed re-select. ORM bulk INSERT … RETURNING splices result batches
    # quadratically on SQLite (40 s for 10,000 rows), and the ORM bulk path without RETURNING still
    # splits rows into groups by which values are None (thousands of statements).
    for i in range(0, len(rows), _CHUNK):
        await session.execute(insert(_table(model)), rows[i:i + _CHUNK])
    keys = [r["natural_key"] for r in rows]
    out: dict[str, int] = {}
    for i in range(0, len(keys), _CHUNK):
        res = await session.execute(select(model.natural_key, model.id).where(model.natural_key.in_(keys[i:i + _CHUNK])))
        out.update(res.all())
    return out


async def _bulk_update(session: AsyncSession, model: type[Household] | type[Person],
                       updates: list[dict[str, Any]]) -> None:
    # ORM bulk UPDATE by primary key batches rows with the same key set into one executemany.
    for i in range(0, len(updates), _CHUNK):
        await session.execute(update(model), updates[i:i + _CHUNK])


async def sync_pairings(session: AsyncSession, wanted: Mapping[int, Iterable[int]]) -> Counts:
    """Make each listed household's cadres exactly `wanted[household_id]` (person ids).

    Households not in `wanted` keep their pairings: a file for one township does not unpair the rest."""
    want = {hid: set(pids) for hid, pids in wanted.items()}
    hids = sorted(want)
    have: dict[tuple[int, int], int] = {}
    for i in range(0, len(hids), _CHUNK):
        rows = await session.execute(
            select(Pairing.id, Pairing.person_id, Pairing.household_id).where(
                Pairing.household_id.in_(hids[i:i + _CHUNK])
            )
        )
        for pid_row, person_id, hid in rows:
            have[(person_id, hid)] = pid_row
    wanted_pairs = {(pid, hid) for hid, pids in want.items() for pid in pids}
    new = sorted(wanted_pairs - have.keys())
    gone = sorted(pid for pair, pid in have.items() if pair not in wanted_pairs)
    now = utcnow()
    for i in range(0, len(new), _CHUNK):
        await session.execute(
            insert(_table(Pairing)),
            [{"person_id": p, "household_id": h, "since": now} for p, h in new[i:i + _CHUNK]],
        )
    for i in range(0, len(gone), _CHUNK):
        await session.execute(delete(Pairing).where(Pairing.id.in_(gone[i:i + _CHUNK])))
    return Counts(created=len(new), removed=len(gone), unchanged=len(wanted_pairs & have.keys()))


async def pair(session: AsyncSession, *, person_id: int, household_id: int) -> bool:
    """Pair one cadre with one household; False if they already were."""
    exists = await session.scalar(
        select(Pairing.id).where(Pairing.person_id == person_id, Pairing.household_id == household_id)
    )
    if exists is not None:
        return False
    session.add(Pairing(person_id=person_id, household_id=household_id))
    await session.flush()
    return True

