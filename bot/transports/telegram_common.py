"""Framework-independent half of the Telegram transports: delivery semantics, polling loop, webhook
server, update-to-Incoming conversion and the shape of outgoing messages. The aiogram and PTB modules
subclass `TelegramTransportBase` and supply only the calls into their framework.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import hmac
import html
import json
import logging
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from bot.transports.base import (
    Capabilities,
    DeliveryError,
    OnUpdate,
    OutMessage,
    PermanentError,
    Sent,
    TransientError,
    split_text,
)
from handlers.types import Attachment, Button, ChatRef, Document, Incoming

log = logging.getLogger("bot.transports.telegram")

CHANNEL = "telegram"
MAX_TEXT = 4096
MAX_CAPTION = 1024
CAPABILITIES = Capabilities(
    name=CHANNEL,
    max_text=MAX_TEXT,
    inline_buttons=True,
    reply_keyboard=True,
    edit_messages=True,
    files=True,
    global_rate=30.0,
    per_chat_interval=1.0,
    group_per_minute=20,
)
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"

Buttons = tuple[tuple[Button, ...], ...]
Keyboard = tuple[tuple[str, ...], ...] | None
RawUpdate = dict[str, Any]


class MalformedUpdate(Exception):
    """The framework could not parse an update; it is skipped (confirmed) rather than retried forever."""


class FileTooLarge(PermanentError):
    """A download above the transport's max_file_size."""


def escape(text: str) -> str:
    """Plain text → Telegram HTML that displays exactly that text."""
    return html.escape(text, quote=False)


def chat_id_param(chat_id: str) -> int | str:
    """Telegram wants numeric chat ids as integers; "@channel" names stay strings."""
    stripped = chat_id.strip()
    return int(stripped) if stripped.lstrip("-").isdigit() else stripped


def message_id_param(message_id: str | None) -> int | None:
    if message_id is None or not str(message_id).strip().isdigit():
        return None
    return int(message_id)


def is_not_modified(exc: BaseException) -> bool:
    return "message is not modified" in str(exc).lower()


def is_webhook_conflict(exc: BaseException) -> bool:
    return "webhook is active" in str(exc).lower()


class Backoff:
    """0.5 s doubling to a 10 s ceiling; reset after a success."""

    def __init__(self, first: float = 0.5, ceiling: float = 10.0) -> None:
        self.first = first
        self.ceiling = ceiling
        self._next = first

    def next(self) -> float:
        delay = self._next
        self._next = min(self._next * 2, self.ceiling)
        return delay

    def reset(self) -> None:
        self._next = self.first


# ---- incoming ------------------------------------------------------------------------------------
# aiogram and PTB name Telegram's fields identically (from_user, reply_to_message, photo, ...), so one
# duck-typed converter serves both and keeps their Incoming identical.


def _unix(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return int(value.timestamp())
    return int(value)


def _as_datetime(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromtimestamp(int(value), UTC)


def _file_attachment(kind: Any, obj: Any, mime: str | None = None) -> Attachment:
    return Attachment(
        kind=kind,
        file_id=obj.file_id,
        file_name=getattr(obj, "file_name", None),
        mime=getattr(obj, "mime_type", None) or mime,
        size=getattr(obj, "file_size", None),
    )


def attachments_of(m: Any) -> tuple[Attachment, ...]:
    found: list[Attachment] = []
    if getattr(m, "photo", None):
        found.append(_file_attachment("photo", m.photo[-1], "image/jpeg"))  # the last size is the largest
    if getattr(m, "voice", None):
        found.append(_file_attachment("voice", m.voice))
    for attr in ("video", "video_note"):
        if getattr(m, attr, None):
            found.append(_file_attachment("video", getattr(m, attr)))
    if getattr(m, "animation", None):
        found.append(_file_attachment("other", m.animation))
    elif getattr(m, "document", None):  # an animation also carries a document copy of itself
        found.append(_file_attachment("document", m.document))
    if getattr(m, "audio", None):
        found.append(_file_attachment("other", m.audio))
    if getattr(m, "sticker", None):
        found.append(_file_attachment("sticker", m.sticker))
    location = getattr(m, "location", None)
    if location is not None:
        found.append(Attachment(kind="location", latitude=location.latitude, longitude=location.longitude))
    if not found and any(getattr(m, attr, None) for attr in ("contact", "poll", "dice", "game", "story")):
        found.append(Attachment(kind="other"))
    return tuple(found)


def _chat_ref(chat: Any) -> ChatRef:
    return ChatRef(channel=CHANNEL, chat_id=str(chat.id), is_group=str(chat.type) in ("group", "supergroup"))


def _sender(m: Any) -> tuple[str, str]:
    user = getattr(m, "from_user", None)
    if user is not None:
        name = " ".join(p for p in (user.first_name, user.last_name) if p)
        return str(user.id), name
    sender_chat = getattr(m, "sender_chat", None) or m.chat
    return str(sender_chat.id), getattr(sender_chat, "title", None) or ""


def message_to_incoming(m: Any, raw: RawUpdate, *, edited: bool = False) -> Incoming | None:
    """A framework Message (or edited message) as Incoming; None for what the bot doesn't handle."""
    if str(m.chat.type) == "channel":
        return None
    text = m.text or m.caption or ""
    attachments = attachments_of(m)
    if not text and not attachments:
        return None  # service messages: joins, pins, title changes
    sender_id, sender_name = _sender(m)
    reply = getattr(m, "reply_to_message", None)
    edit_unix = _unix(getattr(m, "edit_date", None)) if edited else None
    if edited and edit_unix is None:
        edit_unix = int(raw.get("edited_message", {}).get("edit_date") or 0)
    return Incoming(
        chat=_chat_ref(m.chat),
        sender_id=sender_id,
        message_id=str(m.message_id),
        kind="edit" if edited else "message",
        text=text,
        sender_name=sender_name,
        reply_to_message_id=str(reply.message_id) if reply is not None else None,
        attachments=attachments,
        sent_at=_as_datetime(m.edit_date if edited and m.edit_date else m.date),
        dedup_key=f"{m.message_id}:e{edit_unix}" if edited else None,
        raw=raw,
    )


def callback_to_incoming(cq: Any, raw: RawUpdate) -> Incoming | None:
    """A button press. `message_id`/`reply_to_message_id` name the message holding the button."""
    holder = getattr(cq, "message", None)
    if holder is None:
        return None  # inline-mode buttons have no chat; the bot sends no inline-mode messages
    user = cq.from_user
    return Incoming(
        chat=_chat_ref(holder.chat),
        sender_id=str(user.id),
        message_id=str(holder.message_id),
        kind="callback",
        sender_name=" ".join(p for p in (user.first_name, user.last_name) if p),
        callback_data=cq.data,
        reply_to_message_id=str(holder.message_id),
        sent_at=datetime.now(UTC),
        dedup_key=f"cb:{cq.id}",
        raw=raw,
    )


def update_id_of(raw: Any) -> int | None:
    uid = raw.get("update_id") if isinstance(raw, dict) else None
    return uid if isinstance(uid, int) and not isinstance(uid, bool) else None


# ---- polling -------------------------------------------------------------------------------------

FetchUpdates = Callable[[int | None, int, int], Awaitable[list[Any]]]
ProcessUpdate = Callable[[RawUpdate], Awaitable[None]]


class Poller:
    """getUpdates loop that confirms an update (advances the offset) only once it was processed."""

    def __init__(self, fetch: FetchUpdates, process: ProcessUpdate, *, poll_timeout: int,
                 stop_grace: float = 10.0, concurrency: int = 1) -> None:
        self.concurrency = concurrency
        self._fetch = fetch
        self._process = process
        self._poll_timeout = poll_timeout
        self._stop_grace = stop_grace
        self._offset: int | None = None
        self._confirmed: int | None = None
        self._busy = False
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    @property
    def offset(self) -> int | None:
        return self._offset

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="telegram-polling")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping = True
        # Interrupt a long poll or a backoff sleep at once, but let an update being processed finish:
        # cancelling on_update half-way would leave the caller's work in an unknown state.
        if not self._busy:
            task.cancel()
        done, _ = await asyncio.wait({task}, timeout=self._stop_grace)
        if not done:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        if self._offset is not None and self._offset != self._confirmed:
            try:  # confirm what was processed so a restart doesn't see it again
                await self._fetch(self._offset, 0, 1)
            except Exception as exc:
                log.warning("could not confirm updates below %s on stop: %s", self._offset, exc)

    async def _run(self) -> None:
        fetch_backoff, process_backoff = Backoff(), Backoff()
        while not self._stopping:
            try:
                self._confirmed = self._offset
                batch = await self._fetch(self._offset, self._poll_timeout, 100)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                delay = fetch_backoff.next()
                log.error("getUpdates failed (%s: %s); retrying in %.1fs", type(exc).__name__, exc, delay)
                await asyncio.sleep(delay)
                continue
            fetch_backoff.reset()
            failed = await self._process_batch(batch)
            if failed is not None:
                delay = process_backoff.next()
                log.warning("update %s will be fetched and retried in %.1fs", failed, delay)
                await asyncio.sleep(delay)
            elif batch:
                process_backoff.reset()

    async def _process_batch(self, batch: list[Any]) -> int | None:
        """Process a batch, one queue per chat: a chat's updates in order, different chats concurrently
        (bounded). The offset advances only past the longest prefix of the batch that was processed, so a
        failure is fetched again; later updates of other chats that did succeed come back too and are
        no-ops, because dispatch keys the inbox by message. Returns the first failed update_id."""
        queues: dict[str, list[tuple[int, Any]]] = {}
        for raw in batch:
            uid = update_id_of(raw)
            if uid is None:
                log.error("skipping an update without update_id: %.500r", raw)
                continue
            if self._offset is not None and uid < self._offset:
                continue
            queues.setdefault(chat_key_of(raw), []).append((uid, raw))
        if not queues:
            return None
        failed: list[int] = []
        sem = asyncio.Semaphore(self.concurrency)

        async def run_chat(items: list[tuple[int, Any]]) -> None:
            for uid, raw in items:
                if self._stopping:
                    failed.append(uid)  # not processed: must not be confirmed
                    return
                async with sem:
                    try:
                        await self._process(raw)
                    except MalformedUpdate as exc:
                        log.error("skipping malformed update %s: %s; raw=%.1000r", uid, exc, raw)
                    except Exception:
                        log.exception("processing update %s failed; it stays unconfirmed", uid)
                        failed.append(uid)
                        return  # this chat's later updates wait behind it: order per chat

        self._busy = True
        try:
            await asyncio.gather(*(run_chat(items) for items in queues.values()))
        finally:
            self._busy = False
        if failed:
            first = min(failed)
            self._offset = first if self._offset is None else max(self._offset, first)
            return None if self._stopping else first
        self._offset = max(uid for items in queues.values() for uid, _ in items) + 1
        return None


def chat_key_of(raw: Any) -> str:
    """The chat an update belongs to, for per-chat ordering; unknown shapes share one queue."""
    if isinstance(raw, dict):
        for kind in ("message", "edited_message", "callback_query", "channel_post", "edited_channel_post"):
            obj = raw.get(kind)
            if isinstance(obj, dict):
                msg = obj.get("message") if kind == "callback_query" else obj
                chat = msg.get("chat") if isinstance(msg, dict) else None
                if isinstance(chat, dict) and chat.get("id") is not None:
                    return str(chat["id"])
                user = obj.get("from")
                if isinstance(user, dict) and user.get("id") is not None:
                    return f"u{user['id']}"
    return "?"


# ---- webhook -------------------------------------------------------------------------------------


class WebhookServer:
    """aiohttp endpoint Telegram POSTs updates to: 401 bad secret, 400 bad JSON, 500 not processed."""

    def __init__(self, process: ProcessUpdate, *, secret: str, host: str, port: int, path: str,
                 routes: Sequence[web.RouteDef] = ()) -> None:
        self._process = process
        self._routes = list(routes)  # the process's own /healthz and /metrics (bot/metrics.py)
        self._secret = secret.encode()
        self._host = host
        self._port = port
        self._path = path
        self._runner: web.AppRunner | None = None

    @property
    def port(self) -> int | None:
        if self._runner is None or not self._runner.addresses:
            return None
        return int(self._runner.addresses[0][1])

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post(self._path, self._handle)
        app.add_routes(self._routes)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=5.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, self._host, self._port).start()
        log.info("telegram webhook listening on %s:%s%s", self._host, self.port, self._path)

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        given = request.headers.get(SECRET_HEADER, "").encode()
        if not hmac.compare_digest(given, self._secret):
            log.warning("webhook call with a wrong or missing secret from %s", request.remote)
            return web.Response(status=401, text="unauthorized")
        body = await request.read()
        try:
            raw = json.loads(body)
        except ValueError:
            log.warning("webhook body is not JSON: %.200r", body)
            return web.Response(status=400, text="bad json")
        if not isinstance(raw, dict):
            log.warning("webhook body is not an update object: %.200r", body)
            return web.Response(status=400, text="bad update")
        try:
            await self._process(raw)
        except MalformedUpdate as exc:
            # Answering 200: Telegram would otherwise redeliver an update we can never parse.
            log.error("skipping malformed update %s: %s; raw=%.1000r", update_id_of(raw), exc, raw)
        except Exception:
            log.exception("processing update %s failed; answering 500 so Telegram redelivers",
                          update_id_of(raw))
            return web.Response(status=500, text="not processed")
        return web.Response(status=200, text="ok")


# ---- the shared transport ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Step:
    """One Bot API message in the plan for an OutMessage."""

    html: str | None
    buttons: Buttons = ()
    keyboard: Keyboard = None
    file_kind: str | None = None  # "document" | "photo"
    file: Document | None = None
    reply_to: int | None = None


def plan_message(msg: OutMessage) -> list[_Step]:
    """Turn an OutMessage into Telegram messages: files first, text split at 4096, markup on the last.

    With both inline buttons and a reply keyboard (Telegram allows one markup per message) the
    keyboard rides on the first message when there are several, otherwise the buttons win.
    """
    reply_to = message_id_param(msg.reply_to_message_id)
    files = [(kind, f) for kind, f in (("photo", msg.photo), ("document", msg.document)) if f is not None]
    text = msg.text or ""
    caption: str | None = None
    if files and text and len(text) <= MAX_CAPTION:
        caption, text = text, ""
    steps: list[_Step] = [
        _Step(html=escape(caption) if caption and i == len(files) - 1 else None, file_kind=kind, file=f)
        for i, (kind, f) in enumerate(files)
    ]
    if text.strip():
        steps += [_Step(html=escape(chunk)) for chunk in split_text(text, MAX_TEXT)]
    if not steps:
        raise PermanentError("nothing to send: empty text and no file")
    last = steps[-1]
    steps[-1] = _Step(last.html, msg.buttons, None if msg.buttons else msg.keyboard, last.file_kind, last.file)
    if msg.buttons and msg.keyboard is not None:
        if len(steps) > 1:
            first = steps[0]
            steps[0] = _Step(first.html, (), msg.keyboard, first.file_kind, first.file)
        else:
            log.debug("both inline buttons and a reply keyboard for one message; the keyboard is dropped")
    first = steps[0]
    steps[0] = _Step(first.html, first.buttons, first.keyboard, first.file_kind, first.file, reply_to)
    return steps


class TelegramTransportBase(abc.ABC):
    """Start/stop, polling and webhook delivery, send orchestration and error mapping hooks."""

    name = CHANNEL
    capabilities = CAPABILITIES

    def __init__(
        self,
        token: str,
        *,
        api_base: str | None = None,
        webhook_url: str | None = None,
        webhook_secret: str | None = None,
        listen_host: str = "127.0.0.1",
        listen_port: int = 8081,
        webhook_path: str = "/telegram/webhook",
        commands: Sequence[tuple[str, str]] = (),
        poll_timeout: int = 25,
        max_file_size: int = 20_000_000,
        poll_concurrency: int = 1,
    ) -> None:
        self.token = token
        # How many chats' updates a polling batch processes at once (order kept per chat). One suits
        # SQLite, whose single writer makes concurrent transactions queue and sleep on its lock; more
        # suits PostgreSQL (measured: 31 vs 14 updates/s in bench/e2e.py). The app sets it.
        self.poll_concurrency = poll_concurrency
        self.api_base = api_base.rstrip("/") if api_base else None
        self.webhook_url = webhook_url
        # Without a configured secret anyone who guesses the URL could inject updates; make one up.
        self.webhook_secret = webhook_secret or secrets.token_urlsafe(32)
        self.listen_host = listen_host
        self.listen_port = listen_port
        self.webhook_path = webhook_path
        self.commands = tuple(commands)
        self.poll_timeout = poll_timeout
        self.max_file_size = max_file_size
        self._on_update: OnUpdate | None = None
        self._poller: Poller | None = None
        self._webhook: WebhookServer | None = None
        # Extra GET routes for the webhook server (health, metrics), set by the App before start.
        self.http_routes: list[web.RouteDef] = []
        self._background: set[asyncio.Task[None]] = set()
        self._started = False

    # ---- framework hooks ----------------------------------------------------------------------

    @abc.abstractmethod
    async def _fw_open(self) -> None: ...

    @abc.abstractmethod
    async def _fw_close(self) -> None: ...

    @abc.abstractmethod
    async def _fw_get_me(self) -> None: ...

    @abc.abstractmethod
    async def _fw_set_commands(self, commands: Sequence[tuple[str, str]]) -> None: ...

    @abc.abstractmethod
    async def _fw_set_webhook(self, url: str, secret: str) -> None: ...

    @abc.abstractmethod
    async def _fw_delete_webhook(self) -> None: ...

    @abc.abstractmethod
    async def _fw_get_updates(self, offset: int | None, wait: int, limit: int) -> list[Any]: ...

    @abc.abstractmethod
    async def _fw_process(self, raw: RawUpdate) -> None:
        """Parse (raise MalformedUpdate if impossible) and feed through the framework's dispatcher."""

    @abc.abstractmethod
    async def _fw_send_text(self, chat_id: int | str, html_text: str, buttons: Buttons, keyboard: Keyboard,
                            reply_to: int | None) -> int: ...

    @abc.abstractmethod
    async def _fw_send_file(self, kind: str, chat_id: int | str, file: Document, caption_html: str | None,
                            buttons: Buttons, keyboard: Keyboard, reply_to: int | None) -> int: ...

    @abc.abstractmethod
    async def _fw_edit_text(self, chat_id: int | str, message_id: int, html_text: str,
                            buttons: Buttons) -> int: ...

    @abc.abstractmethod
    async def _fw_file_info(self, file_id: str) -> tuple[str, int | None]:
        """getFile → (file_path, file_size)."""

    @abc.abstractmethod
    async def _fw_fetch_file(self, file_path: str, limit: int) -> bytes: ...

    @abc.abstractmethod
    def _map_error(self, exc: BaseException) -> DeliveryError: ...

    def serves_http(self) -> bool:
        return bool(self.webhook_url)

    # ---- lifecycle -----------------------------------------------------------------------------

    async def start(self, on_update: OnUpdate) -> None:
        if self._started:
            raise RuntimeError("transport already started")
        self._on_update = on_update
        await self._fw_open()
        self._started = True
        await self._logged("getMe", self._fw_get_me)
        if self.commands:
            await self._logged("setMyCommands", lambda: self._fw_set_commands(self.commands))
        if self.webhook_url:
            self._webhook = WebhookServer(self._fw_process, secret=self.webhook_secret, host=self.listen_host,
                                          port=self.listen_port, path=self.webhook_path, routes=self.http_routes)
            await self._webhook.start()
            url = self.webhook_url
            if not await self._logged("setWebhook", lambda: self._fw_set_webhook(url, self.webhook_secret)):
                self._retry_in_background("setWebhook", lambda: self._fw_set_webhook(url, self.webhook_secret))
        else:
            await self._logged("deleteWebhook", self._fw_delete_webhook)
            self._poller = Poller(self._get_updates, self._fw_process, poll_timeout=self.poll_timeout,
                                  concurrency=self.poll_concurrency)
            self._poller.start()

    async def stop(self) -> None:
        if not self._started:
            return
        self._started = False
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        if self._poller is not None:
            await self._poller.stop()
            self._poller = None
        if self._webhook is not None:
            await self._webhook.stop()
            self._webhook = None
        await self._fw_close()

    @property
    def webhook_port(self) -> int | None:
        """The bound port in webhook mode (useful with listen_port=0)."""
        return self._webhook.port if self._webhook else None

    async def _logged(self, what: str, call: Callable[[], Awaitable[object]]) -> bool:
        """Run a housekeeping call; its failure is logged and survived."""
        try:
            await call()
            return True
        except Exception as exc:
            log.error("%s failed (%s: %s); carrying on", what, type(exc).__name__, exc)
            return False

    def _retry_in_background(self, what: str, call: Callable[[], Awaitable[object]]) -> None:
        async def retry() -> None:
            backoff = Backoff(first=1.0, ceiling=60.0)
            while True:
                await asyncio.sleep(backoff.next())
                if await self._logged(what, call):
                    log.info("%s succeeded on retry", what)
                    return

        task = asyncio.create_task(retry(), name=f"telegram-retry-{what}")
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _get_updates(self, offset: int | None, wait: int, limit: int) -> list[Any]:
        try:
            return await self._fw_get_updates(offset, wait, limit)
        except Exception as exc:
            if is_webhook_conflict(exc):  # someone (or an old deployment) set a webhook; take polling back
                await self._logged("deleteWebhook", self._fw_delete_webhook)
            raise

    async def _deliver(self, convert: Callable[[], Incoming | None], raw: RawUpdate) -> bool:
        """Convert an update and hand it to on_update. False when it is one the bot ignores."""
        try:
            incoming = convert()
        except Exception as exc:
            # A conversion bug must not wedge the queue behind this one update: skip it, loudly.
            log.exception("could not convert update %s", update_id_of(raw))
            raise MalformedUpdate(f"conversion failed: {type(exc).__name__}: {exc}") from exc
        if incoming is None:
            log.debug("ignoring update %s (%s)", update_id_of(raw), ", ".join(k for k in raw if k != "update_id"))
            return False
        if self._on_update is None:
            raise TransientError("transport not started")
        await self._on_update(incoming)
        return True

    # ---- sending -------------------------------------------------------------------------------

    async def send(self, msg: OutMessage) -> Sent:
        chat_id = chat_id_param(msg.chat.chat_id)
        try:
            if msg.edit_message_id is not None:
                return await self._edit(chat_id, msg)
            last_id: int | None = None
            for step in plan_message(msg):
                if step.file is not None and step.file_kind is not None:
                    last_id = await self._fw_send_file(step.file_kind, chat_id, step.file, step.html,
                                                       step.buttons, step.keyboard, step.reply_to)
                else:
                    assert step.html is not None
                    last_id = await self._fw_send_text(chat_id, step.html, step.buttons, step.keyboard,
                                                       step.reply_to)
            return Sent(message_id=str(last_id) if last_id is not None else None)
        except DeliveryError:
            raise
        except Exception as exc:
            raise self._map_error(exc) from exc

    async def _edit(self, chat_id: int | str, msg: OutMessage) -> Sent:
        message_id = message_id_param(msg.edit_message_id)
        if message_id is None:
            raise PermanentError(f"not a Telegram message id: {msg.edit_message_id!r}")
        chunks = split_text(msg.text or "", MAX_TEXT)
        if len(chunks) > 1:
            log.warning("edit of message %s is longer than %d characters; it is cut", message_id, MAX_TEXT)
        try:
            edited = await self._fw_edit_text(chat_id, message_id, escape(chunks[0]), msg.buttons)
        except Exception as exc:
            if is_not_modified(exc):
                return Sent(message_id=str(message_id))
            raise
        return Sent(message_id=str(edited))

    # ---- files -----------------------------------------------------------------------------------

    async def download(self, file_id: str) -> bytes:
        """A user's file by its file_id; FileTooLarge above max_file_size."""
        try:
            path, size = await self._fw_file_info(file_id)
            if size is not None and size > self.max_file_size:
                raise FileTooLarge(f"file is {size} bytes, the limit is {self.max_file_size}")
            data = await self._fw_fetch_file(path, self.max_file_size)
        except DeliveryError:
            raise
        except Exception as exc:
            raise self._map_error(exc) from exc
        if len(data) > self.max_file_size:
            raise FileTooLarge(f"file is over {self.max_file_size} bytes")
        return data
