"""The inbox (every raw incoming update), the outbox (every outgoing message) and the send ledger."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, func, insert, null, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import AuditLog, InboxMessage, OutboxMessage, SendLedger


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


async def ledger_claim_many(session: AsyncSession, *, kind: str, period: str,
                            recipients: Sequence[str]) -> dict[str, int]:
    """Claim many recipients at once; returns recipient → ledger id for the ones this call claimed
    (the others were sent before, by this or another process). One cached statement run as
    executemany, which SQLAlchemy batches into multi-row INSERT … ON CONFLICT DO NOTHING RETURNING."""
    uniq = list(dict.fromkeys(recipients))
    if not uniq:
        return {}
    table = SendLedger.__table__
    ins = _insert_for(session)(table).on_conflict_do_nothing(index_elements=["kind", "period", "recipient"])
    res = await session.execute(ins.returning(table.c.recipient, table.c.id),
                                [{"kind": kind, "period": period, "recipient": r} for r in uniq])
    return {r: int(i) for r, i in res.all()}


async def ledger_set_outbox(session: AsyncSession, links: dict[int, int]) -> None:
    """ledger id → the outbox row that carries the send (for tracing a reminder to its delivery)."""
    if links:
        # Core executemany: the ORM's bulk-update-by-primary-key path costs more than the SQL here.
        t = cast(Table, SendLedger.__table__)
        stmt = update(t).where(t.c.id == bindparam("lid")).values(outbox_id=bindparam("oid"))
        await session.execute(stmt, [{"lid": k, "oid": v} for k, v in links.items()])


async def ledger_exists(session: AsyncSession, *, kind: str, period: str, recipient: str) -> bool:
    q = select(SendLedger.id).where(SendLedger.kind == kind, SendLedger.period == period,
                                    SendLedger.recipient == recipient)
    return (await session.execute(q)).first() is not None


def outbox_row(
    *, channel: str, chat_id: str, is_group: bool, text: str, now: datetime,
    buttons: Sequence[Sequence[tuple[str, str]]] = (), keyboard: Sequence[Sequence[str]] | None = None,
    file_name: str | None = None, file_kind: str | None = None, file_mime: str | None = None,
    file_content: bytes | None = None, card_key: str | None = None, edit_of_id: int | None = None,
    inbox_id: int | None = None, batch: str | None = None, not_before: datetime | None = None,
) -> dict[str, Any]:
    """The column values of one outbox row; the one place that knows the payload's shape."""
    return {
        "channel": channel, "chat_id": chat_id, "is_group": is_group,
        "payload": {"text": text, "buttons": [[[t, d] for t, d in line] for line in buttons],
                    "keyboard": [list(x) for x in keyboard] if keyboard else None, "file_mime": file_mime},
        "file_name": file_name, "file_kind": file_kind, "file_content": file_content, "card_key": card_key,
        "edit_of_id": edit_of_id, "inbox_id": inbox_id, "created_at": now,
        "not_before": (not_before or now).astimezone(UTC), "batch": batch, "status": "pending", "attempts": 0,
    }


async def add_outbox(session: AsyncSession, values: dict[str, Any]) -> int:
    """One outbox row from `outbox_row` values; flushed, so its id is known and returned."""
    row = OutboxMessage(**values)
    session.add(row)
    await session.flush()
    return row.id


async def add_outbox_many(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> dict[tuple[str, str], int]:
    """Bulk insert of `outbox_row` dicts (a fan-out to thousands): (channel, chat id) → the lowest new id
    for that chat. Not asking RETURNING for parameter order is what lets SQLAlchemy batch the rows into
    multi-row INSERTs on SQLite instead of one statement per row."""
    if not rows:
        return {}
    # The Core table, not the ORM entity: the ORM's bulk path compiles a statement per batch.
    table = cast(Table, OutboxMessage.__table__)
    res = await session.execute(insert(table).returning(table.c.id, table.c.channel, table.c.chat_id), list(rows))
    out: dict[tuple[str, str], int] = {}
    for i, ch, chat in res.all():
        key = (ch, chat)
        out[key] = min(int(i), out.get(key, int(i)))
    return out


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


async def purge_inbox_text(session: AsyncSession, *, before: datetime) -> int:
    """Blank the raw text of inbox rows received before `before` (retention); the records derived stay."""
    res = await session.execute(
        update(InboxMessage).where(InboxMessage.received_at < before,
                                   or_(InboxMessage.text != "", InboxMessage.raw.is_not(None)))
        .values(text="", raw=null()))  # SQL NULL, not JSON null: the filter above must skip it next time
    n = int(getattr(res, "rowcount", 0) or 0)
    if n:
        session.add(AuditLog(actor="retention", action="inbox.purge_text",
                             detail={"before": before.isoformat(), "rows": n}))
    return n
