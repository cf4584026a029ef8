"""WeComTransport: the self-built app's encrypted callback server (in) and the message API + group robots (out).

Replies never go in the callback body: the callback only stores the update; the outbox sends later.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import Mapping
from datetime import UTC, datetime

from aiohttp import web

from bot.ratelimit import SlidingWindow
from bot.transports.base import (
    Capabilities,
    OnUpdate,
    OutMessage,
    PermanentError,
    RetryAfter,
    Sent,
    split_text,
)
from bot.transports.choices import render_choices
from bot.transports.wecom.api import DEFAULT_API_BASE, WeComAPI
from bot.transports.wecom.crypto import (
    ReceiveIdError,
    SignatureError,
    WeComCryptoError,
    WXBizMsgCrypt,
    parse_xml,
)
from bot.transports.wecom.robot import GroupRobot, RobotMsgType
from handlers.types import Attachment, ChatRef, Document, Incoming

log = logging.getLogger(__name__)

CHANNEL = "wecom"
TEXT_LIMIT_BYTES = 2048  # message/send text.content: "最长不超过2048个字节"
PER_USER_PER_MINUTE = 30  # past this WeCom drops app messages to the user without an error
ROBOT_PREFIX = "robot:"
_SEEN_CAPACITY = 10_000
_RESUME_TTL = 600.0


def _float(value: str | None) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except ValueError:
        return None


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except ValueError:
        return None


def to_incoming(fields: Mapping[str, str]) -> Incoming:
    """A decrypted callback's fields → Incoming. Raises ValueError when the sender or type is missing."""
    sender = fields.get("FromUserName", "")
    msg_type = fields.get("MsgType", "")
    if not sender or not msg_type:
        raise ValueError("callback without FromUserName or MsgType")
    create_time = _int(fields.get("CreateTime"))
    sent_at = datetime.fromtimestamp(create_time, UTC) if create_time is not None else None
    chat = ChatRef(CHANNEL, sender, is_group=False)
    raw = dict(fields)
    media_id = fields.get("MediaId") or None

    if msg_type == "event":
        event = fields.get("Event", "")
        key = fields.get("EventKey", "")
        return Incoming(
            chat=chat,
            sender_id=sender,
            # Events carry no MsgId; these four fields are what WeCom repeats on a retry.
            message_id=f"ev:{sender}:{fields.get('CreateTime', '')}:{event}:{key}",
            kind="event",
            event=event,
            callback_data=key or None,
            sent_at=sent_at,
            raw=raw,
        )

    msg_id = fields.get("MsgId") or (
        f"msg:{sender}:{fields.get('CreateTime', '')}:{msg_type}:{media_id or ''}"
    )
    text = ""
    attachments: tuple[Attachment, ...] = ()
    if msg_type == "text":
        text = fields.get("Content", "")
    elif msg_type == "image":
        attachments = (Attachment("photo", file_id=media_id),)
    elif msg_type == "voice":
        fmt = fields.get("Format", "").lower()
        attachments = (Attachment("voice", file_id=media_id, mime=f"audio/{fmt}" if fmt else None),)
        text = fields.get("Recognition", "")
    elif msg_type == "video":
        attachments = (Attachment("video", file_id=media_id),)
    elif msg_type == "location":
        attachments = (
            Attachment(
                "location",
                latitude=_float(fields.get("Location_X")),
                longitude=_float(fields.get("Location_Y")),
                file_name=fields.get("Label") or None,
            ),
        )
    elif msg_type == "file":
        attachments = (
            Attachment(
                "document",
                file_id=media_id,
                file_name=fields.get("FileName") or fields.get("Title") or None,
                size=_int(fields.get("FileSize")),
            ),
        )
    elif msg_type == "link":
        text = fields.get("Url", "")
    else:
        attachments = (Attachment("other", file_id=media_id),)
    return Incoming(
        chat=chat,
        sender_id=sender,
        message_id=msg_id,
        kind="message",
        text=text,
        attachments=attachments,
        sent_at=sent_at,
        raw=raw,
    )


class WeComTransport:
    """A self-built WeCom app ("自建应用") plus any number of named group robots.

    `start` returns once the callback server listens; `stop` shuts it down and closes the HTTP clients.
    Outgoing chat ids: a WeCom UserID, or "robot:NAME" for a robot configured in `robots` (name → key).
    """

    name = CHANNEL
    capabilities = Capabilities(
        name=CHANNEL,
        max_text=TEXT_LIMIT_BYTES,
        max_text_bytes=TEXT_LIMIT_BYTES,
        inline_buttons=False,
        reply_keyboard=False,
        edit_messages=False,
        files=True,
        per_user_per_minute=PER_USER_PER_MINUTE,
        group_per_minute=20,
    )

    def __init__(
        self,
        corp_id: str,
        agent_id: int | str,
        secret: str,
        token: str,
        aes_key: str,
        *,
        api_base: str = DEFAULT_API_BASE,
        listen_host: str = "127.0.0.1",
        listen_port: int = 8082,
        robots: Mapping[str, str] | None = None,
        callback_path: str = "/wecom/callback",
        handler_timeout: float = 4.0,
        max_body: int = 1_000_000,
        robot_msgtype: RobotMsgType = "text",
    ) -> None:
        self._agent_id = int(agent_id)
        self._crypt = WXBizMsgCrypt(token, aes_key, corp_id)
        self._api = WeComAPI(corp_id, secret, api_base=api_base)
        self._robots = {name: GroupRobot(key, api_base=api_base) for name, key in (robots or {}).items()}
        self._robot_msgtype: RobotMsgType = robot_msgtype
        self._listen = (listen_host, listen_port)
        self._callback_path = callback_path
        self._handler_timeout = handler_timeout
        # A handler still running after WeCom gave up on the callback is left to finish, up to this long.
        self._handler_hard_limit = max(60.0, 10 * handler_timeout)
        self._max_body = max_body
        self._user_window = SlidingWindow(PER_USER_PER_MINUTE, 60.0)
        self._on_update: OnUpdate | None = None
        self._runner: web.AppRunner | None = None
        # Extra GET routes for the callback server (health, metrics), set by the App before start.
        self.http_routes: list[web.RouteDef] = []
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._inflight: dict[str, asyncio.Task[None]] = {}
        self._resume: dict[str, tuple[int, str | None, float]] = {}
        self.port: int | None = None

    # -- inbound ----------------------------------------------------------------------------------

    @property
    def callback_url(self) -> str:
        if self.port is None:
            raise RuntimeError("transport not started")
        return f"http://{self._listen[0]}:{self.port}{self._callback_path}"

    def serves_http(self) -> bool:
        return True

    async def start(self, on_update: OnUpdate) -> None:
        self._on_update = on_update
        app = web.Application(client_max_size=self._max_body)
        app.router.add_get(self._callback_path, self._handle_get)
        app.router.add_post(self._callback_path, self._handle_post)
        app.add_routes(self.http_routes)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._listen[0], self._listen[1])
        await site.start()
        self.port = self._runner.addresses[0][1]
        log.info("wecom callback listening on %s:%s%s", self._listen[0], self.port, self._callback_path)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        for task in list(self._inflight.values()):
            task.cancel()
        await self._api.close()
        for robot in self._robots.values():
            await robot.close()

    async def _handle_get(self, request: web.Request) -> web.Response:
        q = request.query
        try:
            echo = self._crypt.verify_url(q["msg_signature"], q["timestamp"], q["nonce"], q["echostr"])
        except KeyError:
            return web.Response(status=400, text="missing parameters")
        except SignatureError:
            return web.Response(status=403, text="bad signature")
        except WeComCryptoError as e:
            log.warning("wecom url verification rejected: %s", e)
            return web.Response(status=400, text="bad echostr")
        return web.Response(text=echo)

    async def _handle_post(self, request: web.Request) -> web.Response:
        if request.content_length is not None and request.content_length > self._max_body:
            return web.Response(status=413)
        q = request.query
        try:
            sig, ts, nonce = q["msg_signature"], q["timestamp"], q["nonce"]
        except KeyError:
            return web.Response(status=400, text="missing parameters")
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return web.Response(status=413)
        try:
            plain = self._crypt.decrypt_msg(sig, ts, nonce, body)
            incoming = to_incoming(parse_xml(plain))
        except (SignatureError, ReceiveIdError) as e:
            log.warning("wecom callback rejected: %s", e)
            return web.Response(status=403)
        except (WeComCryptoError, ValueError) as e:
            log.warning("wecom callback rejected: %s", e)
            return web.Response(status=400)

        key = incoming.inbox_key
        if key in self._seen:
            self._seen.move_to_end(key)
            return web.Response(text="")
        task = self._inflight.get(key)
        if task is None:
            # A retry of a callback still being handled joins the same run instead of starting another.
            task = asyncio.ensure_future(self._run_handler(incoming))
            self._inflight[key] = task
            task.add_done_callback(functools.partial(self._handler_done, key))
        try:
            await asyncio.wait_for(asyncio.shield(task), self._handler_timeout)
        except TimeoutError:
            log.warning(
                "wecom update %s not handled within %.1fs; WeCom will retry", key, self._handler_timeout
            )
            return web.Response(status=500)
        except Exception:
            log.exception("wecom update %s failed; WeCom will retry", key)
            return web.Response(status=500)
        return web.Response(text="")

    async def _run_handler(self, incoming: Incoming) -> None:
        assert self._on_update is not None
        await asyncio.wait_for(self._on_update(incoming), self._handler_hard_limit)

    def _handler_done(self, key: str, task: asyncio.Task[None]) -> None:
        self._inflight.pop(key, None)
        if task.cancelled() or task.exception() is not None:
            return  # not confirmed: WeCom's retry (or a replay) must reach on_update again
        self._seen[key] = None
        while len(self._seen) > _SEEN_CAPACITY:
            self._seen.popitem(last=False)

    # -- outbound ---------------------------------------------------------------------------------

    async def send(self, msg: OutMessage) -> Sent:
        chat_id = msg.chat.chat_id
        if chat_id.startswith(ROBOT_PREFIX):
            return await self._send_robot(chat_id.removeprefix(ROBOT_PREFIX), msg)
        return await self._send_app(chat_id, msg)

    def _resume_key(self, chat_id: str, msg: OutMessage, text: str) -> str:
        h = hashlib.sha256()
        for part in (chat_id, text, *(self._doc_sig(d) for d in (msg.photo, msg.document))):
            h.update(part.encode("utf-8") + b"\x00")
        return h.hexdigest()

    @staticmethod
    def _doc_sig(doc: Document | None) -> str:
        return "" if doc is None else f"{doc.filename}:{hashlib.sha256(doc.content).hexdigest()}"

    def _resume_get(self, key: str) -> tuple[int, str | None]:
        now = time.monotonic()
        for k, (_, _, exp) in list(self._resume.items()):
            if exp < now:
                del self._resume[k]
        done, last, _ = self._resume.get(key, (0, None, 0.0))
        return done, last

    async def _send_app(self, user_id: str, msg: OutMessage) -> Sent:
        # WeCom cannot edit: an edit arrives as a new message. Media go first so the text, with any
        # numbered choices, ends up last, next to the input box.
        text = render_choices(msg.text, msg.buttons)
        parts: list[tuple[str, str | Document]] = []
        if msg.photo is not None:
            parts.append(("image", msg.photo))
        if msg.document is not None:
            parts.append(("file", msg.document))
        if text.strip():
            parts += [("text", c) for c in split_text(text, TEXT_LIMIT_BYTES, byte_limit=TEXT_LIMIT_BYTES)]
        if not parts:
            raise PermanentError("wecom: nothing to send (empty text, no file)")
        if len(parts) > PER_USER_PER_MINUTE:
            raise PermanentError(f"wecom: message needs {len(parts)} sends, over {PER_USER_PER_MINUTE}/min")

        # A retry after a partial failure resumes after the parts already delivered.
        rkey = self._resume_key(user_id, msg, text)
        done, last_id = self._resume_get(rkey)
        todo = parts[done:]
        wait = self._user_window.reserve(user_id, len(todo))
        if wait:
            raise RetryAfter(wait, scope="chat")
        sent_now = 0
        try:
            for kind, payload in todo:
                if isinstance(payload, Document):
                    media_id = await self._api.upload_media(
                        kind, payload.filename, payload.content, payload.mime
                    )
                    last_id = await self._api.send_media(user_id, self._agent_id, kind, media_id) or last_id
                else:
                    last_id = await self._api.send_text(user_id, self._agent_id, payload) or last_id
                sent_now += 1
        except BaseException:
            self._user_window.release(user_id, max(len(todo) - sent_now - 1, 0))
            if done + sent_now:
                self._resume[rkey] = (done + sent_now, last_id, time.monotonic() + _RESUME_TTL)
            raise
        self._resume.pop(rkey, None)
        return Sent(message_id=last_id)

    async def _send_robot(self, name: str, msg: OutMessage) -> Sent:
        robot = self._robots.get(name)
        if robot is None:
            raise PermanentError(f"wecom: no group robot named {name!r}")
        if msg.document is not None or msg.photo is not None:
            raise PermanentError("wecom group robots take text only")
        if not msg.text.strip():
            raise PermanentError("wecom: nothing to send (empty text)")
        # Nobody can answer a robot, so buttons are not rendered as choices here.
        rkey = self._resume_key(ROBOT_PREFIX + name, msg, msg.text)
        done, _ = self._resume_get(rkey)
        delivered = [done]
        try:
            await robot.send(msg.text, self._robot_msgtype, skip=done, on_sent=delivered.append)
        except BaseException:
            if delivered[-1] > done:
                self._resume[rkey] = (delivered[-1], None, time.monotonic() + _RESUME_TTL)
            raise
        self._resume.pop(rkey, None)
        return Sent(message_id=None)
