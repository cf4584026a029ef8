"""Import benchmark: a generated district (default 10,000 households, 2,000 cadres, pairings) imported into an
empty SQLite database (and PostgreSQL with --pg URL), first import and no-op re-import, as one table.

    .venv/bin/python bench/import_bench.py [--households N] [--cadres M] [--format xlsx|csv] [--pg URL]

With --pg, a scratch database is created on that server and dropped afterwards (needs CREATEDB).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from bot.config import DEFAULT_DISTRICT
from bot.sampledata import generate_rows, write_rows
from handlers.spreadsheets import ImportResult, import_parsed, parse_table, read_table
from storage.engine import make_engine, make_sessionmaker, upgrade


@dataclass
class Run:
    backend: str
    label: str
    rows: int
    parse_s: float
    db_s: float
    result: ImportResult

    @property
    def total_s(self) -> float:
        return self.parse_s + self.db_s


async def _one_import(url: str, data: bytes, name: str, backend: str, label: str) -> Run:
    t0 = time.perf_counter()
    parsed = parse_table(read_table(data, name), district=DEFAULT_DISTRICT)
    t1 = time.perf_counter()
    engine = make_engine(url)
    try:
        async with make_sessionmaker(engine)() as session:
            result = await import_parsed(session, parsed, actor="bench")
            await session.commit()
    finally:
        await engine.dispose()
    return Run(backend, label, result.rows, t1 - t0, time.perf_counter() - t1, result)


def bench_url(url: str, data: bytes, name: str, backend: str) -> list[Run]:
    upgrade(url)
    first = asyncio.run(_one_import(url, data, name, backend, "first import"))
    again = asyncio.run(_one_import(url, data, name, backend, "re-import"))
    if first.result.households.created != first.rows:
        raise SystemExit(f"{backend}: first import created {first.result.households.created} of {first.rows}")
    if again.result.changed != 0:
        raise SystemExit(f"{backend}: re-import changed {again.result.changed}, expected 0 changed")
    return [first, again]


async def _pg_admin(url: str, sql: str) -> None:
    import asyncpg

    u = make_url(url)
    conn = await asyncpg.connect(host=u.host or "127.0.0.1", port=u.port or 5432, user=u.username or "postgres",
                                 password=u.password, database=u.database or "postgres", timeout=10)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def bench_pg(server_url: str, data: bytes, name: str) -> list[Run]:
    db = f"bangfu_bench_{uuid.uuid4().hex[:8]}"
    asyncio.run(_pg_admin(server_url, f'CREATE DATABASE "{db}"'))
    url = make_url(server_url).set(drivername="postgresql+asyncpg", database=db).render_as_string(
        hide_password=False)
    try:
        return bench_url(url, data, name, "PostgreSQL")
    finally:
        asyncio.run(_pg_admin(server_url, f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'))


def print_table(runs: list[Run], households: int, cadres: int, fmt: str) -> None:
    print(f"\nimport bench: {households} households, {cadres} cadres, {households} pairings, .{fmt}")
    head = f"{'backend':<11} {'run':<13} {'rows':>7} {'read+check s':>12} {'db s':>7} {'total s':>8} {'rows/s':>8}" \
           f" {'changed':>8}"
    print(head)
    print("-" * len(head))
    for r in runs:
        print(f"{r.backend:<11} {r.label:<13} {r.rows:>7} {r.parse_s:>12.2f} {r.db_s:>7.2f} {r.total_s:>8.2f}"
              f" {r.rows / r.total_s:>8.0f} {r.result.changed:>8}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--households", type=int, default=10_000)
    ap.add_argument("--cadres", type=int, default=2_000)
    ap.add_argument("--format", choices=("xlsx", "csv"), default="xlsx")
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--pg", metavar="URL", help="PostgreSQL server URL, e.g. postgresql://postgres@127.0.0.1/postgres")
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="bangfu-bench-") as tmp:
        t = time.perf_counter()
        path = write_rows(generate_rows(households=args.households, cadres=args.cadres, seed=args.seed),
                          Path(tmp) / f"district.{args.format}")
        print(f"generated {path.name} ({path.stat().st_size / 1e6:.1f} MB) in {time.perf_counter() - t:.1f} s",
              file=sys.stderr)
        data = path.read_bytes()
        runs = bench_url(f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}", data, path.name, "SQLite")
        if args.pg:
            runs += bench_pg(args.pg, data, path.name)
    print_table(runs, args.households, args.cadres, args.format)
    return 0


if __name__ == "__main__":
    sys.exit(main())
