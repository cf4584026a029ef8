"""Neutral types shared by every transport and every handler: what came in, what goes out.

Transports translate their framework's objects to and from these; handlers never see a framework.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

AttachmentKind = Literal["photo", "voice", "video", "document", "location", "sticker", "other"]
IncomingKind = Literal["message", "edit", "callback", "event"]


@dataclass(frozen=True, slots=True)
class ChatRef:
    """A chat on one channel. IDs are strings on every channel (Telegram's ints included)."""

    channel: str
    chat_id: str
    is_group: bool = False


@dataclass(frozen=True, slots=True)
class Attachment:
    kind: AttachmentKind
    file_id: str | None = None
    file_name: str | None = None
    mime: str | None = None
    size: int | None = None
    latitude: float | None = None
    longitude: float | None = None


@dataclass(frozen=True, slots=True)
class Incoming:
    """One update from a user, already stripped of its framework.

    `message_id` is unique within (channel, chat) for messages; `dedup_key` overrides it where one
    message can arrive several times legitimately (an edit, a button press).
    """

    chat: ChatRef
    sender_id: str
    message_id: str
    kind: IncomingKind = "message"
    text: str = ""
    sender_name: str = ""
    callback_data: str | None = None
    reply_to_message_id: str | None = None
    attachments: tuple[Attachment, ...] = ()
    sent_at: datetime | None = None
    event: str | None = None
    dedup_key: str | None = None
    raw: dict[str, Any] | None = None

    @property
    def channel(self) -> str:
        return self.chat.channel

    @property
    def inbox_key(self) -> str:
        return self.dedup_key or self.message_id


@dataclass(frozen=True, slots=True)
class Button:
    text: str
    data: str  # callback payload; Telegram allows 64 bytes, so keep it short ("v:12:undo")


@dataclass(frozen=True, slots=True)
class Document:
    filename: str
    content: bytes
    mime: str = "application/octet-stream"


@dataclass(slots=True)
class Reply:
    """Something to send. Text is plain: transports escape it for their markup.

    `card_key` names the outgoing message ("visit:12") so a later reply can edit it (`edit_card`)
    and so a user's reply-to on it can be traced back to the record it shows.
    """

    text: str
    buttons: tuple[tuple[Button, ...], ...] = ()
    keyboard: tuple[tuple[str, ...], ...] | None = None
    document: Document | None = None
    photo: Document | None = None
    to: ChatRef | None = None
    card_key: str | None = None
    edit_card: bool = False
    private: bool = False


class UserError(Exception):
    """A problem the user can fix; its message (Chinese) is shown to them as is."""
