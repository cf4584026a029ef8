"""Telegram transport on aiogram 3: Bot + Dispatcher/Router carry every update and every API call.

Delivery semantics, polling and the webhook server live in telegram_common; this module only speaks aiogram.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Any

import aiohttp
from aiogram import Bot, Dispatcher, Router
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.dispatcher.event.bases import UNHANDLED
from aiogram.enums import ParseMode
from aiogram.exceptions import (
    AiogramError,
    ClientDecodeError,
    RestartingTelegram,
    TelegramAPIError,
    TelegramBadRequest,
    TelegramConflictError,
    TelegramEntityTooLarge,
    TelegramForbiddenError,
    TelegramMigrateToChat,
    TelegramNetworkError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.methods import TelegramMethod
from aiogram.types import (
    BotCommand,
    BufferedInputFile,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    Message,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
    ReplyParameters,
    Update,
)
from pydantic import ValidationError

from bot.transports.base import DeliveryError, PermanentError, RetryAfter, TransientError
from bot.transports.telegram_common import (
    Buttons,
    Keyboard,
    MalformedUpdate,
    RawUpdate,
    TelegramTransportBase,
    callback_to_incoming,
    log,
    message_to_incoming,
)
from handlers.types import Document

_API_TIMEOUT = 30  # seconds for ordinary calls; long polls get poll_timeout on top
_DOWNLOAD_TIMEOUT = 120

Markup = InlineKeyboardMarkup | ReplyKeyboardMarkup | ReplyKeyboardRemove | None


class _RawGetUpdates(TelegramMethod[list[dict[str, Any]]]):
    """aiogram's GetUpdates, returning plain dicts so one update it can't validate doesn't sink the batch."""

    __returning__ = list[dict[str, Any]]
    __api_method__ = "getUpdates"

    offset: int | None = None
    limit: int | None = None
    timeout: int | None = None
    allowed_updates: list[str] | None = None


def _inline(buttons: Buttons) -> InlineKeyboardMarkup | None:
    if not buttons:
        return None
    return InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text=b.text, callback_data=b.data) for b in row] for row in buttons]
    )


def _markup(buttons: Buttons, keyboard: Keyboard) -> Markup:
    if buttons:
        return _inline(buttons)
    if keyboard is None:
        return None
    if not keyboard:  # an explicitly empty keyboard takes the old one away
        return ReplyKeyboardRemove(remove_keyboard=True)
    return ReplyKeyboardMarkup(
        keyboard=[[KeyboardButton(text=label) for label in row] for row in keyboard], resize_keyboard=True
    )


def _reply(reply_to: int | None) -> ReplyParameters | None:
    # allow_sending_without_reply: the user may have deleted the message we answer.
    return ReplyParameters(message_id=reply_to, allow_sending_without_reply=True) if reply_to else None


class AiogramTransport(TelegramTransportBase):
    """The "telegram" channel through aiogram."""

    def __init__(self, token: str, **kw: Any) -> None:
        super().__init__(token, **kw)  # the options are TelegramTransportBase's
        self.bot: Bot | None = None
        self.dispatcher = Dispatcher()
        router = Router(name="bangfu-telegram")
        router.message.register(self._on_message)
        router.edited_message.register(self._on_edited_message)
        router.callback_query.register(self._on_callback)
        self.dispatcher.include_router(router)

    # ---- lifecycle -----------------------------------------------------------------------------

    async def _fw_open(self) -> None:
        api = TelegramAPIServer.from_base(self.api_base) if self.api_base else None
        session = AiohttpSession(api=api, timeout=_API_TIMEOUT) if api else AiohttpSession(timeout=_API_TIMEOUT)
        self.bot = Bot(self.token, session=session)

    async def _fw_close(self) -> None:
        if self.bot is not None:
            await self.bot.session.close()

    def _bot(self) -> Bot:
        if self.bot is None:
            raise TransientError("transport not started")
        return self.bot

    async def _fw_get_me(self) -> None:
        me = await self._bot().get_me()
        log.info("telegram bot @%s (id %s) via aiogram", me.username, me.id)

    async def _fw_set_commands(self, commands: Sequence[tuple[str, str]]) -> None:
        await self._bot().set_my_commands([BotCommand(command=c, description=d) for c, d in commands])

    async def _fw_set_webhook(self, url: str, secret: str) -> None:
        await self._bot().set_webhook(url=url, secret_token=secret)

    async def _fw_delete_webhook(self) -> None:
        await self._bot().delete_webhook()

    # ---- updates -------------------------------------------------------------------------------

    async def _fw_get_updates(self, offset: int | None, wait: int, limit: int) -> list[Any]:
        method = _RawGetUpdates(offset=offset, timeout=wait, limit=limit)
        updates: list[dict[str, Any]] = await self._bot()(method, request_timeout=wait + _API_TIMEOUT)
        return list(updates)

    async def _fw_process(self, raw: RawUpdate) -> None:
        bot = self._bot()
        try:
            update = Update.model_validate(raw, context={"bot": bot})
        except ValidationError as exc:
            raise MalformedUpdate(f"{exc.error_count()} validation errors: {exc.errors()[0]['msg']}") from exc
        # Exceptions from on_update propagate out of feed_update: no error handler is registered.
        result = await self.dispatcher.feed_update(bot, update, raw_update=raw)
        if result is UNHANDLED:
            await self._deliver(lambda: None, raw)

    async def _on_message(self, message: Message, raw_update: RawUpdate) -> None:
        await self._deliver(lambda: message_to_incoming(message, raw_update), raw_update)

    async def _on_edited_message(self, edited_message: Message, raw_update: RawUpdate) -> None:
        await self._deliver(lambda: message_to_incoming(edited_message, raw_update, edited=True), raw_update)

    async def _on_callback(self, callback_query: CallbackQuery, raw_update: RawUpdate) -> None:
        await self._deliver(lambda: callback_to_incoming(callback_query, raw_update), raw_update)
        # Only after on_update returned: if it raised, the redelivered press gets answered then.
        await self._logged("answerCallbackQuery", lambda: self._bot().answer_callback_query(callback_query.id))

    # ---- sending -------------------------------------------------------------------------------

    async def _fw_send_text(self, chat_id: int | str, html_text: str, buttons: Buttons, keyboard: Keyboard,
                            reply_to: int | None) -> int:
        sent = await self._bot().send_message(
            chat_id=chat_id, text=html_text, parse_mode=ParseMode.HTML, reply_markup=_markup(buttons, keyboard),
            reply_parameters=_reply(reply_to),
        )
        return sent.message_id

    async def _fw_send_file(self, kind: str, chat_id: int | str, file: Document, caption_html: str | None,
                            buttons: Buttons, keyboard: Keyboard, reply_to: int | None) -> int:
        upload = BufferedInputFile(file.content, filename=file.filename)
        common: dict[str, Any] = {
            "chat_id": chat_id, "caption": caption_html, "parse_mode": ParseMode.HTML if caption_html else None,
            "reply_markup": _markup(buttons, keyboard), "reply_parameters": _reply(reply_to),
        }
        if kind == "photo":
            sent = await self._bot().send_photo(photo=upload, **common)
        else:
            sent = await self._bot().send_document(document=upload, **common)
        return sent.message_id

    async def _fw_edit_text(self, chat_id: int | str, message_id: int, html_text: str, buttons: Buttons) -> int:
        edited = await self._bot().edit_message_text(
            chat_id=chat_id, message_id=message_id, text=html_text, parse_mode=ParseMode.HTML,
            reply_markup=_inline(buttons),
        )
        return edited.message_id if isinstance(edited, Message) else message_id

    def _map_error(self, exc: BaseException) -> DeliveryError:
        if isinstance(exc, TelegramRetryAfter):
            return RetryAfter(float(exc.retry_after))
        if isinstance(exc, TelegramForbiddenError):
            return PermanentError(exc.message, blocked=True)
        if isinstance(exc, TelegramMigrateToChat):
            return PermanentError(f"group moved to supergroup {exc.migrate_to_chat_id}")
        if isinstance(exc, TelegramServerError | RestartingTelegram | TelegramNetworkError):
            return TransientError(str(exc))
        if isinstance(
            exc,
            TelegramBadRequest | TelegramNotFound | TelegramConflictError | TelegramUnauthorizedError
            | TelegramEntityTooLarge,
        ):
            return PermanentError(exc.message)
        if isinstance(exc, aiohttp.ClientResponseError) and 400 <= exc.status < 500:
            return PermanentError(f"HTTP {exc.status}: {exc.message}")
        # Unknown statuses, garbled responses (a proxy's HTML 502), timeouts, dropped connections.
        if isinstance(exc, TelegramAPIError | ClientDecodeError | AiogramError | aiohttp.ClientError
                      | asyncio.TimeoutError | OSError):
            return TransientError(f"{type(exc).__name__}: {exc}")
        return TransientError(f"unexpected {type(exc).__name__}: {exc}")

    # ---- files -----------------------------------------------------------------------------------

    async def _fw_file_info(self, file_id: str) -> tuple[str, int | None]:
        info = await self._bot().get_file(file_id)
        if not info.file_path:
            raise PermanentError("Telegram gave no file_path for this file")
        return info.file_path, info.file_size

    async def _fw_fetch_file(self, file_path: str, limit: int) -> bytes:
        bot = self._bot()
        url = bot.session.api.file_url(bot.token, file_path)
        data = bytearray()
        stream = bot.session.stream_content(url=url, timeout=_DOWNLOAD_TIMEOUT, chunk_size=65536)
        async with contextlib.aclosing(stream) as chunks:
            async for chunk in chunks:
                data += chunk
                if len(data) > limit:
                    break  # the caller refuses it; stop reading instead of buffering the rest
        return bytes(data)
