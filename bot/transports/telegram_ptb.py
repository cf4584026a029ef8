"""Telegram transport on python-telegram-bot 22: an Application with handlers processes every update.

Delivery semantics, polling and the webhook server live in telegram_common; this module only speaks PTB.
"""

from __future__ import annotations

import contextvars
import datetime as dtm
import json
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
from telegram import (
    BotCommand,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputFile,
    KeyboardButton,
    Message,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
    ReplyParameters,
    Update,
)
from telegram.constants import ParseMode
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Conflict,
    EndPointNotFound,
    Forbidden,
    InvalidToken,
    NetworkError,
    TelegramError,
    TimedOut,
)
from telegram.error import RetryAfter as PTBRetryAfter
from telegram.ext import Application, CallbackQueryHandler, ContextTypes, MessageHandler, filters
from telegram.request import HTTPXRequest
from telegram.warnings import PTBDeprecationWarning

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
from handlers.types import Document, Incoming

_API_TIMEOUT = 30.0
_DOWNLOAD_TIMEOUT = 120.0

Markup = InlineKeyboardMarkup | ReplyKeyboardMarkup | ReplyKeyboardRemove | None


class _RawUpdatesRequest(HTTPXRequest):
    """PTB's getUpdates request, keeping the raw body of the last response.

    Bot.get_updates parses the whole batch at once; one update it can't parse would otherwise hide the
    update_ids of all of them and stall the loop. do_request is BaseRequest's hook for subclasses.
    """

    last_payload: bytes | None = None

    async def do_request(self, *args: Any, **kwargs: Any) -> tuple[int, bytes]:
        self.last_payload = None
        code, payload = await super().do_request(*args, **kwargs)
        self.last_payload = payload
        return code, payload


@dataclass(slots=True)
class _Dispatch:
    """What one process_update call learnt from the handlers (PTB swallows handler errors)."""

    raw: RawUpdate
    handled: bool = False
    error: BaseException | None = None


_current: contextvars.ContextVar[_Dispatch | None] = contextvars.ContextVar("ptb_dispatch", default=None)


def _inline(buttons: Buttons) -> InlineKeyboardMarkup | None:
    if not buttons:
        return None
    return InlineKeyboardMarkup([[InlineKeyboardButton(b.text, callback_data=b.data) for b in row] for row in buttons])


def _markup(buttons: Buttons, keyboard: Keyboard) -> Markup:
    if buttons:
        return _inline(buttons)
    if keyboard is None:
        return None
    if not keyboard:  # an explicitly empty keyboard takes the old one away
        return ReplyKeyboardRemove()
    return ReplyKeyboardMarkup([[KeyboardButton(label) for label in row] for row in keyboard], resize_keyboard=True)


def _reply(reply_to: int | None) -> ReplyParameters | None:
    # allow_sending_without_reply: the user may have deleted the message we answer.
    return ReplyParameters(message_id=reply_to, allow_sending_without_reply=True) if reply_to else None


class PTBTransport(TelegramTransportBase):
    """The "telegram" channel through python-telegram-bot."""

    def __init__(self, token: str, **kw: Any) -> None:
        super().__init__(token, **kw)  # the options are TelegramTransportBase's
        self.application: Application[Any, Any, Any, Any, Any, Any] | None = None
        self._updates_request: _RawUpdatesRequest | None = None
        self._initialized = False

    # ---- lifecycle -----------------------------------------------------------------------------

    async def _fw_open(self) -> None:
        self._updates_request = _RawUpdatesRequest(connection_pool_size=1, read_timeout=_API_TIMEOUT)
        builder = (
            Application.builder()
            .token(self.token)
            .updater(None)  # our own getUpdates loop: PTB's Updater confirms before processing
            .job_queue(None)
            .get_updates_request(self._updates_request)
            .read_timeout(_API_TIMEOUT)
            .write_timeout(_API_TIMEOUT)
        )
        if self.api_base:
            builder = builder.base_url(f"{self.api_base}/bot").base_file_url(f"{self.api_base}/file/bot")
        app = builder.build()
        app.add_handler(MessageHandler(filters.UpdateType.MESSAGE, self._on_message, block=True))
        app.add_handler(MessageHandler(filters.UpdateType.EDITED_MESSAGE, self._on_edited_message, block=True))
        app.add_handler(CallbackQueryHandler(self._on_callback, block=True))
        self.application = app

    async def _fw_close(self) -> None:
        app = self.application
        if app is None:
            return
        if self._initialized:
            await app.shutdown()
            self._initialized = False
        else:  # initialize() failed half-way; its HTTP clients may still be open
            await app.bot.shutdown()

    def _app(self) -> Application[Any, Any, Any, Any, Any, Any]:
        if self.application is None:
            raise TransientError("transport not started")
        return self.application

    async def _ensure_initialized(self) -> None:
        # Application.initialize is getMe plus setup; PTB refuses process_update until it succeeded.
        if not self._initialized:
            await self._app().initialize()
            self._initialized = True

    async def _fw_get_me(self) -> None:
        await self._ensure_initialized()
        me = self._app().bot.bot
        log.info("telegram bot @%s (id %s) via python-telegram-bot", me.username, me.id)

    async def _fw_set_commands(self, commands: Sequence[tuple[str, str]]) -> None:
        await self._app().bot.set_my_commands([BotCommand(c, d) for c, d in commands])

    async def _fw_set_webhook(self, url: str, secret: str) -> None:
        await self._app().bot.set_webhook(url=url, secret_token=secret)

    async def _fw_delete_webhook(self) -> None:
        await self._app().bot.delete_webhook()

    # ---- updates -------------------------------------------------------------------------------

    async def _fw_get_updates(self, offset: int | None, wait: int, limit: int) -> list[Any]:
        request = self._updates_request
        assert request is not None
        try:
            await self._app().bot.get_updates(offset=offset, limit=limit, timeout=wait, read_timeout=_API_TIMEOUT)
        except TelegramError:
            raise
        except Exception as exc:
            # The batch arrived but PTB couldn't parse all of it; each update gets its own try later.
            log.debug("PTB could not parse the whole batch (%s); parsing update by update", exc)
        try:
            result = json.loads(request.last_payload or b"")["result"]
        except (ValueError, KeyError, TypeError) as exc:
            raise NetworkError(f"unreadable getUpdates response: {exc}") from exc
        return list(result) if isinstance(result, list) else []

    async def _fw_process(self, raw: RawUpdate) -> None:
        try:
            await self._ensure_initialized()
        except Exception as exc:
            raise TransientError(f"bot not initialized: {exc}") from exc
        app = self._app()
        try:
            update = Update.de_json(raw, app.bot)
        except Exception as exc:
            raise MalformedUpdate(f"{type(exc).__name__}: {exc}") from exc
        dispatch = _Dispatch(raw)
        token = _current.set(dispatch)
        try:
            await app.process_update(update)
        finally:
            _current.reset(token)
        if dispatch.error is not None:
            raise dispatch.error
        if not dispatch.handled:
            await self._deliver(lambda: None, raw)

    async def _run_handler(self, make: Callable[[RawUpdate], Incoming | None]) -> None:
        """Convert and deliver; keep on_update's exception for _fw_process instead of PTB's error handlers."""
        dispatch = _current.get()
        if dispatch is None:  # process_update called by someone else
            log.warning("PTB update processed outside the transport; ignored")
            return
        dispatch.handled = True
        raw = dispatch.raw
        try:
            await self._deliver(lambda: make(raw), raw)
        except Exception as exc:
            dispatch.error = exc

    async def _on_message(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.message
        await self._run_handler(lambda raw: message_to_incoming(message, raw) if message else None)

    async def _on_edited_message(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.edited_message
        await self._run_handler(lambda raw: message_to_incoming(message, raw, edited=True) if message else None)

    async def _on_callback(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        if query is None:
            return
        await self._run_handler(lambda raw: callback_to_incoming(query, raw))
        dispatch = _current.get()
        if dispatch is not None and dispatch.error is None:
            # Only after on_update returned: if it raised, the redelivered press gets answered then.
            await self._logged("answerCallbackQuery", query.answer)

    # ---- sending -------------------------------------------------------------------------------

    async def _fw_send_text(self, chat_id: int | str, html_text: str, buttons: Buttons, keyboard: Keyboard,
                            reply_to: int | None) -> int:
        sent = await self._app().bot.send_message(
            chat_id=chat_id, text=html_text, parse_mode=ParseMode.HTML, reply_markup=_markup(buttons, keyboard),
            reply_parameters=_reply(reply_to),
        )
        return int(sent.message_id)

    async def _fw_send_file(self, kind: str, chat_id: int | str, file: Document, caption_html: str | None,
                            buttons: Buttons, keyboard: Keyboard, reply_to: int | None) -> int:
        upload = InputFile(file.content, filename=file.filename, attach=False)
        common: dict[str, Any] = {
            "chat_id": chat_id, "caption": caption_html, "parse_mode": ParseMode.HTML if caption_html else None,
            "reply_markup": _markup(buttons, keyboard), "reply_parameters": _reply(reply_to),
        }
        bot = self._app().bot
        if kind == "photo":
            sent = await bot.send_photo(photo=upload, **common)
        else:
            sent = await bot.send_document(document=upload, **common)
        return int(sent.message_id)

    async def _fw_edit_text(self, chat_id: int | str, message_id: int, html_text: str, buttons: Buttons) -> int:
        edited = await self._app().bot.edit_message_text(
            chat_id=chat_id, message_id=message_id, text=html_text, parse_mode=ParseMode.HTML,
            reply_markup=_inline(buttons),
        )
        return edited.message_id if isinstance(edited, Message) else message_id

    def _map_error(self, exc: BaseException) -> DeliveryError:
        if isinstance(exc, PTBRetryAfter):
            with warnings.catch_warnings():  # PTB 22 warns that the int will become a timedelta; both handled
                warnings.simplefilter("ignore", PTBDeprecationWarning)
                wait = exc.retry_after
            return RetryAfter(wait.total_seconds() if isinstance(wait, dtm.timedelta) else float(wait))
        if isinstance(exc, Forbidden):
            return PermanentError(exc.message, blocked=True)
        if isinstance(exc, ChatMigrated):
            return PermanentError(f"group moved to supergroup {exc.new_chat_id}")
        # BadRequest subclasses NetworkError in PTB, so it must be looked at first.
        if isinstance(exc, BadRequest | InvalidToken | Conflict | EndPointNotFound):
            return PermanentError(exc.message)
        if isinstance(exc, TimedOut | NetworkError | httpx.HTTPError | TimeoutError | OSError):
            return TransientError(f"{type(exc).__name__}: {exc}")
        return TransientError(f"unexpected {type(exc).__name__}: {exc}")

    # ---- files -----------------------------------------------------------------------------------

    async def _fw_file_info(self, file_id: str) -> tuple[str, int | None]:
        info = await self._app().bot.get_file(file_id)
        if not info.file_path:
            raise PermanentError("Telegram gave no file_path for this file")
        return info.file_path, info.file_size

    async def _fw_fetch_file(self, file_path: str, limit: int) -> bytes:
        # PTB has no streaming download; file_size was checked before, and the length is checked after.
        data = await self._app().bot.request.retrieve(file_path, read_timeout=_DOWNLOAD_TIMEOUT)
        return bytes(data)
