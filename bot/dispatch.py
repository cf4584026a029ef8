"""Incoming → inbox row → route → handler → outbox rows, in one transaction behind one error boundary.

A duplicate delivery finds its inbox row and does nothing. A handler error rolls the transaction back and
a second one stores the raw message and an apology (with a reference code); only the log sees the trace.
No savepoint in the common case: two statements per update saved, and the failure path is rare.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.ratelimit import SlidingWindow
from bot.transports.choices import pick_choice
from handlers.context import Clock, Context, Prefs
from handlers.outgoing import send_reply
from handlers.resolver import TOKEN_KEY as REGISTRY_TOKEN_KEY
from handlers.routes import route
from handlers.types import Button, Incoming, Reply, UserError
from storage.messages import card_for_message, inbox_insert, last_choices
from storage.models import InboxMessage
from storage.senders import SenderCache, attach, read_tokens

log = logging.getLogger("bangfu.dispatch")


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class UserRateLimiter:
    """Sliding one-minute window per (channel, sender). One friendly warning per window, then silence."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        # Every message counts, dropped ones too: someone who keeps flooding stays limited.
        self._hits = SlidingWindow(per_minute, 60.0)
        self._warned = SlidingWindow(1, 60.0)

    async def check(self, key: tuple[str, str], now: float) -> str:
        """'ok', 'warn' (first over the limit) or 'drop'."""
        if self._hits.take(key, now=now) <= self.per_minute:
            return "ok"
        return "warn" if self._warned.reserve(key, now=now) == 0.0 else "drop"


class RedisRateLimiter:
    """The same limit shared by every worker process: a counter per user per minute in Redis."""

    def __init__(self, url: str, per_minute: int) -> None:
        import redis.asyncio as redis

        self.per_minute = per_minute
        self.redis = redis.from_url(url)

    async def check(self, key: tuple[str, str], now: float) -> str:
        minute = int(now // 60)
        k = f"bangfu:rl:{key[0]}:{key[1]}:{minute}"
        try:
            pipe = self.redis.pipeline()
            pipe.incr(k)
            pipe.expire(k, 120)
            n = int((await pipe.execute())[0])
        except Exception:  # noqa: BLE001 - a Redis outage must not stop the bot: fail open
            log.warning("rate limiter: Redis unavailable, not limiting")
            return "ok"
        if n <= self.per_minute:
            return "ok"
        return "warn" if n == self.per_minute + 1 else "drop"


def _raw_for_inbox(inc: Incoming) -> dict[str, Any]:
    if inc.raw is not None:
        return inc.raw
    return {"text": inc.text, "kind": inc.kind, "callback_data": inc.callback_data,
            "reply_to": inc.reply_to_message_id,
            "attachments": [a.__dict__ if hasattr(a, "__dict__") else
                            {k: getattr(a, k) for k in a.__slots__} for a in inc.attachments]}


class Dispatcher:
    def __init__(
        self, sessionmaker: async_sessionmaker[AsyncSession], prefs: Prefs, *, clock: Clock | None = None,
        inline_buttons: dict[str, bool] | None = None, user_messages_per_minute: int = 30,
        on_outbox: Callable[[], None] | None = None, redis_url: str | None = None,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.prefs = prefs
        self.clock = clock or SystemClock()
        self.inline_buttons = inline_buttons or {}
        self.limiter: UserRateLimiter | RedisRateLimiter = (
            RedisRateLimiter(redis_url, user_messages_per_minute) if redis_url
            else UserRateLimiter(user_messages_per_minute))
        self.on_outbox = on_outbox
        self.redis_clock = redis_url is not None
        self._senders: dict[tuple[str, str], list[Any]] = {}
        self.sender_cache = SenderCache()

    async def __call__(self, inc: Incoming) -> None:
        await self.handle(inc)

    async def handle(self, inc: Incoming) -> None:
        """Raises only when the database itself fails: the transport must then not confirm the update.

        One sender's updates are handled one at a time, in arrival order: a flood from one user (a webhook
        delivers concurrently) then occupies one slot of this worker instead of all its connections,
        and everyone else's messages interleave with it."""
        inc = _sanitize(inc)
        key = (inc.channel, inc.sender_id)
        slot = self._senders.get(key)
        if slot is None:
            slot = self._senders[key] = [asyncio.Lock(), 0]
        slot[1] += 1
        try:
            async with slot[0]:
                await self._handle(inc)
        finally:
            slot[1] -= 1
            if slot[1] == 0:
                self._senders.pop(key, None)

    async def _handle(self, inc: Incoming) -> None:
        now = self.clock.now().astimezone(self.prefs.tz)
        try:
            wrote_outbox = await self._attempt(inc, now)
        except _HandlerFailed as f:
            # The handler's writes are gone with its transaction; store the message and the apology anew.
            async with self.sessionmaker() as session, session.begin():
                inbox_id = await self._inbox(session, inc, now)
                if inbox_id is None:  # another worker stored it meanwhile: that one answers
                    return
                await _set_state(session, inbox_id, f.state, now, f.error_ref)
                await self._write_replies(session, f.incoming, f.replies, inbox_id, now)
            wrote_outbox = True
        if wrote_outbox and self.on_outbox is not None:
            self.on_outbox()

    async def _inbox(self, session: AsyncSession, inc: Incoming, now: datetime) -> int | None:
        return await inbox_insert(
            session, channel=inc.channel, chat_id=inc.chat.chat_id, message_key=inc.inbox_key[:128],
            sender_id=inc.sender_id[:64], kind=inc.kind, text=inc.text or "", raw=_json_safe(_raw_for_inbox(inc)),
            received_at=now.astimezone(UTC),
        )

    async def _attempt(self, inc: Incoming, now: datetime) -> bool:
        """The update in one transaction; True when it wrote to the outbox. Raises _HandlerFailed (after
        rolling back) when the handler failed."""
        async with self.sessionmaker() as session, session.begin():
            text = inc.text or ""
            inbox_id = await self._inbox(session, inc, now)
            if inbox_id is None:
                log.info("duplicate delivery %s/%s/%s ignored", inc.channel, inc.chat.chat_id, inc.inbox_key)
                return False
            if inc.chat.is_group:
                # Groups get bulletins; the bot does not read group chatter (privacy, and no busywork).
                # Button presses too: buttons are only ever sent privately, and clients can forge their
                # data, so a press "in a group" could make the bot post someone's records there.
                await _set_state(session, inbox_id, "ignored", now)
                return False
            verdict = await self.limiter.check((inc.channel, inc.sender_id),
                                               time.time() if self.redis_clock else time.monotonic())
            if verdict != "ok":
                await _set_state(session, inbox_id, "throttled", now)
                if verdict == "warn":
                    await self._write_replies(session, inc, [Reply("您发得太快了，请稍等一分钟再发。刚才的消息都已保存。")],
                                              inbox_id, now)
                    return True
                return False
            ctx = Context(session=session, incoming=inc, now=now, prefs=replace(
                self.prefs, inline_buttons=self.inline_buttons.get(inc.channel, True)),
                inbox_id=inbox_id)
            try:
                await self._prepare(ctx)
                if len(text) > self.prefs.max_text_chars:
                    ctx.inbox_state = "too_long"
                    ctx.reply(f"消息太长（{len(text)}字），最多{self.prefs.max_text_chars}字。"
                              "原文已保存，请分几条发送。")
                else:
                    await route(ctx)
            except UserError as e:
                raise _HandlerFailed(ctx.incoming, [Reply(str(e))], "user_error", None) from e
            except Exception as e:
                if _is_db_failure(e):
                    raise  # not the handler's fault: the transport must not confirm the update
                error_ref = secrets.token_hex(3).upper()
                log.exception("handler failed [ref %s] on %s/%s/%s", error_ref, inc.channel,
                              inc.chat.chat_id, inc.inbox_key)
                raise _HandlerFailed(ctx.incoming, [Reply(
                    f"抱歉，处理这条消息时出错了（参考码 {error_ref}）。原文已保存，请稍后再试或把参考码告诉管理员。")],
                    "failed", error_ref) from e
            await _set_state(session, inbox_id, ctx.inbox_state, now)
            await self._write_replies(session, ctx.incoming, ctx.replies, inbox_id, now)
            return bool(ctx.replies)

    async def _prepare(self, ctx: Context) -> None:
        inc = ctx.incoming
        tokens = await read_tokens(ctx.session)
        if tokens.households is not None:
            ctx.session.info[REGISTRY_TOKEN_KEY] = tokens.households
        sender = await self.sender_cache.get(ctx.session, tokens, inc.channel, inc.sender_id)
        if sender is not None:
            ctx.identity, ctx.person = await attach(ctx.session, sender)
            ctx.scope, ctx.sender = sender.scope, sender
        if inc.reply_to_message_id:
            ctx.card_key = await card_for_message(ctx.session, channel=inc.channel, chat_id=inc.chat.chat_id,
                                                  transport_message_id=inc.reply_to_message_id)
        # Channels without buttons show numbered choices; a bare number answers the newest one.
        if not ctx.prefs.inline_buttons and inc.kind == "message" and len(inc.text) <= 8:
            row = await last_choices(ctx.session, channel=inc.channel, chat_id=inc.chat.chat_id)
            if row is not None:
                buttons = [[Button(t, d) for t, d in line] for line in row.payload["buttons"]]
                picked = pick_choice(inc.text, buttons)
                if picked is not None:
                    ctx.incoming = replace(inc, kind="callback", callback_data=picked.data,
                                           reply_to_message_id=row.transport_message_id)
                    ctx.card_key = row.card_key

    async def _write_replies(self, session: AsyncSession, inc: Incoming, replies: list[Reply],
                             inbox_id: int | None, now: datetime) -> None:
        for r in replies:
            await send_reply(session, r, chat=inc.chat, inbox_id=inbox_id, now=now)


class _HandlerFailed(Exception):
    """The handler raised: what to store and answer instead, once its transaction is rolled back."""

    def __init__(self, incoming: Incoming, replies: list[Reply], state: str, error_ref: str | None) -> None:
        super().__init__(state)
        self.incoming, self.replies, self.state, self.error_ref = incoming, replies, state, error_ref


def _is_db_failure(e: BaseException) -> bool:
    """A lost connection or an unusable database, as opposed to a handler's own error (a constraint a
    handler violated is its bug, answered with an apology like any other)."""
    from sqlalchemy.exc import DBAPIError, IntegrityError

    return isinstance(e, DBAPIError) and not isinstance(e, IntegrityError) and (
        e.connection_invalidated or type(e).__name__ in ("OperationalError", "InterfaceError"))


async def _set_state(session: AsyncSession, inbox_id: int, state: str, now: datetime,
                     error_ref: str | None = None) -> None:
    # Core UPDATE: no SELECT of the row the update just inserted.
    await session.execute(update(InboxMessage).where(InboxMessage.id == inbox_id).values(
        state=state, processed_at=now.astimezone(UTC), error_ref=error_ref))


def _clean_str(s: str) -> str:
    """NUL and lone surrogates can't be stored (PostgreSQL refuses NUL in text and JSONB; no driver can
    encode a lone surrogate): an update carrying one would fail forever and, polled, block every update
    behind it. They become U+FFFD."""
    if "\x00" in s:
        s = s.replace("\x00", "\ufffd")
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        s = s.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    return s


def _clean_opt(s: str | None) -> str | None:
    return None if s is None else _clean_str(s)


def _clean(v: Any) -> Any:
    if isinstance(v, str):
        return _clean_str(v)
    if isinstance(v, dict):
        return {_clean(k): _clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return type(v)(_clean(x) for x in v)
    return v


def _sanitize(inc: Incoming) -> Incoming:
    changes: dict[str, Any] = {}
    for name in ("sender_id", "message_id", "text", "sender_name", "callback_data", "reply_to_message_id",
                 "event", "dedup_key"):
        v = getattr(inc, name)
        if isinstance(v, str) and _clean_str(v) is not v:
            changes[name] = _clean_str(v)
    if _clean_str(inc.chat.chat_id) is not inc.chat.chat_id:
        changes["chat"] = replace(inc.chat, chat_id=_clean_str(inc.chat.chat_id))
    if inc.raw is not None:
        changes["raw"] = _clean(inc.raw)
    if inc.attachments:
        changes["attachments"] = tuple(
            replace(a, file_id=_clean_opt(a.file_id), file_name=_clean_opt(a.file_name), mime=_clean_opt(a.mime))
            for a in inc.attachments)
    return replace(inc, **changes) if changes else inc


def _json_safe(v: Any) -> Any:
    import json

    try:
        return json.loads(json.dumps(v, ensure_ascii=False, default=str))
    except (TypeError, ValueError):
        return {"repr": repr(v)[:10000]}


