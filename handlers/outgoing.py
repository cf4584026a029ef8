"""How a Reply becomes outbox column values: the one translation used by dispatch and scheduled senders."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from handlers.types import ChatRef, Reply
from storage.messages import outbox_row


def outbox_values(r: Reply, chat: ChatRef, *, now: datetime, batch: str | None = None,
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
