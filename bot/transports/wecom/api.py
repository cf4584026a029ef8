"""WeCom server API client (gettoken, message/send, media/upload) and WeCom errcodes → delivery errors.

Owns the access-token cache. The secret and the token never reach a log line or an exception message.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp

from bot.transports.base import PermanentError, RetryAfter, TransientError

log = logging.getLogger(__name__)

DEFAULT_API_BASE = "https://qyapi.weixin.qq.com"

TOKEN_INVALID = 40014
TOKEN_EXPIRED = 42001
_TOKEN_ERRORS = frozenset({TOKEN_INVALID, TOKEN_EXPIRED})
# 45009: API call frequency over the limit (per minute/hour buckets); 45033: too many concurrent calls.
_RETRY_AFTER = {45009: 60.0, 45033: 5.0}
_SYSTEM_BUSY = -1
# Invalid UserID / every recipient invalid or outside the app's visible range: the user is unreachable.
_UNREACHABLE = frozenset({40003, 81013})


def _redact(text: str, *secrets: str | None) -> str:
    for s in secrets:
        if s:
            text = text.replace(s, "***")
    return text


def error_for(errcode: int, errmsg: str, what: str) -> Exception:
    """Map a nonzero WeCom errcode to the outbox's error classes."""
    msg = f"wecom {what}: errcode {errcode}: {errmsg}"
    if errcode in _RETRY_AFTER:
        return RetryAfter(_RETRY_AFTER[errcode])
    if errcode == _SYSTEM_BUSY:
        return TransientError(msg)
    return PermanentError(msg, blocked=errcode in _UNREACHABLE)


class WeComHTTP:
    """JSON-over-HTTP plumbing shared by the app API and the group robots: errors mapped, secrets redacted."""

    def __init__(
        self, *, api_base: str = DEFAULT_API_BASE, timeout: float = 15.0, secrets: tuple[str, ...] = ()
    ):
        self._base = api_base.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._secrets = list(secrets)
        self._session: aiohttp.ClientSession | None = None

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self._session

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

    def scrub(self, text: str) -> str:
        return _redact(text, *self._secrets)

    def check(self, body: dict[str, Any], what: str) -> dict[str, Any]:
        errcode = int(body.get("errcode", 0) or 0)
        if errcode:
            raise error_for(errcode, self.scrub(str(body.get("errmsg", ""))), what)
        return body

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str],
        json: Any = None,
        data: aiohttp.FormData | None = None,
    ) -> dict[str, Any]:
        """One HTTP round trip → the decoded JSON body; transport-level failures become TransientError."""
        url = self._base + path
        try:
            async with self._get_session().request(method, url, params=params, json=json, data=data) as resp:
                if resp.status >= 500 or resp.status == 429:
                    raise TransientError(f"wecom {path}: HTTP {resp.status}")
                if resp.status >= 400:
                    raise PermanentError(f"wecom {path}: HTTP {resp.status}")
                try:
                    body = await resp.json(content_type=None)
                except ValueError:
                    raise TransientError(f"wecom {path}: response is not JSON") from None
        except (aiohttp.ClientError, TimeoutError, OSError) as e:
            # aiohttp's messages can carry the full URL, query (token, secret, robot key) included.
            raise TransientError(f"wecom {path}: {type(e).__name__}: {self.scrub(str(e))}") from None
        if not isinstance(body, dict):
            raise TransientError(f"wecom {path}: unexpected response shape")
        return body


class WeComAPI(WeComHTTP):
    """One app's (corp_id, secret) API client. Not tied to an event loop until first used."""

    def __init__(
        self,
        corp_id: str,
        secret: str,
        *,
        api_base: str = DEFAULT_API_BASE,
        timeout: float = 15.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(api_base=api_base, timeout=timeout, secrets=(secret,))
        self._corp_id = corp_id
        self._secret = secret
        self._clock = clock
        self._token: str | None = None
        self._token_deadline = 0.0
        self._token_lock: asyncio.Lock | None = None
        self._recent_tokens: deque[str] = deque(maxlen=3)  # an error may quote one just replaced

    def scrub(self, text: str) -> str:
        return _redact(super().scrub(text), *self._recent_tokens)

    # -- access token -----------------------------------------------------------------------------

    async def get_token(self, *, stale: str | None = None) -> str:
        """The cached token, fetched when missing, near expiry, or equal to `stale` (rejected by WeCom)."""
        if self._token_lock is None:
            self._token_lock = asyncio.Lock()
        async with self._token_lock:
            # Whoever waited on the lock behind the refresher finds a fresh token here and skips the call.
            if self._token and self._token != stale and self._clock() < self._token_deadline:
                return self._token
            self._token = None
            body = await self.request(
                "GET", "/cgi-bin/gettoken", params={"corpid": self._corp_id, "corpsecret": self._secret}
            )
            token = self.check(body, "gettoken").get("access_token")
            if not token:
                raise TransientError("wecom gettoken: no access_token in response")
            expires_in = float(body.get("expires_in") or 7200)
            # Refresh early: clock skew and the time a request spends in flight.
            margin = min(300.0, expires_in * 0.1)
            self._token = str(token)
            self._recent_tokens.append(self._token)
            self._token_deadline = self._clock() + expires_in - margin
            log.info("wecom access token refreshed, valid %.0fs", expires_in)
            return self._token

    async def call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json: Any = None,
        form: Callable[[], aiohttp.FormData] | None = None,
    ) -> dict[str, Any]:
        """An authenticated call; on 40014/42001 the token is refreshed once and the call retried.

        `form` is a factory because a FormData body can be sent only once.
        """
        token = await self.get_token()
        for attempt in (1, 2):
            body = await self.request(
                method,
                path,
                params={**(params or {}), "access_token": token},
                json=json,
                data=form() if form else None,
            )
            errcode = int(body.get("errcode", 0) or 0)
            if errcode in _TOKEN_ERRORS:
                if attempt == 1:
                    log.info("wecom %s: token rejected (errcode %d), refreshing", path, errcode)
                    token = await self.get_token(stale=token)
                    continue
                # A fresh token rejected too says nothing about the message: let the outbox retry later.
                raise TransientError(f"wecom {path}: errcode {errcode}: fresh access token rejected too")
            return self.check(body, path)
        raise AssertionError("unreachable")

    # -- messages ---------------------------------------------------------------------------------

    async def send_message(self, payload: dict[str, Any]) -> str | None:
        body = await self.call("POST", "/cgi-bin/message/send", json=payload)
        msgid = body.get("msgid")
        if body.get("invaliduser"):
            # Partial failure is not an error to WeCom; one recipient per call makes it ours.
            raise PermanentError(f"wecom message/send: invalid user {body['invaliduser']}", blocked=True)
        return str(msgid) if msgid else None

    async def send_text(self, touser: str, agent_id: int, content: str) -> str | None:
        return await self.send_message(
            {"touser": touser, "msgtype": "text", "agentid": agent_id, "text": {"content": content}}
        )

    async def send_markdown(self, touser: str, agent_id: int, content: str) -> str | None:
        return await self.send_message(
            {"touser": touser, "msgtype": "markdown", "agentid": agent_id, "markdown": {"content": content}}
        )

    async def send_media(self, touser: str, agent_id: int, msgtype: str, media_id: str) -> str | None:
        """msgtype "file", "image", "voice" or "video" with a media_id from upload_media."""
        return await self.send_message(
            {"touser": touser, "msgtype": msgtype, "agentid": agent_id, msgtype: {"media_id": media_id}}
        )

    async def upload_media(self, media_type: str, filename: str, content: bytes, mime: str) -> str:
        """Temporary media (valid 3 days) → media_id."""
        safe_name = "".join(ch for ch in filename if ch >= " " and ch != "\x7f") or "file"

        def form() -> aiohttp.FormData:
            # Raw UTF-8 filename as browsers send it, not percent-encoded: Chinese names must survive.
            fd = aiohttp.FormData(quote_fields=False)
            fd.add_field("media", content, filename=safe_name, content_type=mime)
            return fd

        body = await self.call("POST", "/cgi-bin/media/upload", params={"type": media_type}, form=form)
        media_id = body.get("media_id")
        if not media_id:
            raise TransientError("wecom media/upload: no media_id in response")
        return str(media_id)
