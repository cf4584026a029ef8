"""End-to-end throughput and latency: visit-log messages through the real bot vs a bare aiogram echo bot.

    python bench/e2e.py [--n 500] [--users 50] [--framework aiogram|ptb|both] [--telegram-limits] [--profile FILE]

bangfu: the real App (Telegram transport polling FakeBotAPI with poll_timeout=1, dispatcher, handlers, outbox)
on a throwaway SQLite database (or --db-url) seeded with `--users` cadres, each bound to a Telegram user and
paired with enough households (unique names) that every message is an unambiguous visit and gets a card.

echo: a bare aiogram Dispatcher whose one handler answers every message with its text, polling its own
FakeBotAPI the same way, in the same run.

Load: closed loop. Each of the `--users` users sends a message, waits for the bot's reply, then sends the next
(no think time), so at most `--users` updates are in flight. Latency = from push_update to the reply's
sendMessage arriving at the fake; msgs/s = replies per second of wall time of the measured phase. A warm-up
phase (one message per user by default: jieba's dictionary, the registry cache, connection pools) is excluded.

By default the outbox's Telegram flood limits (30 msg/s per bot, ~1 msg/s per chat) are lifted so the bench
measures the bot, not the limit; --telegram-limits keeps them (then bangfu is capped near 30 msg/s by design).
Everything runs in one process and event loop (the fake server too), as the echo bot does.

Per run it also prints CPU ms per update (process CPU time of the measured phase ÷ updates; the fake server's
share included, as for the echo bot) and statements per update (every cursor execute of the bot's engine,
counted with a `before_cursor_execute` event: BEGIN, SAVEPOINT and RELEASE included, COMMIT not, being a
DBAPI call). --profile FILE runs cProfile over the measured phase and writes a per-phase table (own time by
layer: parser, handlers, bot glue, storage, ORM, Core, drivers, framework, HTTP, asyncio) and the top functions.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import logging
import math
import pstats
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fakes.botapi import JSON, FakeBotAPI, UploadedFile  # noqa: E402

TOKEN = "123456789:AAFakeTokenForTestsOnly_abcdefghijk"
USER_BASE = 800_000
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾韦夏付方邹熊孟秦邱侯江尹薛闫段雷龙黎史陶贺毛郝顾龚邵万覃武钱戴严莫孔向常汤康易乔赖文"
GIVEN = ["德明", "国华", "建英", "秀兰", "玉芳", "桂香", "光辉", "文斌", "小军", "红丽", "志强", "永福", "金花", "春生",
         "长林", "大山", "开富", "家旺", "正平", "海燕", "云芬", "世荣", "顺发", "学文", "朝贵", "应奎", "廷全", "仕林",
         "兴国", "绍华", "泽民", "昌明", "远航", "中秀", "守成", "天佑", "德全", "明亮", "正军", "成才"]
VILLAGES = ["大坝村", "高坡村", "水井村", "茶园村", "红岩村"]


class BenchAPI(FakeBotAPI):
    """FakeBotAPI that stamps each sendMessage on arrival and hands it to whoever waits for that chat."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.waiting: dict[int, asyncio.Future[tuple[float, str]]] = {}
        self.unexpected = 0

    def expect(self, chat_id: int) -> asyncio.Future[tuple[float, str]]:
        fut: asyncio.Future[tuple[float, str]] = asyncio.get_running_loop().create_future()
        self.waiting[chat_id] = fut
        return fut

    async def _api_sendMessage(self, params: JSON, files: dict[str, UploadedFile]) -> JSON:
        arrived = time.perf_counter()
        result = await super()._api_sendMessage(params, files)
        fut = self.waiting.pop(int(params["chat_id"]), None)
        if fut is not None and not fut.done():
            fut.set_result((arrived, result.get("text", "")))
        else:
            self.unexpected += 1
        return result


@dataclass
class Result:
    name: str
    n: int
    wall: float
    latencies: list[float]
    bad_replies: int = 0
    unexpected: int = 0
    notes: list[str] = field(default_factory=list)
    cpu: float = float("nan")  # process CPU seconds of the measured phase
    statements: int | None = None  # cursor executes of the measured phase (bangfu only)

    @property
    def cpu_ms(self) -> float:
        return 1000 * self.cpu / self.n if self.n else float("nan")

    @property
    def stmts(self) -> float | None:
        return None if self.statements is None else self.statements / self.n

    @property
    def rate(self) -> float:
        return self.n / self.wall if self.wall else float("nan")

    def pct(self, q: float) -> float:
        xs = sorted(self.latencies)
        if not xs:
            return float("nan")
        return xs[min(len(xs) - 1, max(0, math.ceil(q * len(xs)) - 1))]


Texts = dict[int, list[str]]


async def closed_loop(api: BenchAPI, texts: Texts, start: int, count: int, expect: str | None
                      ) -> tuple[float, list[float], int]:
    """Every user sends texts[uid][start:start+count], one at a time. Returns wall, latencies, bad replies."""
    latencies: list[float] = []
    bad = 0

    async def user(uid: int) -> None:
        nonlocal bad
        for text in texts[uid][start:start + count]:
            fut = api.expect(uid)
            t0 = time.perf_counter()
            api.push_update(api.make_text_update(uid, uid, text))
            arrived, reply = await asyncio.wait_for(fut, 60)
            latencies.append(arrived - t0)
            if expect is not None and expect not in reply:
                bad += 1

    t0 = time.perf_counter()
    await asyncio.gather(*(user(uid) for uid in texts))
    return time.perf_counter() - t0, latencies, bad


class Measured:
    """Process CPU, statements and (optionally) a cProfile over one phase."""

    def __init__(self, profile: bool) -> None:
        self.statements = 0
        self.profiler = cProfile.Profile() if profile else None

    def count_statements(self, engine: Any) -> None:
        from sqlalchemy import event

        def before(*_: Any) -> None:
            self.statements += 1

        event.listen(engine.sync_engine, "before_cursor_execute", before)

    def __enter__(self) -> Measured:
        self.statements = 0
        self.cpu0 = time.process_time()
        if self.profiler is not None:
            self.profiler.enable()
        return self

    def __exit__(self, *_: Any) -> None:
        if self.profiler is not None:
            self.profiler.disable()
        self.cpu = time.process_time() - self.cpu0


# ---- bangfu ----------------------------------------------------------------------------------------


async def seed(sm: Any, users: int, per_user: int) -> Texts:
    """A township with five villages; cadre i is bound to Telegram user USER_BASE+i and paired with
    `per_user` households of unique names in one village. Returns each user's visit messages."""
    from storage.models import ChatIdentity, Household, Pairing, Person
    from tests.harness import add_unit

    names = (s + g for g in GIVEN for s in SURNAMES)
    now = datetime.now(UTC)
    texts: Texts = {}
    async with sm() as s, s.begin():
        d = await add_unit(s, "西秀区", "district", None)
        t = await add_unit(s, "双堡镇", "township", d)
        villages = [await add_unit(s, v, "village", t) for v in VILLAGES]
        for i in range(users):
            v = villages[i % len(villages)]
            cadre = Person(natural_key=f"干部{i}|139{i:08d}", name=f"干部{i:03d}", phone=f"139{i:08d}", role="cadre",
                           unit_id=v.id)
            s.add(cadre)
            homes = [Household(natural_key=f"{v.id}||{name}", village_id=v.id, unit_id=v.id, head_name=name, size=3,
                               htype="脱贫户") for name in (next(names) for _ in range(per_user))]
            s.add_all(homes)
            await s.flush()
            s.add_all(Pairing(person_id=cadre.id, household_id=h.id) for h in homes)
            uid = USER_BASE + i
            s.add(ChatIdentity(person_id=cadre.id, channel="telegram", external_id=str(uid), chat_id=str(uid),
                               display_name=cadre.name, bound_at=now))
            texts[uid] = [f"今天去{v.name}{h.head_name}家，缺大米一袋" for h in homes]
    return texts


async def run_bangfu(framework: str, n: int, users: int, warmup: int, db_url: str | None,
                     telegram_limits: bool, profile: bool = False) -> tuple[Result, Measured]:
    from sqlalchemy import func, select

    from bot.app import App, telegram_transport
    from bot.config import Settings
    from storage.models import Visit

    per_user_n, per_user_w = math.ceil(n / users), math.ceil(warmup / users)
    tmp = tempfile.TemporaryDirectory(prefix="bangfu-e2e-")
    url = db_url or f"sqlite+aiosqlite:///{tmp.name}/bench.db"
    api = BenchAPI(token=TOKEN)
    await api.start()
    settings = Settings.model_validate({
        "database": {"url": url},
        "telegram": {"token": TOKEN, "api_base": api.base_url, "framework": framework, "poll_timeout": 1},
        "limits": {"user_messages_per_minute": 100_000},
    })
    transport = telegram_transport(settings)
    assert transport is not None
    if not telegram_limits:
        transport.capabilities = replace(transport.capabilities, global_rate=1e9, per_chat_interval=1e-9)
    app = App(settings, transports=[transport], with_scheduler=False)
    await app.build()
    texts = await seed(app.sessionmaker, users, per_user_w + per_user_n)
    m = Measured(profile)
    m.count_statements(app.engine)
    await app.start()
    try:
        await closed_loop(api, texts, 0, per_user_w, "已记录走访")
        with m:
            wall, lat, bad = await closed_loop(api, texts, per_user_w, per_user_n, "已记录走访")
        assert app.sessionmaker is not None
        async with app.sessionmaker() as s:
            visits = int((await s.execute(select(func.count()).select_from(Visit))).scalar_one())
    finally:
        await app.stop()
        await api.stop()
        tmp.cleanup()
    r = Result(f"bangfu ({framework})", len(lat), wall, lat, bad, api.unexpected, cpu=m.cpu,
               statements=m.statements)
    expected = users * (per_user_w + per_user_n)
    if visits != expected:
        r.notes.append(f"{visits} visits stored, expected {expected}")
    return r, m


# ---- the echo bot ----------------------------------------------------------------------------------


async def run_echo(n: int, users: int, warmup: int) -> Result:
    from aiogram import Bot, Dispatcher
    from aiogram.client.session.aiohttp import AiohttpSession
    from aiogram.client.telegram import TelegramAPIServer
    from aiogram.types import Message

    per_user_n, per_user_w = math.ceil(n / users), math.ceil(warmup / users)
    api = BenchAPI(token=TOKEN)
    await api.start()
    bot = Bot(TOKEN, session=AiohttpSession(api=TelegramAPIServer.from_base(api.base_url)))
    dp = Dispatcher()

    @dp.message()
    async def echo(message: Message) -> None:
        await message.answer(message.text or "?")

    polling = asyncio.create_task(dp.start_polling(bot, polling_timeout=1, handle_signals=False))
    texts = {USER_BASE + i: [f"今天去大坝村第{k}户家，缺大米一袋" for k in range(per_user_w + per_user_n)]
             for i in range(users)}
    try:
        await closed_loop(api, texts, 0, per_user_w, None)
        cpu0 = time.process_time()
        wall, lat, _ = await closed_loop(api, texts, per_user_w, per_user_n, None)
        cpu = time.process_time() - cpu0
    finally:
        await dp.stop_polling()
        await polling
        await bot.session.close()
        await api.stop()
    return Result("aiogram echo", len(lat), wall, lat, 0, api.unexpected, cpu=cpu)


# ---- report ----------------------------------------------------------------------------------------


def table(results: list[Result], echo: Result, limits: bool) -> str:
    head = ["bot", "replies", "wall s", "msgs/s", "p50 ms", "p99 ms", "CPU ms/update", "stmts/update",
            "msgs/s ÷ echo", "p50 × echo"]
    rows = []
    for r in [*results, echo]:
        rows.append([r.name, str(r.n), f"{r.wall:.2f}", f"{r.rate:.1f}", f"{1000 * r.pct(0.5):.1f}",
                     f"{1000 * r.pct(0.99):.1f}", f"{r.cpu_ms:.2f}",
                     "-" if r.stmts is None else f"{r.stmts:.1f}",
                     f"{r.rate / echo.rate:.3f}" if r is not echo else "1",
                     f"{r.pct(0.5) / echo.pct(0.5):.1f}" if r is not echo else "1"])
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(head)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    lines.append(f"(outbox flood limits {'ON: 30 msg/s, ~1 msg/s per chat' if limits else 'lifted'})")
    for r in [*results, echo]:
        if r.bad_replies:
            lines.append(f"!! {r.name}: {r.bad_replies} replies were not visit cards")
        if r.unexpected:
            lines.append(f"!! {r.name}: {r.unexpected} sendMessage calls nobody waited for")
        lines += [f"!! {r.name}: {note}" for note in r.notes]
    return "\n".join(lines)


# Layers an update's CPU goes to, by where the code lives (first match wins). cProfile's own time per
# function adds up (cumulative times of coroutines do not: they count the tasks they wait for).
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("parser (handlers/text, jieba, pypinyin)", ("/handlers/text/", "/jieba/", "/pypinyin/")),
    ("handlers", ("/handlers/",)),
    ("dispatch, outbox, transport glue (bot/)", ("/bot/",)),
    ("storage/ (query functions)", ("/storage/",)),
    ("SQLAlchemy ORM", ("/sqlalchemy/orm/",)),
    ("SQLAlchemy core, engine, dialects", ("/sqlalchemy/",)),
    # aiosqlite hands every call to its thread through a queue: that put (and the GIL wait behind it) shows
    # up as SimpleQueue.put_nowait; SQLAlchemy's async bridge is the greenlet switch.
    ("database drivers and thread hand-offs", ("/aiosqlite/", "/asyncpg/", "sqlite3", "_queue.SimpleQueue",
                                               "greenlet")),
    ("framework (aiogram, telegram, pydantic)", ("/aiogram/", "/telegram/", "/pydantic", "/magic_filter/")),
    ("HTTP (aiohttp, httpx, fake Bot API)", ("/aiohttp/", "/httpx/", "/httpcore/", "/yarl/", "/multidict/",
                                            "/tests/fakes/")),
    ("asyncio and threads", ("/asyncio/", "threading.py", "concurrent/", "select.epoll", "selectors.py")),
    ("json", ("/json/", "json.")),
]


def phase_table(m: Measured, n: int) -> str:
    assert m.profiler is not None
    raw: dict[Any, Any] = pstats.Stats(m.profiler).stats  # type: ignore[attr-defined]
    own: dict[str, float] = {}
    for (file, _line, func), v in raw.items():
        where = f"{file}:{func}"
        label = next((lab for lab, keys in LAYERS if any(k in where for k in keys)), "other")
        own[label] = own.get(label, 0.0) + v[2]
    total = sum(own.values())
    lines = [f"{'layer (own time in the event loop thread)':<48} {'ms/update':>10} {'share':>7}", "-" * 67]
    for label, t in sorted(own.items(), key=lambda kv: -kv[1]):
        lines.append(f"{label:<48} {1000 * t / n:>10.2f} {100 * t / total:>6.1f}%")
    lines.append(f"{'process CPU, all threads (unprofiled figure above)':<48} {1000 * m.cpu / n:>10.2f}")
    lines.append("(cProfile sees only the event loop's thread and adds overhead; 'asyncio and threads' includes "
                 "the loop's idle wait in epoll; compare shares, not absolute times)")
    out = io.StringIO()
    pstats.Stats(m.profiler, stream=out).sort_stats("tottime").print_stats(30)
    return "\n".join(lines) + "\n\ntop functions by own time:\n" + out.getvalue()


async def main_async(args: argparse.Namespace) -> None:
    frameworks = ["aiogram", "ptb"] if args.framework == "both" else [args.framework]
    results = []
    for fw in frameworks:
        r, m = await run_bangfu(fw, args.n, args.users, args.warmup, args.db_url, args.telegram_limits,
                                profile=bool(args.profile))
        results.append(r)
        if args.profile:
            path = Path(args.profile if len(frameworks) == 1 else f"{args.profile}.{fw}")
            await asyncio.to_thread(path.write_text, f"{r.name}: {r.n} updates\n\n{phase_table(m, r.n)}", "utf-8")
            print(f"per-phase profile written to {path}")
    echo = await run_echo(args.n, args.users, args.warmup)
    print(f"\n{args.n} visit messages from {args.users} users, closed loop (+{args.warmup} warm-up)")
    print(table(results, echo, args.telegram_limits))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=500, help="measured messages (total over all users)")
    ap.add_argument("--users", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=50, help="messages before measuring (total)")
    ap.add_argument("--framework", choices=["aiogram", "ptb", "both"], default="aiogram")
    ap.add_argument("--db-url", default=None, help="default: a throwaway SQLite file (must be empty if given)")
    ap.add_argument("--telegram-limits", action="store_true", help="keep the outbox's 30 msg/s limits")
    ap.add_argument("--profile", metavar="FILE", default=None,
                    help="cProfile the measured phase; write a per-phase table to FILE")
    args = ap.parse_args()
    logging.basicConfig(level=logging.ERROR)
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
