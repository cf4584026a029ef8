"""A fake WeCom (企业微信) on 127.0.0.1: gettoken, message/send, media/upload and group robot webhooks.

Also plays WeCom calling our callback, with its own independent WXBizMsgCrypt encryption and signing.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import itertools
import os
import struct
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

TEXT_LIMIT = 2048
ROBOT_LIMITS = {"text": 2048, "markdown": 4096}
MEDIA_TYPES = {"image", "voice", "video", "file"}


@dataclass
class Upload:
    type: str
    filename: str | None
    content: bytes
    content_type: str | None
    media_id: str


@dataclass
class _Failure:
    errcode: int | None
    http_status: int | None
    errmsg: str
    times: int
    after: int


@dataclass
class _Token:
    deadline: float
    revoked: int | None = None  # the errcode WeCom answers once this token is dead


@dataclass
class FakeWeComAPI:
    """`async with FakeWeComAPI() as fake:` → point the client at `fake.base_url`."""

    corp_id: str = "wwfakecorp0000001"
    secret: str = "fake-secret-Sx9"
    agent_id: int = 1000002
    token_ttl: int = 7200
    robot_keys: tuple[str, ...] = ()
    robot_per_minute: int = 20

    sent: list[dict[str, Any]] = field(default_factory=list)
    robot_sent: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    uploads: list[Upload] = field(default_factory=list)
    calls: list[tuple[str, str]] = field(default_factory=list)  # (path, access_token) of authenticated calls
    token_rejections: list[tuple[str, int]] = field(default_factory=list)
    gettoken_calls: int = 0
    base_url: str = ""

    def __post_init__(self) -> None:
        self._tokens: dict[str, _Token] = {}
        self._failures: dict[str, deque[_Failure]] = {}
        self._media: set[str] = set()
        self._robot_times: dict[str, deque[float]] = {}
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self._changed = asyncio.Event()

    # -- lifecycle --------------------------------------------------------------------------------

    async def __aenter__(self) -> FakeWeComAPI:
        app = web.Application(client_max_size=25 * 1024 * 1024)
        app.router.add_get("/cgi-bin/gettoken", self._gettoken)
        app.router.add_post("/cgi-bin/message/send", self._message_send)
        app.router.add_post("/cgi-bin/media/upload", self._media_upload)
        app.router.add_post("/cgi-bin/webhook/send", self._webhook_send)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.base_url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    # -- test controls ----------------------------------------------------------------------------

    def expire_tokens(self, errcode: int = 42001) -> None:
        """Every token issued so far is dead: calls with one get `errcode` (42001 expired, 40014 invalid)."""
        for t in self._tokens.values():
            t.revoked = errcode

    def fail_next(
        self,
        path: str,
        *,
        errcode: int | None = None,
        http_status: int | None = None,
        errmsg: str = "",
        times: int = 1,
        after: int = 0,
    ) -> None:
        """After `after` more good calls, `times` calls to `path` answer errcode or an HTTP error status.

        path is like "/cgi-bin/message/send"; authentication is checked first, as WeCom does.
        """
        self._failures.setdefault(path, deque()).append(
            _Failure(errcode, http_status, errmsg or f"fake failure {errcode}", times, after)
        )

    async def wait_sent(self, n: int, timeout: float = 5.0) -> list[dict[str, Any]]:
        async def until() -> None:
            while len(self.sent) < n:
                self._changed.clear()
                await self._changed.wait()

        await asyncio.wait_for(until(), timeout)
        return self.sent

    @property
    def issued_tokens(self) -> list[str]:
        return list(self._tokens)

    # -- helpers ----------------------------------------------------------------------------------

    @staticmethod
    def _err(errcode: int, errmsg: str) -> web.Response:
        return web.json_response({"errcode": errcode, "errmsg": errmsg})

    def _injected(self, path: str) -> web.Response | None:
        q = self._failures.get(path)
        if not q:
            return None
        f = q[0]
        if f.after > 0:
            f.after -= 1
            return None
        f.times -= 1
        if f.times <= 0:
            q.popleft()
        if f.http_status is not None:
            return web.Response(status=f.http_status, text="fake upstream error")
        return self._err(f.errcode or -1, f.errmsg)

    def _auth(self, request: web.Request, path: str) -> web.Response | None:
        token = request.query.get("access_token")
        if not token:
            return self._err(41001, "access_token missing")
        self.calls.append((path, token))
        t = self._tokens.get(token)
        if t is None:
            self.token_rejections.append((token, 40014))
            return self._err(40014, "invalid access_token")
        if t.revoked is not None or time.monotonic() >= t.deadline:
            code = t.revoked or 42001
            self.token_rejections.append((token, code))
            return self._err(code, "access_token expired" if code == 42001 else "invalid access_token")
        return None

    def _notify(self) -> None:
        self._changed.set()

    # -- endpoints --------------------------------------------------------------------------------

    async def _gettoken(self, request: web.Request) -> web.Response:
        self.gettoken_calls += 1
        if (r := self._injected("/cgi-bin/gettoken")) is not None:
            return r
        if request.query.get("corpid") != self.corp_id:
            return self._err(40013, "invalid corpid")
        if request.query.get("corpsecret") != self.secret:
            return self._err(40001, "invalid credential")
        token = base64.urlsafe_b64encode(os.urandom(24)).decode()
        self._tokens[token] = _Token(deadline=time.monotonic() + self.token_ttl)
        return web.json_response(
            {"errcode": 0, "errmsg": "ok", "access_token": token, "expires_in": self.token_ttl}
        )

    async def _message_send(self, request: web.Request) -> web.Response:
        path = "/cgi-bin/message/send"
        if (r := self._auth(request, path)) is not None:
            return r
        if (r := self._injected(path)) is not None:
            return r
        try:
            payload = await request.json()
        except ValueError:
            return self._err(47001, "data format error")
        if payload.get("agentid") != self.agent_id:
            return self._err(40056, "invalid agentid")
        if not payload.get("touser"):
            return self._err(40003, "invalid userid")
        msgtype = payload.get("msgtype")
        if msgtype in ("text", "markdown"):
            content = (payload.get(msgtype) or {}).get("content", "")
            if not content:
                return self._err(44004, "empty content")
            if len(content.encode("utf-8")) > TEXT_LIMIT:
                return self._err(40058, f"{msgtype}.content exceed max length {TEXT_LIMIT}")
        elif msgtype in MEDIA_TYPES:
            if (payload.get(msgtype) or {}).get("media_id") not in self._media:
                return self._err(40007, "invalid media_id")
        else:
            return self._err(40008, "invalid message type")
        self.sent.append(payload)
        self._notify()
        return web.json_response({"errcode": 0, "errmsg": "ok", "msgid": f"msgid-{next(self._ids)}"})

    async def _media_upload(self, request: web.Request) -> web.Response:
        path = "/cgi-bin/media/upload"
        if (r := self._auth(request, path)) is not None:
            return r
        if (r := self._injected(path)) is not None:
            return r
        media_type = request.query.get("type", "")
        if media_type not in MEDIA_TYPES:
            return self._err(40004, "invalid media type")
        reader = await request.multipart()
        part = await reader.next()
        if not isinstance(part, aiohttp.BodyPartReader) or part.name != "media":
            return self._err(41005, "media data missing")
        content = await part.read()
        media_id = f"media-{media_type}-{next(self._ids)}"
        self._media.add(media_id)
        self.uploads.append(
            Upload(media_type, part.filename, bytes(content), part.headers.get("Content-Type"), media_id)
        )
        return web.json_response(
            {
                "errcode": 0,
                "errmsg": "",
                "type": media_type,
                "media_id": media_id,
                "created_at": str(int(time.time())),
            }
        )

    async def _webhook_send(self, request: web.Request) -> web.Response:
        path = "/cgi-bin/webhook/send"
        key = request.query.get("key", "")
        if key not in self.robot_keys:
            return self._err(93000, "invalid webhook url")
        if (r := self._injected(path)) is not None:
            return r
        window = self._robot_times.setdefault(key, deque())
        now = time.monotonic()
        while window and window[0] <= now - 60:
            window.popleft()
        if len(window) >= self.robot_per_minute:
            return self._err(45009, "api freq out of limit")
        payload = await request.json()
        msgtype = payload.get("msgtype")
        if msgtype not in ROBOT_LIMITS:
            return self._err(40008, "invalid message type")
        content = (payload.get(msgtype) or {}).get("content", "")
        if len(content.encode("utf-8")) > ROBOT_LIMITS[msgtype]:
            return self._err(40058, f"{msgtype}.content exceed max length {ROBOT_LIMITS[msgtype]}")
        window.append(now)
        self.robot_sent.append((key, payload))
        self._notify()
        return web.json_response({"errcode": 0, "errmsg": "ok"})


# -- playing WeCom towards our callback (independent of bot.transports.wecom.crypto) -----------------


def wecom_sign(token: str, timestamp: str, nonce: str, encrypted: str) -> str:
    return hashlib.sha1("".join(sorted([token, timestamp, nonce, encrypted])).encode()).hexdigest()


def wecom_encrypt(aes_key: str, receive_id: str, plaintext: str | bytes) -> str:
    key = base64.b64decode(aes_key + "=")
    msg = plaintext.encode() if isinstance(plaintext, str) else plaintext
    data = os.urandom(16) + struct.pack("!I", len(msg)) + msg + receive_id.encode()
    pad = 32 - len(data) % 32
    data += bytes([pad]) * pad
    enc = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    return base64.b64encode(enc.update(data) + enc.finalize()).decode()


def _cdata(s: str) -> str:
    return f"<![CDATA[{s}]]>"


def _xml(fields: dict[str, str | int]) -> str:
    inner = "".join(
        f"<{k}>{v}</{k}>" if isinstance(v, int) else f"<{k}>{_cdata(v)}</{k}>" for k, v in fields.items()
    )
    return f"<xml>{inner}</xml>"


def build_text_xml(
    to: str,
    from_user: str,
    content: str,
    msg_id: str | int,
    agent_id: int | str,
    create_time: int | None = None,
) -> str:
    return _xml(
        {
            "ToUserName": to,
            "FromUserName": from_user,
            "CreateTime": create_time if create_time is not None else int(time.time()),
            "MsgType": "text",
            "Content": content,
            "MsgId": str(msg_id),
            "AgentID": str(agent_id),
        }
    )


def build_event_xml(
    to: str,
    from_user: str,
    event: str,
    agent_id: int | str,
    event_key: str = "",
    create_time: int | None = None,
) -> str:
    return _xml(
        {
            "ToUserName": to,
            "FromUserName": from_user,
            "CreateTime": create_time if create_time is not None else int(time.time()),
            "MsgType": "event",
            "Event": event,
            "EventKey": event_key,
            "AgentID": str(agent_id),
        }
    )


def build_media_xml(
    to: str,
    from_user: str,
    msg_type: str,
    msg_id: str | int,
    agent_id: int | str,
    create_time: int | None = None,
    **extra: str,
) -> str:
    """image (PicUrl, MediaId), voice (MediaId, Format, Recognition), location (Location_X, Location_Y, …)."""
    return _xml(
        {
            "ToUserName": to,
            "FromUserName": from_user,
            "CreateTime": create_time if create_time is not None else int(time.time()),
            "MsgType": msg_type,
            **extra,
            "MsgId": str(msg_id),
            "AgentID": str(agent_id),
        }
    )


Tamper = str | Callable[[str], str]


@dataclass
class CallbackResult:
    status: int
    body: str
    elapsed: float


async def post_callback(
    url: str,
    token: str,
    aes_key: str,
    corp_id: str,
    xml_plain: str,
    *,
    tamper: Tamper | None = None,
    timestamp: str | None = None,
    nonce: str | None = None,
    agent_id: str = "1000002",
) -> CallbackResult:
    """POST one encrypted callback the way WeCom does.

    tamper: "signature" (wrong msg_signature), "truncate" (ciphertext cut short, then signed correctly),
    "outer_xml" (envelope not XML), or a function rewriting the base64 ciphertext before it is signed.
    """
    ts = timestamp or str(int(time.time()))
    nc = nonce or str(int.from_bytes(os.urandom(4), "big"))
    encrypted = wecom_encrypt(aes_key, corp_id, xml_plain)
    if tamper == "truncate":
        raw = base64.b64decode(encrypted)
        encrypted = base64.b64encode(raw[:-7]).decode()
    elif callable(tamper):
        encrypted = tamper(encrypted)
    sig = wecom_sign(token, ts, nc, encrypted)
    if tamper == "signature":
        sig = sig[:-4] + ("0000" if not sig.endswith("0000") else "1111")
    body = (
        f"<xml><ToUserName>{_cdata(corp_id)}</ToUserName><AgentID>{_cdata(agent_id)}</AgentID>"
        f"<Encrypt>{_cdata(encrypted)}</Encrypt></xml>"
    )
    if tamper == "outer_xml":
        body = body.replace("</xml>", "")
    params = {"msg_signature": sig, "timestamp": ts, "nonce": nc}
    started = time.monotonic()
    async with aiohttp.ClientSession() as s, s.post(url, params=params, data=body.encode()) as resp:
        text = await resp.text()
        return CallbackResult(resp.status, text, time.monotonic() - started)


async def get_verify_url(
    url: str, token: str, aes_key: str, corp_id: str, echo_plain: str, *, bad_signature: bool = False
) -> CallbackResult:
    """The GET WeCom sends when the callback URL is saved in the admin console."""
    ts, nc = str(int(time.time())), "263014780"
    echostr = wecom_encrypt(aes_key, corp_id, echo_plain)
    sig = wecom_sign(token, ts, nc, echostr)
    if bad_signature:
        sig = "0" * 40
    started = time.monotonic()
    params = {"msg_signature": sig, "timestamp": ts, "nonce": nc, "echostr": echostr}
    async with aiohttp.ClientSession() as s, s.get(url, params=params) as resp:
        return CallbackResult(resp.status, await resp.text(), time.monotonic() - started)
