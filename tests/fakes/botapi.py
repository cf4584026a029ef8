"""A fake Telegram Bot API server (aiohttp on 127.0.0.1) for tests of anything that talks to Telegram.

Owns the wire format: real response shapes, update queue with long polling, uploads, webhooks,
failure injection and optional flood-limit enforcement. Self-contained: import `FakeBotAPI` and go.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import re
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

import aiohttp
from aiohttp import web

JSON = dict[str, Any]

# Fields Telegram expects as JSON-serialized objects when they arrive as form fields.
_JSON_FIELDS = frozenset(
    {
        "reply_markup", "commands", "scope", "reply_parameters", "link_preview_options", "entities",
        "caption_entities", "allowed_updates", "media",
    }
)
_INT_FIELDS = frozenset(
    {"message_id", "offset", "limit", "timeout", "reply_to_message_id", "cache_time", "max_connections"}
)
_SEND_METHODS = frozenset({"sendMessage", "sendDocument", "sendPhoto"})
_TELEGRAM_HTML_TAGS = frozenset(
    {
        "b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "a", "code", "pre", "span",
        "tg-spoiler", "tg-emoji", "blockquote",
    }
)
_ENTITY_TYPES = {
    "b": "bold", "strong": "bold", "i": "italic", "em": "italic", "u": "underline", "ins": "underline",
    "s": "strikethrough", "strike": "strikethrough", "del": "strikethrough", "a": "text_link",
    "code": "code", "pre": "pre", "span": "spoiler", "tg-spoiler": "spoiler", "blockquote": "blockquote",
}
_SECRET_RE = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
_COMMAND_RE = re.compile(r"^[a-z0-9_]{1,32}$")
_ERROR_DESCRIPTIONS = {
    400: "Bad Request: injected error",
    401: "Unauthorized",
    403: "Forbidden: bot was blocked by the user",
    404: "Not Found",
    409: "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running",
    500: "Internal Server Error",
    502: "Bad Gateway",
}
_NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup are exactly "
    "the same as a current content and reply markup of the message"
)
_USE_SET_SECRET: Any = object()


class ApiError(Exception):
    """An error response, shaped like Telegram's: {"ok": false, "error_code", "description"}."""

    def __init__(self, status: int, description: str | None = None, *, retry_after: int | None = None):
        super().__init__(description)
        self.status = status
        self.description = description or _ERROR_DESCRIPTIONS.get(status, "Error")
        self.retry_after = retry_after

    def body(self) -> JSON:
        body: JSON = {"ok": False, "error_code": self.status, "description": self.description}
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
        return body


@dataclass(frozen=True, slots=True)
class UploadedFile:
    filename: str
    content: bytes
    content_type: str | None = None


@dataclass(slots=True)
class RecordedCall:
    """One Bot API call the client made, whatever its outcome."""

    method: str
    params: JSON
    files: dict[str, UploadedFile]
    timestamp: float
    status: int = 200
    response: JSON | None = None

    @property
    def ok(self) -> bool:
        return self.status == 200


@dataclass(slots=True)
class StoredFile:
    file_id: str
    file_unique_id: str
    content: bytes
    file_path: str
    filename: str | None = None
    mime: str | None = None


@dataclass(slots=True)
class _Injection:
    status: int
    retry_after: int | None
    description: str | None
    remaining: int


@dataclass(slots=True)
class _Chat:
    info: JSON
    next_message_id: int = 1
    messages: dict[int, JSON] = field(default_factory=dict)
    bot_message_ids: list[int] = field(default_factory=list)


class _TelegramHTML(HTMLParser):
    """Telegram's HTML subset: known tags only, and every `<` must start a tag."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.text = ""
        self.entities: list[JSON] = []
        self._open: list[tuple[str, int, JSON]] = []

    def _offset(self) -> int:
        return len(self.text.encode("utf-16-le")) // 2

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in _TELEGRAM_HTML_TAGS:
            raise ApiError(400, f'Bad Request: can\'t parse entities: Unsupported start tag "{tag}"')
        self._open.append((tag, self._offset(), dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        if not self._open or self._open[-1][0] != tag:
            raise ApiError(400, f'Bad Request: can\'t parse entities: Unmatched end tag "{tag}"')
        name, start, attrs = self._open.pop()
        length = self._offset() - start
        if length and name in _ENTITY_TYPES:
            entity: JSON = {"type": _ENTITY_TYPES[name], "offset": start, "length": length}
            if name == "a":
                entity["url"] = attrs.get("href") or ""
            self.entities.append(entity)

    def handle_data(self, data: str) -> None:
        self.text += data


def render_html(text: str) -> tuple[str, list[JSON]]:
    """What Telegram shows for `text` sent with parse_mode=HTML: plain text plus entities."""
    if re.search(r"<(?![a-zA-Z/])", text):
        raise ApiError(400, "Bad Request: can't parse entities: Unsupported start tag")
    parser = _TelegramHTML()
    parser.feed(text)
    parser.close()
    if parser._open:
        raise ApiError(400, f'Bad Request: can\'t parse entities: Can\'t find end tag "{parser._open[-1][0]}"')
    return parser.text, sorted(parser.entities, key=lambda e: e["offset"])


class FakeBotAPI:
    """A local Bot API. Use `async with FakeBotAPI(token=...) as api:` and point a bot at `api.base_url`."""

    def __init__(
        self,
        token: str = "123456789:AAFakeTokenForTestsOnly_abcdefghijk",
        *,
        bot_username: str = "bangfu_test_bot",
        bot_first_name: str = "帮扶助手",
        enforce_limits: bool = False,
        global_rate: int = 30,
        private_interval: float = 1.0,
        group_per_minute: int = 20,
        max_download_size: int = 20 * 1024 * 1024,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.token = token
        head = token.split(":", 1)[0]
        self.bot_id = int(head) if head.isdigit() else 123456789
        self.bot_username = bot_username
        self.bot_first_name = bot_first_name
        self.enforce_limits = enforce_limits
        self.global_rate = global_rate
        self.private_interval = private_interval
        self.group_per_minute = group_per_minute
        self.max_download_size = max_download_size
        self._host = host
        self._port = port
        self._runner: web.AppRunner | None = None
        self._client: aiohttp.ClientSession | None = None
        self.base_url = ""

        self.sent: list[RecordedCall] = []
        self.count_429 = 0
        self.commands: list[JSON] | None = None
        self.webhook_url: str | None = None
        self.webhook_secret: str | None = None
        self.webhook_deliveries: list[tuple[int, int]] = []  # (update_id, http status)
        self.files: dict[str, StoredFile] = {}

        self._updates: list[JSON] = []
        self._next_update_id = 1
        self._poll_waiters: set[asyncio.Future[str]] = set()
        self._changed: asyncio.Event | None = None
        self._chats: dict[int, _Chat] = {}
        self._callback_ids: set[str] = set()
        self._ids = itertools.count(1)
        self._injections: dict[str, deque[_Injection]] = defaultdict(deque)
        self._outage_until = 0.0
        self._outage_status = 500
        self._outage_methods: frozenset[str] | None = None
        self._sent_global: deque[float] = deque()
        self._sent_per_chat: dict[int, deque[float]] = defaultdict(deque)

    # ---- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application(client_max_size=60 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle_method)
        app.router.add_get("/file/bot{token}/{path:.+}", self._handle_file)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port)
        await site.start()
        port = self._runner.addresses[0][1]
        self.base_url = f"http://{self._host}:{port}"
        self._changed = asyncio.Event()

    async def stop(self) -> None:
        for fut in self._poll_waiters:
            if not fut.done():
                fut.set_result("stop")
        if self._client is not None:
            await self._client.close()
            self._client = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeBotAPI:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ---- test-facing: updates ----------------------------------------------------------------

    def push_update(self, update: JSON) -> int:
        """Queue an update for getUpdates; assigns update_id when missing. Returns the update_id."""
        update = dict(update)
        if "update_id" not in update:
            update["update_id"] = self._next_update_id
        uid = int(update["update_id"])
        self._next_update_id = max(self._next_update_id, uid + 1)
        self._updates.append(update)
        self._updates.sort(key=lambda u: u["update_id"])
        for fut in self._poll_waiters:
            if not fut.done():
                fut.set_result("update")
        return uid

    @property
    def pending_updates(self) -> list[JSON]:
        """Updates not yet confirmed by a getUpdates offset."""
        return list(self._updates)

    def user(self, user_id: int, first_name: str = "张", last_name: str | None = "三",
             username: str | None = None) -> JSON:
        user: JSON = {"id": user_id, "is_bot": False, "first_name": first_name, "language_code": "zh-hans"}
        if last_name:
            user["last_name"] = last_name
        if username:
            user["username"] = username
        return user

    def chat(self, chat_id: int, *, chat_type: str | None = None, title: str | None = None,
             first_name: str = "张", last_name: str | None = "三") -> JSON:
        """The chat dict Telegram would send; groups need negative ids."""
        existing = self._chats.get(chat_id)
        if existing is not None and chat_type is None:
            return dict(existing.info)
        kind = chat_type or ("private" if chat_id > 0 else "supergroup")
        info: JSON = {"id": chat_id, "type": kind}
        if kind == "private":
            info["first_name"] = first_name
            if last_name:
                info["last_name"] = last_name
        else:
            info["title"] = title or f"村工作群 {chat_id}"
            if kind == "group":
                info["all_members_are_administrators"] = True
        self._chat(chat_id, info)
        return info

    def make_message(self, chat_id: int, user_id: int, *, text: str | None = None, message_id: int | None = None,
                     reply_to_message_id: int | None = None, chat_type: str | None = None,
                     first_name: str = "张", last_name: str | None = "三", date: int | None = None,
                     **content: Any) -> JSON:
        """A user's message dict, stored in the chat's history so replies and buttons can refer to it."""
        chat_info = self.chat(chat_id, chat_type=chat_type, first_name=first_name, last_name=last_name)
        chat = self._chat(chat_id, chat_info)
        mid = self._take_message_id(chat, message_id)
        msg: JSON = {
            "message_id": mid,
            "from": self.user(user_id, first_name, last_name),
            "chat": chat_info,
            "date": date or int(time.time()),
        }
        if text is not None:
            msg["text"] = text
            if text.startswith("/"):
                command = text.split()[0]
                msg["entities"] = [{"type": "bot_command", "offset": 0, "length": len(command)}]
        if reply_to_message_id is not None:
            msg["reply_to_message"] = self._message_stub(chat_id, reply_to_message_id)
        msg.update(content)
        chat.messages[mid] = msg
        return msg

    def make_text_update(self, chat_id: int, user_id: int, text: str, reply_to_message_id: int | None = None,
                         **kwargs: Any) -> JSON:
        return {"message": self.make_message(chat_id, user_id, text=text,
                                             reply_to_message_id=reply_to_message_id, **kwargs)}

    def make_edit_update(self, chat_id: int, user_id: int, message_id: int, text: str,
                         edit_date: int | None = None, **kwargs: Any) -> JSON:
        chat = self._chats.get(chat_id)
        original = chat.messages.get(message_id) if chat else None
        if original is None:
            original = self.make_message(chat_id, user_id, text=text, message_id=message_id, **kwargs)
        edited = dict(original)
        edited["text"] = text
        edited.pop("entities", None)
        edited["edit_date"] = edit_date or max(int(time.time()), int(original["date"]) + 1)
        self._chats[chat_id].messages[message_id] = edited
        return {"edited_message": edited}

    def make_callback_update(self, chat_id: int, user_id: int, data: str, message_id: int,
                             callback_id: str | None = None, **kwargs: Any) -> JSON:
        """A button press on message `message_id` (normally one the bot sent with an inline keyboard)."""
        callback_id = callback_id or str(4_000_000_000_000 + next(self._ids))
        self._callback_ids.add(callback_id)
        chat_info = self.chat(chat_id, **kwargs)
        return {
            "callback_query": {
                "id": callback_id,
                "from": self.user(user_id),
                "message": self._message_stub(chat_id, message_id, chat_info),
                "chat_instance": str(-7_000_000_000 - abs(chat_id)),
                "data": data,
            }
        }

    def make_photo_update(self, chat_id: int, user_id: int, content: bytes = b"\xff\xd8\xff\xe0fake-jpeg",
                          caption: str | None = None, **kwargs: Any) -> JSON:
        small = self.add_file(content[: max(1, len(content) // 4)], "photo_s.jpg", "image/jpeg", kind="photos")
        big = self.add_file(content, "photo.jpg", "image/jpeg", kind="photos")
        photo = [
            {"file_id": small, "file_unique_id": self.files[small].file_unique_id, "width": 90, "height": 67,
             "file_size": len(self.files[small].content)},
            {"file_id": big, "file_unique_id": self.files[big].file_unique_id, "width": 1280, "height": 960,
             "file_size": len(content)},
        ]
        extra: JSON = {"photo": photo}
        if caption is not None:
            extra["caption"] = caption
        return {"message": self.make_message(chat_id, user_id, **extra, **kwargs)}

    def make_document_update(self, chat_id: int, user_id: int, content: bytes, file_name: str = "表格.xlsx",
                             mime: str = "application/octet-stream", caption: str | None = None,
                             **kwargs: Any) -> JSON:
        fid = self.add_file(content, file_name, mime, kind="documents")
        doc = {"file_id": fid, "file_unique_id": self.files[fid].file_unique_id, "file_name": file_name,
               "mime_type": mime, "file_size": len(content)}
        extra: JSON = {"document": doc}
        if caption is not None:
            extra["caption"] = caption
        return {"message": self.make_message(chat_id, user_id, **extra, **kwargs)}

    def make_voice_update(self, chat_id: int, user_id: int, content: bytes = b"OggS-fake", duration: int = 3,
                          **kwargs: Any) -> JSON:
        fid = self.add_file(content, "voice.oga", "audio/ogg", kind="voice")
        voice = {"file_id": fid, "file_unique_id": self.files[fid].file_unique_id, "duration": duration,
                 "mime_type": "audio/ogg", "file_size": len(content)}
        return {"message": self.make_message(chat_id, user_id, voice=voice, **kwargs)}

    def make_location_update(self, chat_id: int, user_id: int, latitude: float, longitude: float,
                             **kwargs: Any) -> JSON:
        location = {"latitude": latitude, "longitude": longitude}
        return {"message": self.make_message(chat_id, user_id, location=location, **kwargs)}

    def make_sticker_update(self, chat_id: int, user_id: int, **kwargs: Any) -> JSON:
        fid = self.add_file(b"RIFF-webp", "sticker.webp", "image/webp", kind="stickers")
        sticker = {"file_id": fid, "file_unique_id": self.files[fid].file_unique_id, "type": "regular",
                   "width": 512, "height": 512, "is_animated": False, "is_video": False, "emoji": "👍",
                   "file_size": 9}
        return {"message": self.make_message(chat_id, user_id, sticker=sticker, **kwargs)}

    def make_channel_post_update(self, chat_id: int, text: str) -> JSON:
        chat_info = {"id": chat_id, "type": "channel", "title": "频道"}
        chat = self._chat(chat_id, chat_info)
        mid = self._take_message_id(chat, None)
        post = {"message_id": mid, "sender_chat": chat_info, "chat": chat_info, "date": int(time.time()),
                "text": text}
        return {"channel_post": post}

    def add_file(self, content: bytes, filename: str | None = None, mime: str | None = None,
                 *, kind: str = "documents") -> str:
        """Make a file downloadable via getFile; returns its file_id."""
        n = next(self._ids)
        file_id = f"BQACAgUAAxkBAAI{n:06d}fake"
        ext = filename.rsplit(".", 1)[-1] if filename and "." in filename else "bin"
        self.files[file_id] = StoredFile(file_id, f"AgAD{n:06d}", content, f"{kind}/file_{n}.{ext}", filename, mime)
        return file_id

    # ---- test-facing: inspection ---------------------------------------------------------------

    def calls(self, method: str | None = None, *, ok: bool | None = None) -> list[RecordedCall]:
        return [c for c in self.sent
                if (method is None or c.method == method) and (ok is None or c.ok == ok)]

    def messages_to(self, chat_id: int | str) -> list[JSON]:
        """Messages the bot sent to a chat, as they look now (after edits), in sending order."""
        chat = self._chats.get(int(chat_id))
        if chat is None:
            return []
        return [chat.messages[mid] for mid in chat.bot_message_ids]

    def message(self, chat_id: int | str, message_id: int | str) -> JSON | None:
        chat = self._chats.get(int(chat_id))
        return chat.messages.get(int(message_id)) if chat else None

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:  # noqa: ASYNC109
        """Wait until `predicate()` holds; it is re-checked after every API call and pushed update."""
        assert self._changed is not None, "server not started"
        deadline = asyncio.get_running_loop().time() + timeout
        while not predicate():
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                raise TimeoutError(f"condition not met within {timeout}s")
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), min(remaining, 0.05))
            except TimeoutError:
                pass

    async def wait_sent(self, n: int = 1, method: str | None = None, timeout: float = 5.0,  # noqa: ASYNC109
                        ok: bool | None = True) -> list[RecordedCall]:
        """Wait for `n` calls (successful by default) of `method`; None = any method but getUpdates."""

        def matching() -> list[RecordedCall]:
            return [c for c in self.calls(method, ok=ok) if method is not None or c.method != "getUpdates"]

        await self.wait_for(lambda: len(matching()) >= n, timeout)
        return matching()

    # ---- test-facing: failures -----------------------------------------------------------------

    def fail_next(self, method: str, status: int = 429, retry_after: int | None = 2, count: int = 1,
                  description: str | None = None) -> None:
        """The next `count` calls of `method` fail with `status` (retry_after only applies to 429)."""
        self._injections[method].append(
            _Injection(status, retry_after if status == 429 else None, description, count)
        )

    def fail_for(self, seconds: float, status: int = 500, methods: set[str] | None = None) -> None:
        """Every call (or every call of `methods`) fails with `status` for the next `seconds`."""
        self._outage_until = time.monotonic() + seconds
        self._outage_status = status
        self._outage_methods = frozenset(methods) if methods else None

    # ---- test-facing: webhooks -----------------------------------------------------------------

    async def deliver_webhook(self, update: JSON | bytes, *, secret: Any = _USE_SET_SECRET,
                              timeout: float = 10.0) -> int:  # noqa: ASYNC109
        """POST one update to the URL set by setWebhook, as Telegram does. Returns the HTTP status.

        `secret` overrides the header (None: send none); bytes are posted as the body verbatim.
        """
        if not self.webhook_url:
            raise RuntimeError("no webhook set")
        if self._client is None:
            self._client = aiohttp.ClientSession()
        headers = {"Content-Type": "application/json"}
        token = self.webhook_secret if secret is _USE_SET_SECRET else secret
        if token is not None:
            headers["X-Telegram-Bot-Api-Secret-Token"] = token
        if isinstance(update, bytes):
            body, uid = update, -1
        else:
            update = dict(update)
            if "update_id" not in update:
                update["update_id"] = self._next_update_id
            uid = int(update["update_id"])
            self._next_update_id = max(self._next_update_id, uid + 1)
            body = json.dumps(update, ensure_ascii=False).encode()
        async with self._client.post(self.webhook_url, data=body, headers=headers,
                                     timeout=aiohttp.ClientTimeout(total=timeout)) as resp:
            await resp.read()
            self.webhook_deliveries.append((uid, resp.status))
            return resp.status

    # ---- HTTP ----------------------------------------------------------------------------------

    async def _read_params(self, request: web.Request) -> tuple[JSON, dict[str, UploadedFile]]:
        raw: dict[str, Any] = dict(request.query)
        files: dict[str, UploadedFile] = {}
        if request.method == "POST" and request.can_read_body:
            ctype = request.content_type
            if ctype == "application/json":
                body = await request.json()
                if isinstance(body, dict):
                    raw.update(body)
            elif ctype in ("application/x-www-form-urlencoded", "multipart/form-data"):
                form = await request.post()
                for name, item in form.items():
                    if isinstance(item, web.FileField):
                        files[name] = UploadedFile(item.filename, item.file.read(), item.content_type)
                    else:
                        raw[name] = item
        params: JSON = {}
        value: Any
        for key, value in raw.items():
            if isinstance(value, str):
                if key in _JSON_FIELDS:
                    try:
                        value = json.loads(value)
                    except ValueError:
                        raise ApiError(400, f"Bad Request: can't parse {key} JSON object") from None
                elif key in _INT_FIELDS or (key == "chat_id" and re.fullmatch(r"-?\d+", value)):
                    try:
                        value = int(value)
                    except ValueError:
                        raise ApiError(400, f"Bad Request: invalid {key} specified") from None
                elif value in ("true", "True"):
                    value = True
                elif value in ("false", "False"):
                    value = False
            params[key] = value
        return params, files

    async def _handle_method(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        if request.match_info["token"] != self.token:
            return web.json_response({"ok": False, "error_code": 401, "description": "Unauthorized"},
                                     status=401)
        call = RecordedCall(method, {}, {}, time.time())
        self.sent.append(call)
        try:
            call.params, call.files = await self._read_params(request)
            self._inject_failure(method)
            handler = getattr(self, f"_api_{method}", None)
            if handler is None:
                raise ApiError(404, "Not Found: method not found")
            if method in _SEND_METHODS and self.enforce_limits:
                self._check_limits(call.params.get("chat_id"))
            result = await handler(call.params, call.files)
            if method in _SEND_METHODS and self.enforce_limits:
                self._count_sent(call.params.get("chat_id"))
            body: JSON = {"ok": True, "result": result}
            if method in ("setWebhook", "deleteWebhook"):
                body["description"] = "Webhook was set" if method == "setWebhook" else "Webhook was deleted"
            call.response = body
            return web.json_response(body, dumps=_dumps)
        except ApiError as err:
            call.status = err.status
            call.response = err.body()
            if err.status == 429:
                self.count_429 += 1
            return web.json_response(err.body(), status=err.status, dumps=_dumps)
        finally:
            self._signal()

    async def _handle_file(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return web.json_response({"ok": False, "error_code": 401, "description": "Unauthorized"},
                                     status=401)
        path = request.match_info["path"]
        for f in self.files.values():
            if f.file_path == path:
                return web.Response(body=f.content, content_type=f.mime or "application/octet-stream")
        return web.json_response({"ok": False, "error_code": 404, "description": "Not Found"}, status=404)

    def _signal(self) -> None:
        if self._changed is not None:
            self._changed.set()

    def _inject_failure(self, method: str) -> None:
        queue = self._injections.get(method)
        if queue:
            inj = queue[0]
            inj.remaining -= 1
            if inj.remaining <= 0:
                queue.popleft()
            description = inj.description
            if description is None and inj.status == 429:
                description = f"Too Many Requests: retry after {inj.retry_after}"
            raise ApiError(inj.status, description, retry_after=inj.retry_after)
        if time.monotonic() < self._outage_until and (
            self._outage_methods is None or method in self._outage_methods
        ):
            raise ApiError(self._outage_status, retry_after=1 if self._outage_status == 429 else None)

    def _check_limits(self, chat_id: Any) -> None:
        now = time.monotonic()
        # A little slack so a client pacing at exactly the limit isn't punished for clock jitter.
        slack = 0.02
        while self._sent_global and now - self._sent_global[0] >= 1.0 - slack:
            self._sent_global.popleft()
        if len(self._sent_global) >= self.global_rate:
            raise ApiError(429, "Too Many Requests: retry after 1", retry_after=1)
        if not isinstance(chat_id, int):
            return
        stamps = self._sent_per_chat[chat_id]
        window, allowed = (
            (self.private_interval, 1) if chat_id > 0 else (60.0, self.group_per_minute)
        )
        while stamps and now - stamps[0] >= window - slack:
            stamps.popleft()
        if len(stamps) >= allowed:
            wait = max(1, math.ceil(window - (now - stamps[0])))
            raise ApiError(429, f"Too Many Requests: retry after {wait}", retry_after=wait)

    def _count_sent(self, chat_id: Any) -> None:
        now = time.monotonic()
        self._sent_global.append(now)
        if isinstance(chat_id, int):
            self._sent_per_chat[chat_id].append(now)

    # ---- chats and messages --------------------------------------------------------------------

    def _chat(self, chat_id: int, info: JSON | None = None) -> _Chat:
        chat = self._chats.get(chat_id)
        if chat is None:
            if info is None:
                if chat_id > 0:
                    info = {"id": chat_id, "type": "private", "first_name": "张", "last_name": "三"}
                else:
                    info = {"id": chat_id, "type": "supergroup", "title": f"村工作群 {chat_id}"}
            chat = self._chats[chat_id] = _Chat(info)
        elif info is not None:
            chat.info = info
        return chat

    @staticmethod
    def _take_message_id(chat: _Chat, wanted: int | None) -> int:
        mid = wanted if wanted is not None else chat.next_message_id
        chat.next_message_id = max(chat.next_message_id, mid + 1)
        return mid

    def _message_stub(self, chat_id: int, message_id: int, chat_info: JSON | None = None) -> JSON:
        chat = self._chat(chat_id)
        known = chat.messages.get(message_id)
        if known is not None:
            stub = dict(known)
            stub.pop("reply_to_message", None)  # Telegram nests only one level
            return stub
        return {"message_id": message_id, "from": self._bot_user(), "chat": chat_info or chat.info,
                "date": int(time.time()) - 60, "text": "…"}

    def _bot_user(self) -> JSON:
        return {"id": self.bot_id, "is_bot": True, "first_name": self.bot_first_name,
                "username": self.bot_username}

    def _target_chat(self, params: JSON) -> _Chat:
        chat_id = params.get("chat_id")
        if chat_id is None or chat_id == "":
            raise ApiError(400, "Bad Request: chat_id is empty")
        if not isinstance(chat_id, int):
            raise ApiError(400, "Bad Request: chat not found")
        return self._chat(chat_id)

    def _render(self, params: JSON, key: str, limit: int) -> tuple[str, list[JSON]]:
        text = params.get(key)
        text = "" if text is None else str(text)
        parse_mode = params.get("parse_mode")
        if parse_mode and str(parse_mode).lower() == "html":
            plain, entities = render_html(text)
        elif parse_mode:
            plain, entities = text, []  # Markdown isn't modelled; nothing here uses it
        else:
            plain, entities = text, params.get(f"{key}_entities" if key == "caption" else "entities") or []
        if len(plain) > limit:
            what = "message caption" if key == "caption" else "message"
            raise ApiError(400, f"Bad Request: {what} is too long")
        return plain, entities

    def _new_bot_message(self, chat: _Chat, params: JSON, content: JSON) -> JSON:
        mid = self._take_message_id(chat, None)
        msg: JSON = {"message_id": mid, "from": self._bot_user(), "chat": chat.info, "date": int(time.time())}
        reply_to = params.get("reply_to_message_id")
        reply_params = params.get("reply_parameters")
        if isinstance(reply_params, dict):
            reply_to = reply_params.get("message_id")
        if reply_to is not None:
            if int(reply_to) in chat.messages:
                msg["reply_to_message"] = self._message_stub(chat.info["id"], int(reply_to))
            elif not (isinstance(reply_params, dict) and reply_params.get("allow_sending_without_reply")) \
                    and not params.get("allow_sending_without_reply"):
                raise ApiError(400, "Bad Request: message to be replied not found")
        msg.update(content)
        markup = params.get("reply_markup")
        if markup is not None:
            self._validate_markup(markup)
            if "inline_keyboard" in markup:
                msg["reply_markup"] = markup  # only inline keyboards are echoed back, as Telegram does
        chat.messages[mid] = msg
        chat.bot_message_ids.append(mid)
        return msg

    @staticmethod
    def _validate_markup(markup: Any) -> None:
        if not isinstance(markup, dict):
            raise ApiError(400, "Bad Request: can't parse reply keyboard markup JSON object")
        if "inline_keyboard" in markup:
            for row in markup["inline_keyboard"]:
                for button in row:
                    if not button.get("text"):
                        raise ApiError(400, "Bad Request: text buttons are unallowed in the inline keyboard")
                    data = button.get("callback_data")
                    if data is not None and not 1 <= len(str(data).encode()) <= 64:
                        raise ApiError(400, "Bad Request: BUTTON_DATA_INVALID")
        elif "keyboard" in markup:
            if not all(isinstance(row, list) for row in markup["keyboard"]):
                raise ApiError(400, "Bad Request: can't parse reply keyboard markup JSON object")
        elif not markup.get("remove_keyboard") and not markup.get("force_reply"):
            raise ApiError(400, "Bad Request: can't parse reply keyboard markup JSON object")

    def _upload(self, params: JSON, files: dict[str, UploadedFile], key: str, kind: str) -> StoredFile:
        value: Any = files.get(key) or params.get(key)
        if isinstance(value, str) and value.startswith("attach://"):
            value = files.get(value.removeprefix("attach://"))
        if isinstance(value, UploadedFile):
            fid = self.add_file(value.content, value.filename, value.content_type, kind=kind)
            return self.files[fid]
        if isinstance(value, str) and value in self.files:
            return self.files[value]
        if not value:
            raise ApiError(400, f"Bad Request: there is no {key} in the request")
        raise ApiError(400, "Bad Request: wrong file identifier/HTTP URL specified")

    # ---- Bot API methods -----------------------------------------------------------------------

    async def _api_getMe(self, params: JSON, files: dict[str, UploadedFile]) -> JSON:
        return {**self._bot_user(), "can_join_groups": True, "can_read_all_group_messages": False,
                "supports_inline_queries": False, "can_connect_to_business": False,
                "has_main_web_app": False}

    async def _api_getUpdates(self, params: JSON, files: dict[str, UploadedFile]) -> list[JSON]:
        if self.webhook_url:
            raise ApiError(409, "Conflict: can't use getUpdates method while webhook is active; "
                                "use deleteWebhook to delete the webhook first")
        offset = int(params.get("offset") or 0)
        limit = min(max(int(params.get("limit") or 100), 1), 100)
        timeout = max(float(params.get("timeout") or 0), 0.0)
        if offset > 0:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        elif offset < 0:
            self._updates = self._updates[offset:]
        # A newer long poll ends the older one with 409, as on the real server.
        for fut in self._poll_waiters:
            if not fut.done():
                fut.set_result("conflict")
        if not self._updates and timeout > 0:
            waiter: asyncio.Future[str] = asyncio.get_running_loop().create_future()
            self._poll_waiters.add(waiter)
            try:
                await asyncio.wait({waiter}, timeout=timeout)
            finally:
                self._poll_waiters.discard(waiter)
            if waiter.done() and waiter.result() == "conflict":
                raise ApiError(409)
        return [dict(u) for u in self._updates[:limit]]

    async def _api_sendMessage(self, params: JSON, files: dict[str, UploadedFile]) -> JSON:
        chat = self._target_chat(params)
        text, entities = self._render(params, "text", 4096)
        if not text.strip():
            raise ApiError(400, "Bad Request: message text is empty")
        content: JSON = {"text": text}
        if entities:
            content["entities"] = entities
        return self._new_bot_message(chat, params, content)

    async def _api_sendDocument(self, params: JSON, files: dict[str, UploadedFile]) -> JSON:
        chat = self._target_chat(params)
        stored = self._upload(params, files, "document", "documents")
        caption, entities = self._render(params, "caption", 1024)
        content: JSON = {"document": {"file_id": stored.file_id, "file_unique_id": stored.file_unique_id,
                                      "file_name": stored.filename or "file",
                                      "mime_type": stored.mime or "application/octet-stream",
                                      "file_size": len(stored.content)}}
        if caption:
            content["caption"] = caption
            if entities:
                content["caption_entities"] = entities
        return self._new_bot_message(chat, params, content)

    async def _api_sendPhoto(self, params: JSON, files: dict[str, UploadedFile]) -> JSON:
        chat = self._target_chat(params)
        stored = self._upload(params, files, "photo", "photos")
        caption, entities = self._render(params, "caption", 1024)
        content: JSON = {"photo": [{"file_id": stored.file_id, "file_unique_id": stored.file_unique_id,
                                    "width": 800, "height": 600, "file_size": len(stored.content)}]}
        if caption:
            content["caption"] = caption
            if entities:
                content["caption_entities"] = entities
        return self._new_bot_message(chat, params, content)

    def _editable(self, params: JSON) -> tuple[_Chat, JSON]:
        if params.get("inline_message_id"):
            raise ApiError(400, "Bad Request: inline messages aren't modelled by the fake")
        chat = self._target_chat(params)
        mid = params.get("message_id")
        msg = chat.messages.get(int(mid)) if mid is not None else None
        if msg is None:
            raise ApiError(400, "Bad Request: message to edit not found")
        if int(msg["from"]["id"]) != self.bot_id:
            raise ApiError(400, "Bad Request: message can't be edited")
        return chat, msg

    async def _api_editMessageText(self, params: JSON, files: dict[str, UploadedFile]) -> JSON:
        chat, msg = self._editable(params)
        if "text" not in msg:
            raise ApiError(400, "Bad Request: there is no text in the message to edit")
        text, entities = self._render(params, "text", 4096)
        if not text.strip():
            raise ApiError(400, "Bad Request: message text is empty")
        markup = params.get("reply_markup")
        if markup is not None:
            self._validate_markup(markup)
            if "inline_keyboard" not in markup:
                raise ApiError(400, "Bad Request: inline keyboard expected")
        if text == msg["text"] and entities == msg.get("entities", []) and markup == msg.get("reply_markup"):
            raise ApiError(400, _NOT_MODIFIED)
        edited = {k: v for k, v in msg.items() if k not in ("entities", "reply_markup")}
        edited["text"] = text
        edited["edit_date"] = int(time.time())
        if entities:
            edited["entities"] = entities
        if markup is not None:
            edited["reply_markup"] = markup
        chat.messages[msg["message_id"]] = edited
        return edited

    async def _api_editMessageReplyMarkup(self, params: JSON, files: dict[str, UploadedFile]) -> JSON:
        chat, msg = self._editable(params)
        markup = params.get("reply_markup")
        if markup is not None:
            self._validate_markup(markup)
        if markup == msg.get("reply_markup") or (markup is None and "reply_markup" not in msg):
            raise ApiError(400, _NOT_MODIFIED)
        edited = {k: v for k, v in msg.items() if k != "reply_markup"}
        edited["edit_date"] = int(time.time())
        if markup is not None:
            edited["reply_markup"] = markup
        chat.messages[msg["message_id"]] = edited
        return edited

    async def _api_answerCallbackQuery(self, params: JSON, files: dict[str, UploadedFile]) -> bool:
        if str(params.get("callback_query_id")) not in self._callback_ids:
            raise ApiError(400, "Bad Request: query is too old and response timeout expired or query ID is invalid")
        return True

    async def _api_getFile(self, params: JSON, files: dict[str, UploadedFile]) -> JSON:
        stored = self.files.get(str(params.get("file_id")))
        if stored is None:
            raise ApiError(400, "Bad Request: invalid file_id")
        if len(stored.content) > self.max_download_size:
            raise ApiError(400, "Bad Request: file is too big")
        return {"file_id": stored.file_id, "file_unique_id": stored.file_unique_id,
                "file_size": len(stored.content), "file_path": stored.file_path}

    async def _api_setMyCommands(self, params: JSON, files: dict[str, UploadedFile]) -> bool:
        commands = params.get("commands")
        if not isinstance(commands, list):
            raise ApiError(400, "Bad Request: commands must be an array")
        for cmd in commands:
            if not isinstance(cmd, dict) or not _COMMAND_RE.match(str(cmd.get("command", ""))):
                raise ApiError(400, "Bad Request: BOT_COMMAND_INVALID")
            if not 1 <= len(str(cmd.get("description", ""))) <= 256:
                raise ApiError(400, "Bad Request: command description is empty")
        self.commands = commands
        return True

    async def _api_setWebhook(self, params: JSON, files: dict[str, UploadedFile]) -> bool:
        url = params.get("url") or ""
        secret = params.get("secret_token")
        if secret is not None and not _SECRET_RE.match(str(secret)):
            raise ApiError(400, "Bad Request: secret token contains unallowed characters")
        if url and not str(url).startswith(("http://", "https://")):
            raise ApiError(400, "Bad Request: bad webhook: An HTTPS URL must be provided for webhook")
        self.webhook_url = str(url) or None
        self.webhook_secret = str(secret) if secret is not None and url else None
        if params.get("drop_pending_updates"):
            self._updates.clear()
        return True

    async def _api_deleteWebhook(self, params: JSON, files: dict[str, UploadedFile]) -> bool:
        self.webhook_url = None
        self.webhook_secret = None
        if params.get("drop_pending_updates"):
            self._updates.clear()
        return True

    async def _api_getWebhookInfo(self, params: JSON, files: dict[str, UploadedFile]) -> JSON:
        return {"url": self.webhook_url or "", "has_custom_certificate": False,
                "pending_update_count": len(self._updates), "max_connections": 40}


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False)

