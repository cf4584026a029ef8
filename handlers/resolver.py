"""Registry-aware name resolution: keeps the text package's Registry in step with the database."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.text import HouseholdRef, Registry
from storage.models import Household, OrgUnit


@dataclass
class _Cached:
    signature: tuple[Any, ...]
    registry: Registry


_cache: dict[str, _Cached] = {}


async def _signature(session: AsyncSession) -> tuple[Any, ...]:
    # What the registry holds (id, head, village) never changes in place: a renamed or moved household
    # is a new row (natural key), so count and max id tell every relevant change; updated_at would also
    # move on every household-size update and force needless rebuilds.
    q = select(func.count(Household.id), func.max(Household.id))
    row = (await session.execute(q)).one()
    vq = select(func.count(OrgUnit.id), func.max(OrgUnit.id))
    return (*tuple(row), *tuple((await session.execute(vq)).one()))


async def get_registry(session: AsyncSession) -> Registry:
    """The registry of every household, rebuilt only when the household table changed (no restart)."""
    key = str(session.get_bind().engine.url)
    sig = await _signature(session)
    cached = _cache.get(key)
    if cached is not None and cached.signature == sig:
        return cached.registry
    q = select(Household.id, Household.head_name, OrgUnit.name, Household.size).join(
        OrgUnit, OrgUnit.id == Household.village_id
    )
    refs = [HouseholdRef(id=i, head=h, village=v, size=s) for i, h, v, s in (await session.execute(q)).all()]
    villages = (await session.execute(select(OrgUnit.name).where(OrgUnit.level.in_(("village", "group"))))).scalars()
    reg = Registry(refs, set(villages))
    _cache[key] = _Cached(sig, reg)
    return reg


def forget() -> None:
    _cache.clear()
