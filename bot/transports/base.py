"""The contract every transport fulfils: capabilities, outgoing messages and delivery errors.

The outbox decides when to send; a transport only knows how.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal, Protocol

from handlers.types import Button, ChatRef, Document, Incoming

# Called by a transport for every update. It returns once the update is durably stored and processed;
# if it raises, the transport must NOT confirm the update (no offset advance, 5xx on a webhook), so the
# platform delivers it again.
OnUpdate = Callable[[Incoming], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Capabilities:
    name: str
    max_text: int  # characters per message
    max_text_bytes: int | None = None  # some channels count UTF-8 bytes instead
    inline_buttons: bool = True  # False: choices render as numbered options answered by number
    reply_keyboard: bool = True
    edit_messages: bool = True
    files: bool = True
    global_rate: float = 30.0  # messages per second, whole bot
    per_chat_interval: float = 1.0  # seconds between messages to one private chat
    group_per_minute: int = 20  # messages per minute to one group chat
    per_user_per_minute: int | None = None  # WeCom: 30 per user per minute


@dataclass(slots=True)
class OutMessage:
    chat: ChatRef
    text: str
    buttons: tuple[tuple[Button, ...], ...] = ()
    keyboard: tuple[tuple[str, ...], ...] | None = None
    document: Document | None = None
    photo: Document | None = None
    edit_message_id: str | None = None  # transport id of a message to edit instead of sending anew
    reply_to_message_id: str | None = None


@dataclass(frozen=True, slots=True)
class Sent:
    message_id: str | None


class DeliveryError(Exception):
    pass


class RetryAfter(DeliveryError):
    """The platform asked us to wait (Telegram 429 retry_after)."""

    def __init__(self, seconds: float, *, scope: Literal["channel", "chat"] = "channel") -> None:
        super().__init__(f"retry after {seconds}s")
        self.seconds = seconds
        # "chat": only this chat must wait (a per-user or per-robot limit); "channel": the whole bot.
        self.scope = scope


class TransientError(DeliveryError):
    """5xx, timeouts, network: retry with backoff."""


class PermanentError(DeliveryError):
    """The message can never be delivered as is (400, 403 blocked, chat not found)."""

    def __init__(self, message: str, *, blocked: bool = False) -> None:
        super().__init__(message)
        self.blocked = blocked


class Transport(Protocol):
    name: str  # the channel name used in ChatRef.channel: "telegram", "wecom", "console"
    capabilities: Capabilities

    async def start(self, on_update: OnUpdate) -> None: ...

    async def stop(self) -> None: ...

    async def send(self, msg: OutMessage) -> Sent: ...


def split_text(text: str, limit: int, byte_limit: int | None = None) -> list[str]:
    """Split at line breaks where possible so no chunk exceeds the channel's limit."""
    def fits(s: str) -> bool:
        return len(s) <= limit and (byte_limit is None or len(s.encode("utf-8")) <= byte_limit)

    if fits(text):
        return [text]
    chunks: list[str] = []
    current = ""
    for line in text.splitlines(keepends=True):
        if fits(current + line):
            current += line
            continue
        if current:
            chunks.append(current)
            current = ""
        while not fits(line):
            # A single over-long line: cut it at the largest prefix that fits.
            lo, hi = 1, len(line)
            while lo < hi:
                mid = (lo + hi + 1) // 2
                if fits(line[:mid]):
                    lo = mid
                else:
                    hi = mid - 1
            chunks.append(line[:lo])
            line = line[lo:]
        current = line
    if current:
        chunks.append(current)
    return [c.rstrip("\n") or c for c in chunks]

