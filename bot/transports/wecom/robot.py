"""Group robot webhooks (cgi-bin/webhook/send?key=…): bulletins to a WeCom group, text or markdown.

Splits by UTF-8 bytes and keeps each robot within 20 messages a minute, refusing with RetryAfter past it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal

from bot.ratelimit import SlidingWindow
from bot.transports.base import PermanentError, RetryAfter, split_text
from bot.transports.wecom.api import DEFAULT_API_BASE, WeComHTTP

RobotMsgType = Literal["text", "markdown"]
# Documented content limits of the webhook, in UTF-8 bytes.
ROBOT_LIMIT_BYTES: dict[str, int] = {"text": 2048, "markdown": 4096}
ROBOT_PER_MINUTE = 20


class GroupRobot:
    """One webhook key. The key is a credential: it goes in the URL only, never in a message or log."""

    def __init__(
        self,
        key: str,
        *,
        api_base: str = DEFAULT_API_BASE,
        window: SlidingWindow | None = None,
        timeout: float = 15.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._key = key
        self._http = WeComHTTP(api_base=api_base, timeout=timeout, secrets=(key,))
        self._window = window or SlidingWindow(ROBOT_PER_MINUTE, 60.0, clock=clock)

    async def close(self) -> None:
        await self._http.close()

    def chunks(self, content: str, msgtype: RobotMsgType = "markdown") -> list[str]:
        limit = ROBOT_LIMIT_BYTES[msgtype]
        return split_text(content, limit, byte_limit=limit)

    async def send(
        self,
        content: str,
        msgtype: RobotMsgType = "markdown",
        *,
        skip: int = 0,
        on_sent: Callable[[int], None] | None = None,
    ) -> int:
        """Send every chunk after the first `skip`; returns how many chunks were delivered in total.

        `on_sent(total)` is called after each chunk, so a caller can resume after a failure mid-way.

        Quota for all remaining chunks is reserved up front, so a bulletin is never cut off by our own limit.
        """
        parts = self.chunks(content, msgtype)[skip:]
        if not parts:
            return skip
        if len(parts) > self._window.limit:
            raise PermanentError(f"robot bulletin needs {len(parts)} messages, over {self._window.limit}/min")
        wait = self._window.reserve(self._key, len(parts))
        if wait:
            raise RetryAfter(wait, scope="chat")
        done = 0
        try:
            for part in parts:
                await self.send_one({"msgtype": msgtype, msgtype: {"content": part}})
                done += 1
                if on_sent is not None:
                    on_sent(skip + done)
        finally:
            # Chunks never attempted did not use quota; the failed one may have, so keep it counted.
            self._window.release(self._key, max(len(parts) - done - 1, 0))
        return skip + done

    async def send_one(self, payload: dict[str, object]) -> None:
        body = await self._http.request(
            "POST", "/cgi-bin/webhook/send", params={"key": self._key}, json=payload
        )
        self._http.check(body, "webhook/send")
