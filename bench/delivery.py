"""Outbox delivery against the fake Bot API with Telegram's flood limits enforced.

    python bench/delivery.py [--n 600] [--group 5] [--framework aiogram|ptb] [--db-url URL]

N pending outbox rows to N distinct private chats, plus a few to one group, drained by the real Outbox and
the real Telegram transport against FakeBotAPI(enforce_limits=True) (30 messages/s per bot over any 1 s
window, 1/s per private chat, 20/min per group; the fake answers 429 beyond them). Reports the rate
achieved against the 30 msg/s limit (target ≥ 95 %, i.e. ≥ 28.5 msg/s) and the number of 429s (target 0).

Throwaway SQLite database under a temp dir unless --db-url is given (its outbox table must be empty).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, select  # noqa: E402

from bot.outbox import Outbox  # noqa: E402
from handlers.types import Incoming  # noqa: E402
from storage.engine import make_engine, make_sessionmaker, upgrade_async  # noqa: E402
from storage.messages import add_outbox_many, outbox_row  # noqa: E402
from storage.models import OutboxMessage  # noqa: E402
from tests.fakes.botapi import FakeBotAPI  # noqa: E402

TOKEN = "123456789:AAFakeTokenForTestsOnly_abcdefghijk"
LIMIT = 30.0
GROUP_CHAT = -1001234567890
VARIANT = ["current"]


def apply_variant(variant: str) -> None:
    """Try a different global limiter in bot.outbox without editing it (what-if runs for the report)."""
    import bot.outbox as ob

    if variant == "current":
        return
    original = ob.ChannelLimits.__init__

    def patched(self: Any, caps: Any) -> None:
        original(self, caps)
        if variant == "burst1":
            self.global_bucket = ob.TokenBucket(caps.global_rate, 1.0)
        elif variant == "window":
            self.global_bucket = ob.Window(int(caps.global_rate), 1.0)
        elif variant.startswith("bucket:"):  # bucket:RATE:BURST
            _, rate, burst = variant.split(":")
            self.global_bucket = ob.TokenBucket(float(rate), float(burst))
        else:
            raise SystemExit(f"unknown variant {variant}")

    ob.ChannelLimits.__init__ = patched  # type: ignore[method-assign]


def make_transport(framework: str, api_base: str) -> Any:
    if framework == "ptb":
        from bot.transports.telegram_ptb import PTBTransport

        return PTBTransport(TOKEN, api_base=api_base, poll_timeout=1)
    from bot.transports.telegram_aiogram import AiogramTransport

    return AiogramTransport(TOKEN, api_base=api_base, poll_timeout=1)


async def _ignore(_: Incoming) -> None:
    return None


async def run(n: int, group: int, framework: str, db_url: str | None, timeout: float) -> dict[str, Any]:
    tmp = tempfile.TemporaryDirectory(prefix="bangfu-delivery-")
    url = db_url or f"sqlite+aiosqlite:///{tmp.name}/bench.db"
    await upgrade_async(url)
    engine = make_engine(url)
    sm = make_sessionmaker(engine)
    now = datetime.now(UTC)
    rows = [outbox_row(channel="telegram", chat_id=str(100_000 + i), is_group=False,
                       text=f"【通知】第{i + 1}号：请于本周五前完成入户走访登记。", now=now, batch="bench")
            for i in range(n)]
    # The group rows are interleaved, as a broadcast to cadres plus their village groups would be.
    for k in range(group):
        rows.insert((k + 1) * n // (group + 1), outbox_row(
            channel="telegram", chat_id=str(GROUP_CHAT), is_group=True, text=f"【群通知】第{k + 1}条", now=now,
            batch="bench"))
    async with sm() as s, s.begin():
        if (await s.execute(select(func.count()).select_from(OutboxMessage))).scalar_one():
            raise SystemExit("the outbox table is not empty; use an empty database")
        await add_outbox_many(s, rows)

    api = FakeBotAPI(token=TOKEN, enforce_limits=True)
    await api.start()
    for i in range(n):  # the chats exist on the "server", as they would after /start
        api.chat(100_000 + i)
    api.chat(GROUP_CHAT, chat_type="supergroup")
    transport = make_transport(framework, api.base_url)
    await transport.start(_ignore)
    outbox = Outbox(sm, {"telegram": transport})
    total = n + group
    try:
        t0 = time.monotonic()
        outbox.start()
        await api.wait_for(lambda: len(api.calls("sendMessage", ok=True)) >= total, timeout)
        wall = time.monotonic() - t0
    finally:
        await outbox.stop()
        await transport.stop()
        await api.stop()
    ok = api.calls("sendMessage", ok=True)
    stamps = sorted(c.timestamp for c in ok)
    span = stamps[-1] - stamps[0] if len(stamps) > 1 else float("nan")
    async with sm() as s:
        statuses = dict((await s.execute(select(OutboxMessage.status, func.count())
                                         .group_by(OutboxMessage.status))).all())
    # The busiest 1-second window, as the server counts it.
    peak, j = 0, 0
    for i, t in enumerate(stamps):
        while t - stamps[j] >= 1.0:
            j += 1
        peak = max(peak, i - j + 1)
    await engine.dispose()
    tmp.cleanup()
    return {
        "framework": framework, "variant": VARIANT[0], "rows": total, "sent": len(ok), "wall_s": wall,
        "rate_wall": len(ok) / wall, "rate_span": (len(ok) - 1) / span if span == span and span > 0 else 0.0,
        "n429": api.count_429, "peak_1s": peak, "statuses": statuses,
    }


def report(r: dict[str, Any]) -> None:
    target = 0.95 * LIMIT
    rows = [
        ("framework", r["framework"]),
        ("global limiter", r["variant"]),
        ("rows (private + group)", f"{r['rows']}"),
        ("delivered", f"{r['sent']}  (outbox: {r['statuses']})"),
        ("wall time, start → last delivered", f"{r['wall_s']:.2f} s"),
        ("rate over wall time", f"{r['rate_wall']:.2f} msg/s  ({100 * r['rate_wall'] / LIMIT:.1f} % of 30)"),
        ("rate first → last send", f"{r['rate_span']:.2f} msg/s  ({100 * r['rate_span'] / LIMIT:.1f} % of 30)"),
        ("busiest 1 s window", f"{r['peak_1s']} sends"),
        ("429 responses", f"{r['n429']}"),
        ("target ≥ 28.5 msg/s and 0 × 429",
         "MET" if r["rate_wall"] >= target and r["n429"] == 0 else "NOT MET"),
    ]
    width = max(len(k) for k, _ in rows)
    print("\noutbox delivery against FakeBotAPI(enforce_limits=True)")
    for k, v in rows:
        print(f"  {k.ljust(width)}  {v}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=600, help="private chats, one message each")
    ap.add_argument("--group", type=int, default=5, help="messages to one group chat (limit 20/min)")
    ap.add_argument("--framework", choices=["aiogram", "ptb"], default="aiogram")
    ap.add_argument("--db-url", default=None)
    ap.add_argument("--timeout", type=float, default=300.0)
    ap.add_argument("--variant", default="current",
                    help="what-if: replace the outbox's global limiter: current (bot/outbox.py as is), burst1, "
                         "window (sliding 30 per 1 s), bucket:RATE:BURST")
    args = ap.parse_args()
    apply_variant(args.variant)
    VARIANT[0] = args.variant
    report(asyncio.run(run(args.n, args.group, args.framework, args.db_url, args.timeout)))


if __name__ == "__main__":
    main()
