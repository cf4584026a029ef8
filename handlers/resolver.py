"""Registry-aware household resolution: keeps the text package's Registry in step with the database and
decides, for one written name, whether to attach, confirm, ask, refuse (outside the area) or offer to add."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.text import Candidate, HouseholdRef, Registry
from handlers.text.registry import NameQuery, age_fits, read_name, village_stems
from storage.accounts import LookupArea, in_area
from storage.models import CacheVersion, Household, OrgUnit

log = logging.getLogger("bangfu.resolver")

# Above this many households a rebuild (pinyin keys, indexes, the tokenizer's user words: ~1.5 s for
# 13,000) runs in a thread while updates keep the previous registry; below it, it is quicker than the
# hand-off and the update that saw the change gets the new registry at once.
BACKGROUND_ABOVE = 2000


@dataclass
class _Cached:
    signature: tuple[Any, ...]
    registry: Registry
    building: tuple[Any, ...] | None = None  # the signature a background rebuild is working towards


_cache: dict[str, _Cached] = {}
_tasks: set[asyncio.Task[None]] = set()


async def _signature(session: AsyncSession) -> tuple[Any, ...]:
    # What the registry holds (id, head, village) never changes in place: a renamed or moved household
    # is a new row (natural key), so count and max id tell every relevant change; updated_at would also
    # move on every household-size update and force needless rebuilds. The head's birth year and sex (from the
    # resident ID) may lag a re-import that corrects an ID number until the next household is added: they only
    # narrow 杨奶奶-style nicknames, and every option is still shown for a tap.
    q = select(func.count(Household.id), func.max(Household.id))
    row = (await session.execute(q)).one()
    vq = select(func.count(OrgUnit.id), func.max(OrgUnit.id))
    return (*tuple(row), *tuple((await session.execute(vq)).one()))


# Set on the session by the runtime: the 'households' change token it read at the start of the update.
TOKEN_KEY = "bangfu.households_token"


async def get_registry(session: AsyncSession) -> Registry:
    """The registry of every household, rebuilt only when the household table changed (no restart).

    Inside an update the check is free: the runtime read the change token (moved by triggers on household
    writes) with the sender's; elsewhere it is one query. Without a token row (a truncated database), count
    and max id are compared as before."""
    key = str(session.get_bind().engine.url)
    token = session.info.get(TOKEN_KEY)
    if token is None:
        tq = select(CacheVersion.token).where(CacheVersion.name == "households")
        token = (await session.execute(tq)).scalar_one_or_none()
    sig = ("token", token) if token is not None else await _signature(session)
    cached = _cache.get(key)
    if cached is not None and cached.signature == sig:
        return cached.registry
    if cached is not None and len(cached.registry.households) > BACKGROUND_ABOVE and session.bind is not None:
        if cached.building != sig:
            cached.building = sig
            task = asyncio.create_task(_rebuild(key, sig, session.bind))
            _tasks.add(task)
            task.add_done_callback(_tasks.discard)
        return cached.registry
    refs, villages = await _load(session)
    reg = await asyncio.to_thread(_build, refs, villages) if len(refs) > BACKGROUND_ABOVE else Registry(refs, villages)
    _cache[key] = _Cached(sig, reg)
    return reg


async def _load(session: AsyncSession) -> tuple[list[HouseholdRef], set[str]]:
    q = select(Household.id, Household.head_name, OrgUnit.name, Household.size, Household.id_number).join(
        OrgUnit, OrgUnit.id == Household.village_id
    )
    refs = []
    for i, h, v, size, idn in (await session.execute(q)).all():
        born, female = _head_facts(idn)
        refs.append(HouseholdRef(id=i, head=h, village=v, size=size, born=born, female=female))
    villages = (await session.execute(select(OrgUnit.name).where(OrgUnit.level.in_(("village", "group"))))).scalars()
    return refs, set(villages)


def _build(refs: list[HouseholdRef], villages: set[str]) -> Registry:
    reg = Registry(refs, villages)
    reg.tokenizer  # noqa: B018 - its user words too, here rather than in the first parse on the loop
    return reg


async def _rebuild(key: str, sig: tuple[Any, ...], bind: Any) -> None:
    """Read the households in a session of its own (committed data only), index them in a thread, then
    swap the registry in; updates meanwhile resolve against the previous one."""
    try:
        async with AsyncSession(bind) as session:
            refs, villages = await _load(session)
        reg = await asyncio.to_thread(_build, refs, villages)
    except Exception:
        log.exception("registry rebuild failed; the next update retries")
        cached = _cache.get(key)
        if cached is not None and cached.building == sig:
            cached.building = None
        return
    cached = _cache.get(key)
    if cached is None or cached.building == sig:
        _cache[key] = _Cached(sig, reg)


async def warm_up(session: AsyncSession) -> None:
    """Build the registry before the first update needs it (at start, off the event loop when large)."""
    await get_registry(session)


def added(session: AsyncSession, household: HouseholdRef) -> None:
    """A household added in chat: indexed in place in this process's registry, so the next message can
    name it at once (other processes rebuild on the token its insert moved)."""
    cached = _cache.get(str(session.get_bind().engine.url))
    if cached is not None:
        cached.registry.add(household)


def forget() -> None:
    _cache.clear()


def _head_facts(id_number: str | None) -> tuple[int | None, bool | None]:
    """Birth year and sex of the head from their resident ID (digits 7-10 and the parity of digit 17): the
    registry has no age column, and only these two facts are kept in memory, never the number itself."""
    s = (id_number or "").strip()
    if len(s) != 18 or not s[:17].isdigit():
        return None, None
    year = int(s[6:10])
    if not 1900 <= year <= 2100:
        return None, None
    return year, int(s[16]) % 2 == 0


# --- resolving one written name -------------------------------------------------------------------------------

Outcome = Literal["attach", "confirm", "ask", "outside", "new", "none"]
MAX_OPTIONS = 8
MAX_NAMESAKES = 12  # every namesake is listed; a township with more than this many is not a real case
_CLASS = {"exact": 0, "member": 0, "homophone": 1, "pinyin": 1, "typo": 2, "kinship": 3}
# Matches strong enough to say "this name is in the registry": an outside one of these is refused, not added.
_KNOWN = ("exact", "member", "homophone", "pinyin")


@dataclass(frozen=True)
class Resolution:
    """What to do with one written household reference.

    attach: the sender's own household, unambiguous; confirm: one tap on the first option (best) or another;
    ask: every namesake listed; outside: the name exists only outside the lookup area; new: nothing like it
    anywhere (offering to add it is right); none: a kin word with no household behind it in the area.
    `exists` is True whenever the name, or one sounding like it, is in the area: the bot must then never
    offer to add it."""

    outcome: Outcome
    options: tuple[int, ...] = ()
    exists: bool = False


def _village_matches(village: str, named: str) -> bool:
    return any(village == v or village.startswith(v) for v in village_stems(named))


async def resolve_written(session: AsyncSession, reg: Registry, written: str, *, area: LookupArea,
                          paired: Collection[int], village: str | None, home_village: str | None,
                          year: int) -> Resolution:
    """Resolve what the parser gave as the head ("王德明", "老王", "杨奶奶", "何文祥他妈") in the sender's area.

    Ranking: match quality first (an exact name beats a homophone, which beats a typo), then the sender's own
    pairing, then their village, then the rest of the area. A village named in the text narrows first."""
    query = read_name(written)
    if query.kind != "name" and reg.is_known_name(written):
        query = NameQuery("name", written)  # 石大妹 is a registered head, not 石 + 大妹
    if query.kind == "title":
        return Resolution("none", (), exists=True)
    if query.kind == "surname":
        return await _resolve_surname(session, reg, query.name, query, area=area, paired=paired,
                                      village=village, home_village=home_village, year=year)
    cands = reg.resolve(query.name)
    inside_ids = await in_area(session, area, [c.household.id for c in cands])
    inside = [c for c in cands if c.household.id in inside_ids and c.reason != "kinship"]
    outside = [c for c in cands if c.household.id not in inside_ids and c.reason in _KNOWN]
    if village:
        named = [c for c in inside if _village_matches(c.household.village, village)]
        if named:
            inside = named
        elif any(_village_matches(c.household.village, village) for c in outside):
            return Resolution("outside")
    if not inside:
        if outside:
            return Resolution("outside")
        # 吴小花他妈 with no 吴小花 on the roll: a relative is never added as a household of their own
        return Resolution("none" if query.kind == "relative" else "new", (), exists=query.kind == "relative")

    def key(c: Candidate) -> tuple[int, bool, bool, float, int]:
        h = c.household
        return (_CLASS[c.reason], h.id not in paired, h.village != home_village, -c.score, h.id)

    inside.sort(key=key)
    best = _CLASS[inside[0].reason]
    top = [c for c in inside if _CLASS[c.reason] == best]
    exists = best <= 1
    own = [c for c in top if c.household.id in paired]
    if len(top) == 1 or len(own) == 1:
        pick = own[0] if len(own) == 1 else top[0]
        # The cadre's own household, named exactly (or the only one sounding like it): no question. Anything
        # else, above all a household outside their pairing, waits for one confirming tap.
        if pick.household.id in paired and (best == 0 or (best == 1 and len(inside) == 1)):
            return Resolution("attach", (pick.household.id,), exists)
        rest = [c.household.id for c in inside if c is not pick]
        return Resolution("confirm", (pick.household.id, *rest)[:MAX_OPTIONS], exists)
    return Resolution("ask", tuple(c.household.id for c in top)[:MAX_NAMESAKES], exists)


async def _resolve_surname(session: AsyncSession, reg: Registry, surname: str, query: NameQuery, *, area: LookupArea,
                           paired: Collection[int], village: str | None, home_village: str | None,
                           year: int) -> Resolution:
    # 老王 / 王二哥 / 杨奶奶 name a household only vaguely: the candidates are every household of that surname in
    # the area, the sender's own first, and the bot always asks (a tap), never attaches silently or adds one.
    refs = reg.with_surname(surname)
    inside_ids = await in_area(session, area, [h.id for h in refs])
    refs = [h for h in refs if h.id in inside_ids]
    if village:
        refs = [h for h in refs if _village_matches(h.village, village)] or refs
    # 杨奶奶: only heads old enough (and of the right sex) when the registry knows ages (from the resident ID);
    # a registry without ages keeps every 杨 household rather than guess.
    refs = [h for h in refs if age_fits(h, query, year)] or refs
    if not refs:
        return Resolution("none", (), exists=True)
    refs.sort(key=lambda h: (h.id not in paired, h.village != home_village, h.id))
    ids = tuple(h.id for h in refs)
    own = [h for h in refs if h.id in paired]
    outcome: Outcome = "confirm" if len(refs) == 1 or len(own) == 1 else "ask"
    return Resolution(outcome, ids[:MAX_OPTIONS], exists=True)
