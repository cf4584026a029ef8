"""Who a sender is, cached per process: identity, person, scope, paired households and home village,
checked once per update against the 'people' change token (see CacheVersion) instead of re-read."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy import inspect, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import make_transient_to_detached

from storage.accounts import Scope, find_identity, home_village, paired_household_ids, scope_for
from storage.models import CacheVersion, ChatIdentity, Person


@dataclass(frozen=True)
class Tokens:
    """The change tokens read at the start of an update; None when a row is missing (trust no cache)."""

    people: int | None
    households: int | None


async def read_tokens(session: AsyncSession) -> Tokens:
    rows = dict((await session.execute(select(CacheVersion.name, CacheVersion.token))).all())
    return Tokens(people=rows.get("people"), households=rows.get("households"))


_Row = TypeVar("_Row", ChatIdentity, Person)


def _snapshot(row: _Row) -> _Row:
    """A detached copy of a loaded row's columns, owned by no session: a rollback of the update that
    loaded it cannot expire it, and a handler changing its own copy cannot change the cache."""
    mapper = inspect(row).mapper
    copy = mapper.class_(**{a.key: getattr(row, a.key) for a in mapper.column_attrs})
    make_transient_to_detached(copy)
    return copy


@dataclass(frozen=True)
class Sender:
    """A bound, active sender as of one 'people' token. The ORM objects are detached snapshots: attach
    copies with `attach` before handing them to a handler."""

    identity: ChatIdentity
    person: Person
    scope: Scope
    paired: frozenset[int]
    home_village: str | None


async def load_sender(session: AsyncSession, channel: str, sender_id: str) -> Sender | None:
    ident = await find_identity(session, channel, sender_id)
    if ident is None:
        return None
    person = await session.get(Person, ident.person_id)
    if person is None or not person.active:
        return None
    scope = await scope_for(session, person)
    paired = frozenset(await paired_household_ids(session, person.id))
    village = await home_village(session, person.unit_id)
    return Sender(_snapshot(ident), _snapshot(person), scope, paired, village.name if village is not None else None)


class SenderCache:
    """(database, channel, sender) → Sender, valid while the 'people' token is unchanged. Strangers are
    cached too (as None): an unbound user's flood must not cost a lookup per message."""

    def __init__(self, max_entries: int = 100_000) -> None:
        self.max_entries = max_entries
        self._token: dict[str, int] = {}
        self._entries: dict[str, dict[tuple[str, str], Sender | None]] = {}

    async def get(self, session: AsyncSession, tokens: Tokens, channel: str, sender_id: str) -> Sender | None:
        db = str(session.get_bind().engine.url)
        if tokens.people is None:
            return await load_sender(session, channel, sender_id)
        entries = self._entries.setdefault(db, {})
        if self._token.get(db) != tokens.people:
            entries.clear()
            self._token[db] = tokens.people
        key = (channel, sender_id)
        if key in entries:
            return entries[key]
        # Loaded after the token was read: a change committed in between makes the data newer than the
        # token, and the next update, seeing a new token, reloads. Never the other way round.
        sender = await load_sender(session, channel, sender_id)
        if len(entries) >= self.max_entries:
            entries.clear()
        entries[key] = sender
        return sender

    def clear(self) -> None:
        self._token.clear()
        self._entries.clear()


async def attach(session: AsyncSession, sender: Sender) -> tuple[ChatIdentity, Person]:
    """Copies of the cached identity and person in this session, without a SELECT: handlers may read
    and change them like any loaded row."""
    ident = await session.merge(sender.identity, load=False)
    person = await session.merge(sender.person, load=False)
    return ident, person
