"""The one way into the outbox: a Reply is translated to outbox values here (refusing private text to a
group) and written by `storage.messages`. Dispatch, the scheduled senders, trainings and broadcasts all use it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.types import ChatRef, Reply
from storage.messages import add_outbox, add_outbox_many, last_card_message, outbox_row


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One message for the bulk path: a reply, its chat, and when it may go (quiet hours) / its batch."""

    reply: Reply
    chat: ChatRef
    not_before: datetime | None = None
    batch: str | None = None


def _values(r: Reply, chat: ChatRef, *, now: datetime, batch: str | None = None,
            not_before: datetime | None = None, edit_of_id: int | None = None,
            inbox_id: int | None = None) -> dict[str, Any]:
    if r.private and chat.is_group:
        raise ValueError("refusing to send a private message to a group")
    doc = r.document or r.photo
    return outbox_row(
        channel=chat.channel, chat_id=chat.chat_id, is_group=chat.is_group, text=r.text,
        buttons=[[(b.text, b.data) for b in line] for line in r.buttons], keyboard=r.keyboard,
        file_name=doc.filename if doc else None, file_kind=("photo" if r.photo else "document") if doc else None,
        file_mime=doc.mime if doc else None, file_content=doc.content if doc else None, card_key=r.card_key,
        edit_of_id=edit_of_id, inbox_id=inbox_id, now=now, batch=batch, not_before=not_before,
    )


async def send_reply(session: AsyncSession, r: Reply, *, chat: ChatRef, now: datetime, inbox_id: int | None = None,
                     batch: str | None = None, not_before: datetime | None = None) -> int:
    """Queue one reply (to `r.to` if set, else `chat`); an `edit_card` reply edits the card's last message.
    Returns the outbox row id (flushed)."""
    to = r.to or chat
    edit_of = None
    if r.edit_card and r.card_key:
        prev = await last_card_message(session, channel=to.channel, chat_id=to.chat_id, card_key=r.card_key)
        edit_of = prev.id if prev is not None else None
    values = _values(r, to, now=now, batch=batch, not_before=not_before, edit_of_id=edit_of, inbox_id=inbox_id)
    return await add_outbox(session, values)


async def send_many(session: AsyncSession, items: Sequence[Outgoing], *, now: datetime) -> dict[tuple[str, str], int]:
    """Queue a fan-out in bulk; (channel, chat id) → the lowest new outbox id for that chat."""
    rows = [_values(o.reply, o.chat, now=now, batch=o.batch, not_before=o.not_before) for o in items]
    return await add_outbox_many(session, rows)
