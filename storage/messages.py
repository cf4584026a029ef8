"""The inbox (every raw incoming update), the outbox (every outgoing message) and the send ledger."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import InboxMessage, OutboxMessage, SendLedger


def _insert_for(session: AsyncSession) -> Any:
    bind = session.get_bind()
    return pg_insert if bind.dialect.name == "postgresql" else sqlite_insert


async def inbox_insert(session: AsyncSession, **values: Any) -> int | None:
    """Insert an inbox row; None when (channel, chat, key) is already there (a duplicate delivery)."""
    ins = _insert_for(session)(InboxMessage).values(**values)
    ins = ins.on_conflict_do_nothing(index_elements=["channel", "chat_id", "message_key"])
    res = await session.execute(ins.returning(InboxMessage.id))
    return res.scalar_one_or_none()


async def ledger_claim(session: AsyncSession, *, kind: str, period: str, recipient: str) -> int | None:
    """Claim (kind, period, recipient); None if it was already claimed: the send must not happen."""
    ins = _insert_for(session)(SendLedger).values(kind=kind, period=period, recipient=recipient)
    ins = ins.on_conflict_do_nothing(index_elements=["kind", "period", "recipient"])
    res = await session.execute(ins.returning(SendLedger.id))
    return res.scalar_one_or_none()


async def recent_failed_codes(session: AsyncSession, *, channel: str, sender_id: str, since: datetime) -> int:
    q = select(func.count()).select_from(InboxMessage).where(
        InboxMessage.channel == channel, InboxMessage.sender_id == sender_id,
        InboxMessage.state == "bad_code", InboxMessage.received_at >= since,
    )
    return int((await session.execute(q)).scalar_one())


async def card_for_message(session: AsyncSession, *, channel: str, chat_id: str,
                           transport_message_id: str) -> str | None:
    q = select(OutboxMessage.card_key).where(
        OutboxMessage.channel == channel, OutboxMessage.chat_id == chat_id,
        OutboxMessage.transport_message_id == transport_message_id,
    ).order_by(OutboxMessage.id.desc()).limit(1)
    return (await session.execute(q)).scalar_one_or_none()


async def last_card_message(session: AsyncSession, *, channel: str, chat_id: str,
                            card_key: str) -> OutboxMessage | None:
    q = select(OutboxMessage).where(
        OutboxMessage.channel == channel, OutboxMessage.chat_id == chat_id,
        OutboxMessage.card_key == card_key, OutboxMessage.edit_of_id.is_(None),
    ).order_by(OutboxMessage.id.desc()).limit(1)
    return (await session.execute(q)).scalar_one_or_none()


async def last_choices(session: AsyncSession, *, channel: str, chat_id: str) -> OutboxMessage | None:
    """The newest message to this chat; for channels without buttons, a bare number answers it."""
    q = select(OutboxMessage).where(
        OutboxMessage.channel == channel, OutboxMessage.chat_id == chat_id,
    ).order_by(OutboxMessage.id.desc()).limit(5)
    for row in (await session.execute(q)).scalars():
        if row.payload.get("buttons"):
            return row
    return None
