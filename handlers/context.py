"""The per-update context handlers receive: session, clock, deployment preferences, sender and scope."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Protocol
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.types import ChatRef, Incoming, Reply
from storage.accounts import Scope
from storage.models import ChatIdentity, Person
from storage.senders import Sender

if TYPE_CHECKING:
    from handlers.text.faq import Faq


class Clock(Protocol):
    def now(self) -> datetime: ...


@dataclass(frozen=True)
class Prefs:
    """The deployment settings handlers need, copied out of the runtime's config."""

    tz: ZoneInfo
    max_text_chars: int = 4000
    max_file_bytes: int = 20_000_000
    attach_window_minutes: int = 10
    quiet_start: str = "21:00"
    quiet_end: str = "08:00"
    cadence_days: dict[str, int] = field(default_factory=lambda: {"监测户": 7, "脱贫户": 30, "default": 60})
    training_hours_before: tuple[int, ...] = (24, 2)
    inline_buttons: bool = True  # of the channel this update came from
    faq: Faq | None = None  # the county FAQ that answers questions (handlers/faq.py)


@dataclass
class Context:
    session: AsyncSession
    incoming: Incoming
    now: datetime  # aware, in prefs.tz
    prefs: Prefs
    person: Person | None = None
    identity: ChatIdentity | None = None
    scope: Scope | None = None
    sender: Sender | None = None  # the cached sender (scope, paired households, home village), if bound
    card_key: str | None = None  # the card the user replied to, if any
    inbox_id: int | None = None
    replies: list[Reply] = field(default_factory=list)
    inbox_state: str = "done"

    @property
    def today(self) -> date:
        return self.now.date()

    @property
    def chat(self) -> ChatRef:
        return self.incoming.chat

    def reply(self, text: str, **kw: Any) -> Reply:
        r = Reply(text=text, **kw)
        self.replies.append(r)
        return r

    def send_to(self, chat: ChatRef, text: str, **kw: Any) -> Reply:
        r = Reply(text=text, to=chat, **kw)
        self.replies.append(r)
        return r
