"""Delivery of outbox rows within each channel's limits: claim, rate-limit, send, record.

Rows of one chat go out in id order. Rows are claimed with a lease (status 'sending' until
`not_before`), so a worker that dies mid-send releases them; on PostgreSQL, several workers claim
with FOR UPDATE SKIP LOCKED plus a per-chat advisory lock, which keeps per-chat order across workers.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.ratelimit import SlidingWindow
from bot.transports.base import (
    Capabilities,
    OutMessage,
    PermanentError,
    RetryAfter,
    TransientError,
    Transport,
)
from handlers.types import Button, ChatRef, Document
from storage.models import OutboxMessage

log = logging.getLogger("bangfu.outbox")

LEASE = timedelta(seconds=120)
MAX_ATTEMPTS = 12
SCAN = 500


class TokenBucket:
    def __init__(self, rate: float, burst: float) -> None:
        self.rate, self.burst = rate, burst
        self.tokens = burst
        self.t = time.monotonic()

    def wait_time(self) -> float:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.t) * self.rate)
        self.t = now
        return 0.0 if self.tokens >= 1 else (1 - self.tokens) / self.rate

    def take(self) -> None:
        self.tokens -= 1


class GlobalLimit:
    """Telegram counts sends over any rolling second. A bucket that starts full (burst = a second's
    worth) puts ~2x the limit into one second; an exact window still overshoots at the server because
    sends arrive with jitter. So: a window capping any second at 98.5% of the rate, plus a bucket with
    a burst of 50 ms' worth (at least 1.5) that spreads sends out. Measured against the rate-enforcing
    fake (bench/delivery.py): 98% of 30 msg/s with no 429."""

    def __init__(self, rate: float) -> None:
        self.window = SlidingWindow(max(1, int(rate * 0.985)), 1.0)
        self.bucket = TokenBucket(rate * 0.985, max(1.5, rate / 20))

    def wait_time(self) -> float:
        return max(self.window.wait_time(), self.bucket.wait_time())

    def take(self) -> None:
        self.window.take()
        self.bucket.take()


class SharedSendWindow:
    """One rolling-second send budget per channel for all processes, in Redis (a sorted-set log).

    Local limits are per process; with N outbox workers they would let N times the platform's limit
    through. This caps the sum at 95% of the limit (the rest absorbs clock and network jitter)."""

    SCRIPT = """
    local key, now, limit, id = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
    redis.call('ZREMRANGEBYSCORE', key, '-inf', now - 1)
    if redis.call('ZCARD', key) < limit then
      redis.call('ZADD', key, now, id)
      redis.call('PEXPIRE', key, 2000)
      return '0'
    end
    local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
    return tostring(tonumber(oldest[2]) + 1 - now)
    """

    def __init__(self, url: str, prefix: str = "bangfu:send") -> None:
        import redis.asyncio as redis

        self.redis = redis.from_url(url)
        self.prefix = prefix
        self._script = self.redis.register_script(self.SCRIPT)
        self._n = 0
        self._tag = f"{time.time_ns()}-{id(self)}"
        self._warned = False

    async def acquire(self, channel: str, rate: float) -> float:
        """0 when a slot was taken now; otherwise seconds to wait before asking again."""
        self._n += 1
        try:
            res = await self._script(keys=[f"{self.prefix}:{channel}"],
                                     args=[time.time(), max(1, int(rate * 0.95)), f"{self._tag}-{self._n}"])
        except Exception:  # noqa: BLE001 - Redis down: fall back to this process's own limits
            if not self._warned:
                log.warning("shared send window: Redis unavailable, using per-process limits only")
                self._warned = True
            return 0.0
        return max(0.0, float(res))

    async def close(self) -> None:
        await self.redis.aclose()


class ChannelLimits:
    def __init__(self, caps: Capabilities) -> None:
        self.caps = caps
        self.global_bucket = GlobalLimit(caps.global_rate)
        self.paused_until = 0.0
        self.chat_windows: dict[str, SlidingWindow | TokenBucket] = {}

    def _chat(self, chat_id: str, is_group: bool) -> SlidingWindow | TokenBucket:
        w = self.chat_windows.get(chat_id)
        if w is None:
            if is_group:
                w = SlidingWindow(self.caps.group_per_minute, 60)
            elif self.caps.per_user_per_minute:
                w = SlidingWindow(self.caps.per_user_per_minute, 60)
            else:
                # Telegram asks for about one message a second per chat; a short burst is tolerated,
                # which keeps a card plus its follow-up line from lagging a second behind.
                w = TokenBucket(1.0 / self.caps.per_chat_interval, 3)
            self.chat_windows[chat_id] = w
        return w

    def chat_wait(self, chat_id: str, is_group: bool) -> float:
        return self._chat(chat_id, is_group).wait_time()

    def global_wait(self) -> float:
        return max(self.global_bucket.wait_time(), self.paused_until - time.monotonic())

    def take(self, chat_id: str, is_group: bool) -> None:
        self.global_bucket.take()
        self._chat(chat_id, is_group).take()


def to_out_message(row: OutboxMessage, edit_message_id: str | None) -> OutMessage:
    p = row.payload or {}
    buttons = tuple(tuple(Button(t, d) for t, d in line) for line in p.get("buttons") or [])
    kb = p.get("keyboard")
    doc = None
    if row.file_content is not None and row.file_name:
        doc = Document(row.file_name, row.file_content, p.get("file_mime") or "application/octet-stream")
    return OutMessage(
        chat=ChatRef(row.channel, row.chat_id, row.is_group), text=p.get("text") or "", buttons=buttons,
        keyboard=tuple(tuple(x) for x in kb) if kb else None,
        document=doc if row.file_kind == "document" else None, photo=doc if row.file_kind == "photo" else None,
        edit_message_id=edit_message_id,
    )


class Outbox:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], transports: Mapping[str, Transport],
                 *, poll_interval: float = 0.5, concurrency: int = 8, shared: SharedSendWindow | None = None) -> None:
        self.shared = shared
        self.sessionmaker = sessionmaker
        self.transports = dict(transports)
        self.limits = {name: ChannelLimits(t.capabilities) for name, t in self.transports.items()}
        self.poll_interval = poll_interval
        self.concurrency = concurrency
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.sent = 0
        self._pg = sessionmaker.kw.get("bind") is not None and sessionmaker.kw["bind"].dialect.name == "postgresql"

    def notify(self) -> None:
        self._wake.set()

    def add_transport(self, t: Transport) -> None:
        self.transports[t.name] = t
        self.limits[t.name] = ChannelLimits(t.capabilities)

    def start(self) -> None:
        self._stop.clear()
        self._task = asyncio.create_task(self.run(), name="outbox")

    async def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._task is not None:
            await self._task
            self._task = None

    async def run(self) -> None:
        while not self._stop.is_set():
            try:
                n = await self.tick()
            except Exception:
                log.exception("outbox pass failed; retrying")
                n = 0
                await asyncio.sleep(1)
            if n == 0:
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), self.poll_interval)
                except TimeoutError:
                    pass

    async def drain(self, timeout: float = 30.0) -> None:
        """Send until nothing is pending and ready (tests and the demo)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            n = await self.tick()
            # An empty claim already means nothing is ready; only a PostgreSQL worker that lost a
            # per-chat lock to another worker needs the extra count to know it should wait.
            if n == 0 and (not self._pg or await self.pending_ready() == 0):
                return
            if n == 0:
                await asyncio.sleep(0.05)
        raise TimeoutError("outbox did not drain")

    async def pending_ready(self) -> int:
        now = datetime.now(UTC)
        async with self.sessionmaker() as s:
            q = select(func.count()).select_from(OutboxMessage).where(
                OutboxMessage.status.in_(("pending", "sending")), OutboxMessage.not_before <= now,
                OutboxMessage.channel.in_(list(self.transports)))
            return int((await s.execute(q)).scalar_one())

    async def _claim(self) -> list[OutboxMessage]:
        now = datetime.now(UTC)
        async with self.sessionmaker() as s, s.begin():
            pg = s.get_bind().dialect.name == "postgresql"
            q = (select(OutboxMessage.id, OutboxMessage.channel, OutboxMessage.chat_id, OutboxMessage.status,
                        OutboxMessage.not_before)
                 .where(OutboxMessage.status.in_(("pending", "sending")),
                        OutboxMessage.channel.in_(list(self.transports)))
                 .order_by(OutboxMessage.id).limit(SCAN))
            seen: set[tuple[str, str]] = set()
            ready: list[int] = []
            for oid, channel, chat_id, _status, nb in (await s.execute(q)).all():
                key = (channel, chat_id)
                if key in seen:
                    continue
                seen.add(key)  # only the oldest row of a chat may go: order per chat
                if nb > now:
                    continue
                if pg:
                    got = (await s.execute(text("SELECT pg_try_advisory_xact_lock(hashtext(:k))"),
                                           {"k": f"outbox:{channel}:{chat_id}"})).scalar_one()
                    if not got:
                        continue
                ready.append(oid)
                if len(ready) >= 200:
                    break
            if not ready:
                return []
            # Check again under the row lock: the scan above ran unlocked, and another worker may have
            # claimed (and committed, releasing its per-chat lock) one of these rows since; PostgreSQL
            # re-evaluates this WHERE on the newest row version, so a row claimed meanwhile drops out
            # instead of being sent twice.
            lq = (select(OutboxMessage)
                  .where(OutboxMessage.id.in_(ready), OutboxMessage.status.in_(("pending", "sending")),
                         OutboxMessage.not_before <= now)
                  .order_by(OutboxMessage.id))
            if pg:
                lq = lq.with_for_update(skip_locked=True)
            rows = list((await s.execute(lq)).scalars())
            for r in rows:
                r.status, r.not_before = "sending", now + LEASE
            return rows

    async def tick(self) -> int:
        rows = await self._claim()
        if not rows:
            return 0
        sem = asyncio.Semaphore(self.concurrency)
        results: list[tuple[int, dict[str, Any]]] = []

        async def one(row: OutboxMessage) -> None:
            try:
                results.append((row.id, await self._send(row)))
            finally:
                sem.release()

        tasks = []
        for row in rows:
            lim = self.limits[row.channel]
            while True:
                wait = max(lim.global_wait(), lim.chat_wait(row.chat_id, row.is_group))
                if wait <= 0 and self.shared is not None:
                    # Every worker of this bot shares the platform's limit: ask for a slot last, so a
                    # granted slot is used at once.
                    wait = await self.shared.acquire(row.channel, lim.caps.global_rate)
                if wait <= 0:
                    break
                if wait > 2:  # don't hold a pass for a slow chat: give the row back for later
                    results.append((row.id, {"status": "pending", "not_before": _in(wait)}))
                    break
                await asyncio.sleep(wait)
            if results and results[-1][0] == row.id:
                continue
            # Take the slot and start the send together: a send that waited behind the others after its
            # slot was counted would reach the platform later than the limiter thinks, and a later
            # window could then see more than the limit.
            await sem.acquire()
            lim.take(row.chat_id, row.is_group)
            tasks.append(asyncio.create_task(one(row)))
            await asyncio.sleep(0)
        if tasks:
            await asyncio.gather(*tasks)
        # One executemany per shape of result (sent / retry / failed), not one UPDATE per row: a pass of
        # 200 rows took ~0.8 s row by row, capping a backlog's drain far below the channel's limit.
        shapes: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for oid, values in results:
            shapes.setdefault(tuple(sorted(values)), []).append({"id": oid, **values})
        async with self.sessionmaker() as s, s.begin():
            for params in shapes.values():
                await s.execute(update(OutboxMessage), params)
        sent = sum(1 for _, v in results if v.get("status") == "sent")
        self.sent += sent
        return len(results)

    async def _send(self, row: OutboxMessage) -> dict[str, Any]:
        transport = self.transports[row.channel]
        edit_id = None
        if row.edit_of_id is not None and transport.capabilities.edit_messages:
            async with self.sessionmaker() as s:
                prev = await s.get(OutboxMessage, row.edit_of_id)
                edit_id = prev.transport_message_id if prev is not None else None
        msg = to_out_message(row, edit_id)
        attempts = row.attempts + 1
        try:
            sent = await transport.send(msg)
        except RetryAfter as e:
            if e.scope == "channel":
                self.limits[row.channel].paused_until = time.monotonic() + e.seconds
            log.warning("%s asked to retry after %ss (outbox %s)", row.channel, e.seconds, row.id)
            return {"status": "pending", "not_before": _in(e.seconds), "last_error": str(e)[:255]}
        except TransientError as e:
            if attempts >= MAX_ATTEMPTS:
                return {"status": "failed", "attempts": attempts, "last_error": str(e)[:255]}
            backoff = min(60.0, 0.5 * 2 ** (attempts - 1))
            log.warning("transient failure sending outbox %s (attempt %s): %s", row.id, attempts, e)
            return {"status": "pending", "attempts": attempts, "not_before": _in(backoff),
                    "last_error": str(e)[:255]}
        except PermanentError as e:
            log.warning("outbox %s undeliverable: %s", row.id, e)
            return {"status": "blocked" if e.blocked else "failed", "attempts": attempts,
                    "last_error": str(e)[:255]}
        except Exception as e:  # a transport bug must not stop delivery of everything else
            log.exception("transport %s crashed sending outbox %s", row.channel, row.id)
            return {"status": "pending", "attempts": attempts, "not_before": _in(5),
                    "last_error": f"{type(e).__name__}: {e}"[:255]}
        return {"status": "sent", "attempts": attempts, "sent_at": datetime.now(UTC),
                "transport_message_id": sent.message_id, "last_error": None,
                "file_content": None}  # delivered: the attachment's bytes need not stay in the database


def _in(seconds: float) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=seconds)
