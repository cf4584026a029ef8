"""A transport that records every message it is asked to send (Zulip-style transcript)."""

from __future__ import annotations

import itertools

from bot.transports.base import Capabilities, OnUpdate, OutMessage, Sent

TELEGRAM_LIKE = Capabilities(name="transcript", max_text=4096, global_rate=1000, per_chat_interval=0.001,
                             group_per_minute=10_000)
NO_BUTTONS = Capabilities(name="transcript", max_text=2048, inline_buttons=False, reply_keyboard=False,
                          edit_messages=False, global_rate=1000, per_chat_interval=0.001,
                          group_per_minute=10_000)


class TranscriptTransport:
    def __init__(self, name: str = "telegram", capabilities: Capabilities = TELEGRAM_LIKE) -> None:
        self.name = name
        self.capabilities = capabilities
        self.sent: list[OutMessage] = []
        self._ids = itertools.count(1000)
        self.on_update: OnUpdate | None = None

    async def start(self, on_update: OnUpdate) -> None:
        self.on_update = on_update

    async def stop(self) -> None:
        pass

    async def send(self, msg: OutMessage) -> Sent:
        self.sent.append(msg)
        return Sent(message_id=str(next(self._ids)))

    def texts(self, chat_id: str | None = None) -> list[str]:
        return [m.text for m in self.sent if chat_id is None or m.chat.chat_id == chat_id]
