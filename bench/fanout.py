"""Benchmark: the morning reminder fan-out to 3,000 cadres (13,000 households, 1,000,000 visits), written
to the outbox and the send ledger. Target: < 2 s. Uses the district cached by bench/digest.py and rolls
back, so the cache stays clean.

    .venv/bin/python bench/fanout.py [--pg postgresql+asyncpg://postgres@127.0.0.1/bench] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from datetime import date, datetime
from pathlib import Path

from rich.console import Console
from rich.table import Table
from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).resolve().parent))
import digest as district  # noqa: E402 - bench/digest.py: the shared generated district

from handlers.context import Prefs  # noqa: E402
from handlers.reminders import morning_reminders  # noqa: E402
from storage.engine import make_engine, make_sessionmaker  # noqa: E402
from storage.models import OutboxMessage, SendLedger  # noqa: E402
from storage.reports import due_for_cadres  # noqa: E402

# A month after the data ends, with every type on a 30-day cadence at most: every cadre has households due.
DAY = date(2026, 12, 30)  # a Wednesday, a working day
NOW = datetime(2026, 12, 30, 8, 0, tzinfo=district.TZ)
PREFS = Prefs(tz=district.TZ, cadence_days={"监测户": 7, "脱贫户": 30, "default": 30})


async def measure(url: str, runs: int) -> list[dict[str, float]]:
    engine = make_engine(url)
    sm = make_sessionmaker(engine)
    out = []
    try:
        for _ in range(runs + 1):  # the first run warms the page cache and is not counted
            async with sm() as s:
                t0 = time.perf_counter()
                cadres = await due_for_cadres(s, today=DAY, cadence_days=PREFS.cadence_days)
                t1 = time.perf_counter()
                await s.rollback()
            async with sm() as s:
                t2 = time.perf_counter()
                n = await morning_reminders(s, now=NOW, prefs=PREFS, day=DAY)
                await s.flush()
                t3 = time.perf_counter()
                rows = (await s.execute(select(func.count()).select_from(OutboxMessage))).scalar_one()
                ledger = (await s.execute(select(func.count()).select_from(SendLedger)
                                          .where(SendLedger.kind == "visit_due"))).scalar_one()
                await s.rollback()  # leave the cached district as it was
            out.append({"query": t1 - t0, "total": t3 - t2, "cadres": len(cadres), "written": n, "rows": rows,
                        "ledger": ledger,
                        "households": sum(len(c.households) for c in cadres)})
    finally:
        await engine.dispose()
    return out[1:]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pg", default=None, help="also run on this PostgreSQL URL (loaded once by bench/digest.py)")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    table = Table(title=f"morning reminder fan-out, {DAY}: {district.CADRES:,} cadres, "
                        f"{district.HOUSEHOLDS:,} households, {district.VISITS:,} visits")
    for col in ("database", "cadres", "households listed", "outbox rows", "due query", "total (median)",
                "target", "ok"):
        table.add_column(col, justify="left" if col == "database" else "right")
    for name, url in (("SQLite", None), ("PostgreSQL", args.pg)):
        if name == "PostgreSQL" and url is None:
            continue
        real = asyncio.run(district.ensure_db(url))
        res = asyncio.run(measure(real, args.runs))
        res.sort(key=lambda r: r["total"])
        m = res[len(res) // 2]
        assert m["written"] == m["rows"] == m["ledger"], m
        table.add_row(name, f"{m['cadres']:,}", f"{m['households']:,}", f"{m['rows']:,}", f"{m['query']:.3f}s",
                      f"{m['total']:.3f}s", "< 2s", "✓" if m["total"] < 2 else "✗")
    Console().print(table)


if __name__ == "__main__":
    main()
