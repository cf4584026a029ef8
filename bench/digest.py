"""Benchmark: the weekly digest of a whole district (1,000,000 visits, 13,000 households, 3,000 cadres,
182 villages, 52 weeks): SQL aggregates, then text, PNG and XLSX. Targets: < 2 s on SQLite, < 1 s on
PostgreSQL. The generated SQLite file is cached under var/bench/; `--pg URL` loads a PostgreSQL once.

    .venv/bin/python bench/digest.py [--pg postgresql+asyncpg://postgres@127.0.0.1/bench] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from rich.console import Console
from rich.table import Table
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.engine import make_engine, make_sessionmaker, upgrade
from storage.models import (
    Base,
    ChatIdentity,
    Course,
    FollowUp,
    Household,
    Need,
    OrgUnit,
    Pairing,
    Person,
    Signup,
    TrainingSession,
    Visit,
)

TZ = ZoneInfo("Asia/Shanghai")
ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "var" / "bench" / "district.db"
VISITS, HOUSEHOLDS, CADRES, VILLAGES, TOWNSHIPS, WEEKS = 1_000_000, 13_000, 3_000, 182, 14, 52
LAST_DAY = date(2026, 11, 29)  # a Sunday: the data ends with ISO week 2026-W48
FIRST_DAY = LAST_DAY - timedelta(days=7 * WEEKS - 1)
WEEK = "2026-W48"
CHUNK = 20_000
NEED_CATS = ("住房", "饮水", "教育", "医疗", "就业", "产业", "生活物资", "兜底保障", "其他")


async def _bulk(engine: AsyncEngine, model: Any, rows: list[dict[str, Any]]) -> None:
    """executemany in chunks: one prepared statement, many parameter sets (no ORM objects)."""
    for i in range(0, len(rows), CHUNK):
        async with engine.begin() as conn:
            await conn.execute(insert(model), rows[i:i + CHUNK])


async def generate(engine: AsyncEngine, seed: int = 2026) -> None:
    rnd = random.Random(seed)
    now = datetime(2026, 11, 30, tzinfo=UTC)
    # Units: district → 14 townships → 182 villages; ids assigned here so paths need no second pass.
    units = [{"id": 1, "name": "西秀区", "level": "district", "parent_id": None, "path": "/1/"}]
    towns = []
    for t in range(TOWNSHIPS):
        uid = 2 + t
        towns.append(uid)
        units.append({"id": uid, "name": f"第{t + 1}镇", "level": "township", "parent_id": 1, "path": f"/1/{uid}/"})
    villages = []
    for v in range(VILLAGES):
        uid = 100 + v
        town = towns[v % TOWNSHIPS]
        villages.append(uid)
        units.append({"id": uid, "name": f"第{v + 1}村", "level": "village", "parent_id": town,
                      "path": f"/1/{town}/{uid}/"})
    await _bulk(engine, OrgUnit, units)

    people: list[dict[str, Any]] = []
    idents: list[dict[str, Any]] = []
    for i in range(CADRES):
        pid = i + 1
        people.append({"id": pid, "natural_key": f"干部{pid}|bench", "name": f"干部{pid}", "role": "cadre",
                       "unit_id": villages[i % VILLAGES], "active": True, "created_at": now})
    for j, uid in enumerate([1, *towns]):
        pid = CADRES + 1 + j
        people.append({"id": pid, "natural_key": f"督查{pid}|bench", "name": f"督查{pid}", "role": "supervisor",
                       "unit_id": uid, "active": True, "created_at": now})
    for p in people:
        idents.append({"person_id": p["id"], "channel": "telegram", "external_id": str(p["id"]),
                       "chat_id": str(p["id"]), "bound_at": now})
    await _bulk(engine, Person, people)
    await _bulk(engine, ChatIdentity, idents)

    cadres_by_village: dict[int, list[int]] = {}
    for p in people[:CADRES]:
        cadres_by_village.setdefault(p["unit_id"], []).append(p["id"])
    hhs, pairs, owner = [], [], {}
    for h in range(HOUSEHOLDS):
        hid = h + 1
        vil = villages[h % VILLAGES]
        r = rnd.random()
        htype = "监测户" if r < 0.1 else "脱贫户" if r < 0.8 else "一般户"
        hhs.append({"id": hid, "natural_key": f"{vil}||户{hid}", "village_id": vil, "unit_id": vil,
                    "head_name": f"户主{hid}", "size": rnd.randint(1, 7), "htype": htype, "status": "active",
                    "created_at": now, "updated_at": now})
        cadre = cadres_by_village[vil][h // VILLAGES % len(cadres_by_village[vil])]
        owner[hid] = cadre
        pairs.append({"person_id": cadre, "household_id": hid, "since": now})
    await _bulk(engine, Household, hhs)
    await _bulk(engine, Pairing, pairs)

    span = (LAST_DAY - FIRST_DAY).days + 1
    visits: list[dict[str, Any]] = []
    needs: list[dict[str, Any]] = []
    fus: list[dict[str, Any]] = []
    vid = 0
    for _ in range(VISITS):
        vid += 1
        hid = rnd.randint(1, HOUSEHOLDS)
        day = FIRST_DAY + timedelta(days=rnd.randrange(span))
        visits.append({"id": vid, "source_key": f"b:{vid}", "cadre_id": owner[hid], "household_id": hid,
                       "visit_date": day, "visit_type": "入户走访", "raw_text": "", "parse": {},
                       "deleted": rnd.random() < 0.01, "created_at": now, "updated_at": now})
        if vid % 10 == 0:
            met = rnd.random() < 0.7
            needs.append({"visit_id": vid, "household_id": hid, "category": rnd.choice(NEED_CATS), "item": "物资",
                          "status": "met" if met else "open", "raised_on": day,
                          "met_at": datetime.combine(day + timedelta(days=rnd.randint(1, 20)), datetime.min.time(),
                                                     tzinfo=TZ) if met else None})
        if vid % 20 == 0:
            due = day + timedelta(days=rnd.randint(1, 14))
            fus.append({"visit_id": vid, "household_id": hid, "action": "回访", "due": due,
                        "done_at": now if rnd.random() < 0.8 else None})
        if len(visits) >= CHUNK * 5:
            await _bulk(engine, Visit, visits)
            visits = []
    await _bulk(engine, Visit, visits)
    await _bulk(engine, Need, needs)
    await _bulk(engine, FollowUp, fus)

    async with engine.begin() as conn:
        cid = (await conn.execute(insert(Course).values(name="蜜蜂养殖").returning(Course.id))).scalar_one()
    sessions = [{"id": w + 1, "course_id": cid, "place": "镇政府", "capacity": 50,
                 "starts_at": datetime.combine(FIRST_DAY + timedelta(days=7 * w + 2), datetime.min.time(),
                                               tzinfo=TZ) + timedelta(hours=9)} for w in range(WEEKS)]
    await _bulk(engine, TrainingSession, sessions)
    signups = [{"session_id": s["id"], "participant_name": f"学员{k}", "village_id": rnd.choice(villages),
                "status": rnd.choice(("confirmed", "attended", "attended", "no_show", "cancelled"))}
               for s in sessions for k in range(40)]
    await _bulk(engine, Signup, signups)


def _add_missing_indexes(conn: Any) -> list[str]:
    from sqlalchemy import inspect

    insp = inspect(conn)
    added = []
    for t in Base.metadata.sorted_tables:
        have = {ix["name"] for ix in insp.get_indexes(t.name)}
        for ix in t.indexes:
            if ix.name not in have:
                ix.create(conn)
                added.append(str(ix.name))
    return added


async def ensure_db(url: str | None) -> str:
    """The benchmark database's URL, generating the data on first use."""
    if url is None:
        CACHE.parent.mkdir(parents=True, exist_ok=True)
        url = f"sqlite+aiosqlite:///{CACHE}"
    await asyncio.to_thread(upgrade, url)
    engine = make_engine(url)
    try:
        # A cache made before an index was added to the models gets it now (the migration is
        # regenerated in place while the schema settles, so `upgrade` alone would not add it).
        async with engine.begin() as conn:
            added = await conn.run_sync(_add_missing_indexes)
        async with engine.connect() as conn:
            n = (await conn.execute(select(func.count()).select_from(Visit))).scalar_one()
            if added and n:
                print(f"added indexes {', '.join(added)}", file=sys.stderr)
                await conn.exec_driver_sql("ANALYZE")
                await conn.commit()
        if n < VISITS:
            if n:
                sys.exit(f"{url}: partly generated ({n} visits); delete it and run again")
            t = time.perf_counter()
            print(f"generating {VISITS:,} visits into {url} (once; cached) …", file=sys.stderr)
            await generate(engine)
            async with engine.connect() as conn:
                await conn.exec_driver_sql("ANALYZE")
                await conn.commit()
            print(f"generated in {time.perf_counter() - t:.1f}s", file=sys.stderr)
    finally:
        await engine.dispose()
    return url


async def measure(url: str, runs: int) -> list[dict[str, float]]:
    from handlers.context import Prefs
    from handlers.digest import _render_files, parse_week, render_text
    from storage.reports import digest_detail, digest_stats

    prefs = Prefs(tz=TZ)
    engine = make_engine(url)
    sm = make_sessionmaker(engine)
    monday = parse_week(WEEK)
    a = datetime.combine(monday, datetime.min.time(), tzinfo=TZ).astimezone(UTC)
    b = a + timedelta(days=7)
    import matplotlib  # imported up front: the running bot has it loaded after the first digest

    matplotlib.use("Agg")
    out = []
    try:
        for _ in range(runs + 1):  # the first run warms caches and fonts and is not counted
            async with sm() as s:
                unit = (await s.execute(select(OrgUnit).where(OrgUnit.id == 1))).scalar_one()
                t0 = time.perf_counter()
                st = await digest_stats(s, unit=unit, week_start=monday, cadence_days=prefs.cadence_days,
                                        week_start_utc=a, week_end_utc=b)
                t1 = time.perf_counter()
                detail = await digest_detail(s, unit=unit, as_of=monday + timedelta(days=6),
                                             cadence_days=prefs.cadence_days)
                t2 = time.perf_counter()
                text = render_text(st)
                png, xlsx = _render_files(st, detail)
                t3 = time.perf_counter()
            out.append({"stats": t1 - t0, "detail": t2 - t1, "render": t3 - t2, "total": t3 - t0,
                        "visits": st.visits, "due": st.households_due, "png": len(png), "xlsx": len(xlsx),
                        "lines": text.count("\n") + 1, "rows": len(detail.due_households) + len(detail.open_needs)
                        + len(detail.overdue_followups)})
    finally:
        await engine.dispose()
    return out[1:]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pg", default=None, help="also run on this PostgreSQL URL (loaded once)")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    table = Table(title=f"weekly digest, whole district, {WEEK}: {VISITS:,} visits, {HOUSEHOLDS:,} households, "
                        f"{CADRES:,} cadres, {VILLAGES} villages")
    for col in ("database", "SQL aggregates", "XLSX detail queries", "text+PNG+XLSX", "total (median)",
                "target", "ok"):
        table.add_column(col, justify="right" if col not in ("database",) else "left")
    for name, url, target in (("SQLite", None, 2.0), ("PostgreSQL", args.pg, 1.0)):
        if name == "PostgreSQL" and url is None:
            continue
        real = asyncio.run(ensure_db(url))
        res = asyncio.run(measure(real, args.runs))
        res.sort(key=lambda r: r["total"])
        m = res[len(res) // 2]
        table.add_row(name, f"{m['stats']:.3f}s", f"{m['detail']:.3f}s", f"{m['render']:.3f}s",
                      f"{m['total']:.3f}s", f"< {target:.0f}s", "✓" if m["total"] < target else "✗")
        print(f"{name}: visits in week {m['visits']:,}, households due {m['due']:,}, detail rows {m['rows']:,}, "
              f"PNG {m['png'] // 1024} KiB, XLSX {m['xlsx'] // 1024} KiB, message {m['lines']} lines",
              file=sys.stderr)
    Console().print(table)


if __name__ == "__main__":
    main()
