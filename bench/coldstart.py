"""Cold start and memory of one `bangfu run` worker on a district-sized registry, for each Telegram framework.

    python bench/coldstart.py [--households 13000] [--framework aiogram|ptb|both] [--runs 2]

Builds a throwaway SQLite district (182 villages, `--households` households, one bound cadre), starts a
FakeBotAPI in this process and `bangfu run -v` as a subprocess polling it, and measures:
- cold start: from spawning the process to its first getUpdates (the channel has started: imports,
  migrations, parser warm-up, the registry build, the transport's start);
- the first visit's reply time, sent right after "started";
- RSS (VmRSS) of the worker after that reply, and its peak (VmHWM);
- whether aiogram was imported at all by a PTB worker (it must not be), from the worker's own log.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fakes.botapi import FakeBotAPI  # noqa: E402

TOKEN = "123456789:AAFakeTokenForTestsOnly_abcdefghijk"
USER = 777_001
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石"
GIVEN = "德国建秀玉桂光文小红志永金春长大开家正海云世顺学朝应廷仕兴绍泽昌远中守天明"


def build_db(path: Path, households: int) -> str:
    """A migrated SQLite file with a district of `households` households; returns its URL."""
    import sqlite3

    from storage.engine import upgrade

    url = f"sqlite+aiosqlite:///{path}"
    upgrade(url)
    now = datetime.now(UTC).isoformat(" ")
    con = sqlite3.connect(path)
    cur = con.cursor()
    cur.execute("INSERT INTO org_unit (id, name, level, parent_id, path) VALUES (1, '西秀区', 'district', NULL, '/1/')")
    villages = []
    for t in range(14):
        tid = 2 + t
        cur.execute("INSERT INTO org_unit (id, name, level, parent_id, path) VALUES (?, ?, 'township', 1, ?)",
                    (tid, f"第{t + 1}镇", f"/1/{tid}/"))
    for v in range(182):
        vid = 100 + v
        tid = 2 + v % 14
        cur.execute("INSERT INTO org_unit (id, name, level, parent_id, path) VALUES (?, ?, 'village', ?, ?)",
                    (vid, f"村{v + 1:03d}", tid, f"/1/{tid}/{vid}/"))
        villages.append(vid)
    rows = []
    for i in range(households):
        a, b = divmod(i, len(GIVEN) ** 2)
        c, d = divmod(b, len(GIVEN))
        name = SURNAMES[a % len(SURNAMES)] + GIVEN[c] + GIVEN[d]
        vid = villages[i % len(villages)]
        rows.append((i + 1, f"{vid}||{name}", vid, vid, name, 3, "脱贫户", "active", now, now))
    cur.executemany("INSERT INTO household (id, natural_key, village_id, unit_id, head_name, size, htype, status, "
                    "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    cur.execute("INSERT INTO person (id, natural_key, name, role, unit_id, active, created_at) "
                "VALUES (1, '干部|x', '干部', 'cadre', ?, 1, ?)", (villages[0], now))
    cur.execute("INSERT INTO pairing (person_id, household_id, since) VALUES (1, 1, ?)", (now,))
    cur.execute("INSERT INTO chat_identity (person_id, channel, external_id, chat_id, display_name, bound_at) "
                "VALUES (1, 'telegram', ?, ?, '干部', ?)", (str(USER), str(USER), now))
    con.commit()
    con.close()
    first = rows[0]
    return url + "\n" + f"今天去村001{first[4]}家，缺大米一袋"


def rss_kib(pid: int) -> tuple[int, int]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        k, _, v = line.partition(":")
        fields[k] = v.strip()
    return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])


async def one(framework: str, url: str, visit: str) -> dict[str, float | str]:
    api = FakeBotAPI(token=TOKEN)
    await api.start()
    env = dict(os.environ, BANGFU_DATABASE__URL=url, BANGFU_TELEGRAM__TOKEN=TOKEN,
               BANGFU_TELEGRAM__API_BASE=api.base_url, BANGFU_TELEGRAM__FRAMEWORK=framework,
               BANGFU_TELEGRAM__POLL_TIMEOUT="1", PYTHONPATH=str(ROOT))  # the code next to this script
    bangfu = str(Path(sys.executable).with_name("bangfu"))
    code = ("import sys, runpy; sys.argv = ['bangfu', 'run']\n"
            "import atexit; atexit.register(lambda: print('AIOGRAM_IMPORTED' if 'aiogram' in sys.modules "
            "else 'AIOGRAM_NOT_IMPORTED', file=sys.stderr, flush=True))\n"
            f"runpy.run_path({bangfu!r}, run_name='__main__')")
    t0 = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", code, env=env, cwd=tempfile.gettempdir(),
                                                stderr=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL)
    assert proc.stderr is not None
    started = None
    log: list[str] = []
    reader: asyncio.Task[None] | None = None
    try:
        while started is None:
            line = (await asyncio.wait_for(proc.stderr.readline(), 120)).decode(errors="replace")
            if not line:
                raise RuntimeError("worker exited:\n" + "".join(log[-30:]))
            log.append(line)
            if "channel telegram started" in line:
                started = time.perf_counter() - t0
        async def drain() -> None:  # keep reading, or a full pipe would block the worker's logging
            assert proc.stderr is not None
            while line := await proc.stderr.readline():
                log.append(line.decode(errors="replace"))

        reader = asyncio.create_task(drain())
        t1 = time.perf_counter()
        api.push_update(api.make_text_update(USER, USER, visit))
        try:
            await api.wait_sent(1, "sendMessage", timeout=60)
        except TimeoutError:
            raise RuntimeError("no reply; worker log:\n" + "".join(log[-30:])) from None
        first_reply = time.perf_counter() - t1
        rss, hwm = rss_kib(proc.pid)
    finally:
        proc.terminate()  # our own child, by its pid
        await proc.wait()
        if reader is not None:
            await reader
        await api.stop()
    rest = "".join(log)
    imported = "AIOGRAM_IMPORTED" in rest and "AIOGRAM_NOT_IMPORTED" not in rest
    return {"framework": framework, "cold_s": started, "first_reply_s": first_reply, "rss_mib": rss / 1024,
            "peak_mib": hwm / 1024, "aiogram_imported": "yes" if imported else "no"}


async def main_async(args: argparse.Namespace, url: str, visit: str) -> None:
    frameworks = ["aiogram", "ptb"] if args.framework == "both" else [args.framework]
    print(f"{args.households} households, SQLite; load average {os.getloadavg()[0]:.1f}")
    print(f"{'framework':<9} {'cold start s':>12} {'first reply s':>13} {'RSS MiB':>8} {'peak MiB':>9} "
          f"{'aiogram imported':>17}")
    import shutil

    src = Path(url.split("///", 1)[1])
    for k in range(args.runs):
        for fw in frameworks:
            # A fresh copy each run: the same update id would otherwise be a duplicate delivery.
            copy = src.with_name(f"run-{k}-{fw}.db")
            await asyncio.to_thread(shutil.copy, src, copy)
            r = await one(fw, f"sqlite+aiosqlite:///{copy}", visit)
            print(f"{r['framework']:<9} {r['cold_s']:>12.2f} {r['first_reply_s']:>13.2f} {r['rss_mib']:>8.0f} "
                  f"{r['peak_mib']:>9.0f} {r['aiogram_imported']:>17}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--households", type=int, default=13_000)
    ap.add_argument("--framework", choices=["aiogram", "ptb", "both"], default="both")
    ap.add_argument("--runs", type=int, default=2)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bangfu-cold-") as tmp:
        url, visit = build_db(Path(tmp) / "district.db", args.households).split("\n")
        asyncio.run(main_async(args, url, visit))


if __name__ == "__main__":
    main()
