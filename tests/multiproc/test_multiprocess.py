"""Several processes on one PostgreSQL, as in production: 2 × `bangfu run` in webhook mode behind a load
balancer (this test), Redis for the shared per-user rate limit, and 1 × `bangfu scheduler`.

200 cadres send 10 visit logs each (2,000 updates), POSTed alternately to the two workers with some
concurrency; 100 of them are delivered a second time to the other worker (Telegram redelivers when it
misses an answer), 50 racing the original and 50 after it. Each update must give exactly one visit and
exactly one reply card; the duplicates must do nothing. Only one of the three processes may hold the
scheduler's advisory lock. Every process must exit cleanly on SIGTERM.

The throughput seen here is printed (run with -s) and recorded in docs/SCALE.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from bot.scheduler import LOCK_KEY
from storage.engine import make_engine, make_sessionmaker, upgrade
from storage.models import (
    ChatIdentity,
    Entry,
    Household,
    InboxMessage,
    Need,
    OutboxMessage,
    Pairing,
    Person,
    Visit,
)
from tests.conftest import IN_CI, PG_DEFAULT
from tests.fakes.botapi import JSON, FakeBotAPI
from tests.harness import add_unit

# Bound by counts, not by wall time: every wait below ends as soon as its condition holds, and the deadlines
# only stop a hung run. They are generous because a loaded 2-core runner can be 5x slower than an idle one.
pytestmark = [pytest.mark.slow, pytest.mark.pg, pytest.mark.timeout(1500)]

TOKEN = "123456789:AAFakeTokenForTestsOnly_abcdefghijk"
SECRET = "mp-webhook-secret_0123456789"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
WEBHOOK_PATH = "/telegram/webhook"

USERS = 200
PER_USER = 10
REDELIVER_RACING = 50  # sent to the other worker at the same moment as the original
REDELIVER_LATE = 50  # sent to the other worker after every original has been answered
CONCURRENCY = 16  # requests in flight across both workers (Telegram allows up to 40 per webhook)
WORKERS = 2

START_TIMEOUT = 300.0  # importing aiogram + jieba's dictionary on a busy 2-core runner
DELIVERY_TIMEOUT = 600.0
STOP_TIMEOUT = 60.0
SETTLE_TIMEOUT = 180.0

TOWNSHIPS = ["双堡镇", "旧州镇"]
VILLAGES = ["大坝村", "高坡村", "水井村", "茶园村", "红岩村", "新寨村", "石门村", "龙潭村", "松林村", "田坝村"]
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾韦夏付方邹熊孟秦邱侯江尹薛闫段雷龙黎史陶贺毛郝顾龚邵万覃武钱戴严莫孔向常汤康易乔赖文"
GIVEN = ["德明", "国华", "建英", "秀兰", "玉芳", "桂香", "光辉", "文斌", "小军", "红丽", "志强", "永福", "金花", "春生",
         "长林", "大山", "开富", "家旺", "正平", "海燕", "云芬", "世荣", "顺发", "学文", "朝贵", "应奎", "廷全", "仕林",
         "兴国", "绍华", "泽民", "昌明", "远航", "中秀", "守成", "天佑", "德全", "明亮", "正军", "成才"]
# (how the visit is told, the need's item as the card shows it)
VISIT_FORMS = [
    ("今天去{v}{h}家，缺棉被两床", "缺棉被"),
    ("今天去{v}{h}家，缺大米一袋", "缺大米"),
    ("今天去{v}{h}家，缺化肥三袋", "缺化肥"),
    ("昨天去{v}{h}家，缺食用油两桶", "缺食用油"),
    ("今天到{v}{h}家走访，缺棉被一床", "缺棉被"),
]


# ---- helpers -----------------------------------------------------------------------------------------


def bangfu_cmd() -> list[str]:
    script = Path(sys.executable).with_name("bangfu")
    return [str(script)] if script.exists() else [sys.executable, "-m", "bot"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _pg_admin(url: str, sql: str) -> Any:
    import asyncpg

    u = make_url(url)
    conn = await asyncpg.connect(host=u.host or "127.0.0.1", port=u.port or 5432, user=u.username or "postgres",
                                 password=u.password, database=u.database or "postgres", timeout=5)
    try:
        return await conn.fetch(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="module")
def mp_db_url() -> Iterator[str]:
    """A database of its own (the session's shared one is truncated only after each test, so 2,000
    visits left there would show up in the next test), migrated once here, dropped at the end."""
    base = os.environ.get("BANGFU_TEST_PG_URL", PG_DEFAULT)
    name = f"bangfu_mp_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    try:
        asyncio.run(_pg_admin(base, f'CREATE DATABASE "{name}"'))
    except Exception as e:  # noqa: BLE001
        if IN_CI:
            pytest.fail(f"PostgreSQL unreachable in CI: {e}")
        pytest.skip(f"PostgreSQL unreachable: {e}")
    url = make_url(base).set(drivername="postgresql+asyncpg", database=name).render_as_string(hide_password=False)
    try:
        upgrade(url)
        yield url
    finally:
        asyncio.run(_pg_admin(base, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="module")
def redis_url() -> str:
    import redis

    url = os.environ.get("BANGFU_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    try:
        redis.from_url(url, socket_connect_timeout=2).ping()
    except Exception as e:  # noqa: BLE001
        if IN_CI:
            pytest.fail(f"Redis unreachable in CI: {e}")
        pytest.skip(f"Redis unreachable: {e}")
    return url


@dataclass
class Cadre:
    uid: int
    village: str
    heads: list[str]


async def seed(db_url: str, uid_base: int) -> list[Cadre]:
    """Two townships, ten villages; cadre i is bound to Telegram user uid_base+i (chat id the same) and
    paired with PER_USER households whose heads' names are unique in the whole registry."""
    names = iter(s + g for g in GIVEN for s in SURNAMES)
    now = datetime.now(UTC)
    engine = make_engine(db_url, poolclass=NullPool)
    cadres: list[Cadre] = []
    try:
        async with make_sessionmaker(engine)() as s, s.begin():
            d = await add_unit(s, "西秀区", "district", None)
            towns = [await add_unit(s, t, "township", d) for t in TOWNSHIPS]
            villages = [await add_unit(s, v, "village", towns[k % len(towns)]) for k, v in enumerate(VILLAGES)]
            people, homes_of = [], []
            for i in range(USERS):
                v = villages[i % len(villages)]
                people.append(Person(natural_key=f"干部{i:03d}|139{i:08d}", name=f"干部{i:03d}",
                                     phone=f"139{i:08d}", role="cadre", unit_id=v.id))
                homes_of.append([Household(natural_key=f"{v.id}||{h}", village_id=v.id, unit_id=v.id, head_name=h,
                                           size=3, htype="脱贫户") for h in (next(names) for _ in range(PER_USER))])
            s.add_all(people)
            s.add_all(h for homes in homes_of for h in homes)
            await s.flush()
            for i, (p, homes) in enumerate(zip(people, homes_of, strict=True)):
                uid = uid_base + i
                s.add_all(Pairing(person_id=p.id, household_id=h.id) for h in homes)
                s.add(ChatIdentity(person_id=p.id, channel="telegram", external_id=str(uid), chat_id=str(uid),
                                   display_name=p.name, bound_at=now))
                cadres.append(Cadre(uid, villages[i % len(villages)].name, [h.head_name for h in homes]))
    finally:
        await engine.dispose()
    return cadres


@dataclass
class Proc:
    name: str
    proc: asyncio.subprocess.Process
    log: Path

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def cpu_seconds(self) -> float:
        """User + system CPU time so far (Linux /proc; 0 elsewhere)."""
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def terminate(self) -> None:
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)

    async def wait(self) -> int:
        """The exit code after terminate(). One SIGTERM only: a second one could land after the process
        has removed its handler on the way out and kill it."""
        try:
            return await asyncio.wait_for(self.proc.wait(), STOP_TIMEOUT)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
            raise AssertionError(f"{self.name} did not exit within {STOP_TIMEOUT}s of SIGTERM; "
                                 f"log:\n{self.text()[-3000:]}") from None


def base_env(db_url: str, redis_url: str, api_base: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BANGFU_")}
    env.update({
        "PYTHONUNBUFFERED": "1",
        "BANGFU_DATABASE__URL": db_url,
        "BANGFU_REDIS__URL": redis_url,
        "BANGFU_TELEGRAM__TOKEN": TOKEN,
        "BANGFU_TELEGRAM__API_BASE": api_base,
        "BANGFU_TELEGRAM__WEBHOOK_SECRET": SECRET,
        # The default per-user limit (30 a minute) stays: 10 per user is under it, and the shared
        # Redis counter is checked below. Morning reminders would add cards of their own to every
        # cadre's chat (the catch-up runs one at start within 12 h of 08:00), so they are off.
        "BANGFU_REMINDERS__ENABLED": "false",
    })
    return env


async def spawn(name: str, args: list[str], env: dict[str, str], cwd: Path) -> Proc:
    log = cwd / f"{name}.log"
    with log.open("wb") as sink:  # a file, not a pipe: a chatty process never blocks on a full pipe
        proc = await asyncio.create_subprocess_exec(*bangfu_cmd(), *args, cwd=cwd, env=env, stdout=sink,
                                                    stderr=subprocess.STDOUT)
    return Proc(name, proc, log)


async def wait_until(what: str, cond: Any, timeout: float, procs: list[Proc]) -> None:  # noqa: ASYNC109
    deadline = time.monotonic() + timeout
    while not cond():
        for p in procs:
            if p.proc.returncode is not None:
                raise AssertionError(f"{p.name} exited with {p.proc.returncode} while waiting for {what}; "
                                     f"log:\n{p.text()[-3000:]}")
        if time.monotonic() > deadline:
            logs = "\n".join(f"--- {p.name}\n{p.text()[-1500:]}" for p in procs)
            raise AssertionError(f"timed out after {timeout}s waiting for {what}\n{logs}")
        await asyncio.sleep(0.2)


async def scheduler_lock_holders(db_url: str) -> int:
    """Sessions of this database holding the scheduler's advisory lock (bigint key: classid = high
    32 bits, objid = low 32 bits, objsubid = 1)."""
    db = make_url(db_url).database
    rows = await _pg_admin(db_url, (
        "SELECT count(*) AS n FROM pg_locks l JOIN pg_database d ON d.oid = l.database "
        f"WHERE l.locktype = 'advisory' AND l.granted AND d.datname = '{db}' "
        f"AND l.classid = {LOCK_KEY >> 32} AND l.objid = {LOCK_KEY & 0xFFFFFFFF} AND l.objsubid = 1"))
    return int(rows[0]["n"])


def pg_backend_cpu(db_name: str) -> dict[int, float]:
    """CPU seconds of each PostgreSQL backend serving `db_name` (Linux, server on this machine; else {})."""
    out: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            if not cmd.startswith("postgres:") or f" {db_name} " not in cmd:
                continue
            fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[int(d.name)] = (int(fields[11]) + int(fields[12])) / tick
    return out


def own_cpu() -> float:
    import resource

    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


@dataclass
class Delivery:
    update: JSON
    worker: int
    chat: int
    head: str
    item: str
    statuses: list[int] = field(default_factory=list)


# ---- the test ----------------------------------------------------------------------------------------


@pytest.fixture
async def api() -> AsyncIterator[FakeBotAPI]:
    async with FakeBotAPI(token=TOKEN) as server:
        yield server


async def test_two_webhook_workers_and_a_scheduler_share_one_database(
        api: FakeBotAPI, mp_db_url: str, redis_url: str, tmp_path: Path) -> None:
    t_start = time.monotonic()
    uid_base = 700_000_000 + (os.getpid() % 10_000) * 1_000  # rate-limit keys in Redis never meet another run's
    cadres = await seed(mp_db_url, uid_base)

    env = base_env(mp_db_url, redis_url, api.base_url)
    procs: list[Proc] = []
    try:
        # The scheduler first, so that it is the one that wins the election; the workers' own schedulers
        # (`bangfu run` starts one too) must then stay followers.
        sched = await spawn("scheduler", ["scheduler"], env, tmp_path)
        procs.append(sched)
        await wait_until("the scheduler to lead", lambda: "scheduler is the leader" in sched.text(),
                         START_TIMEOUT, procs)
        t_sched = time.monotonic()

        ports = [free_port() for _ in range(WORKERS)]
        urls = [f"http://127.0.0.1:{p}{WEBHOOK_PATH}" for p in ports]
        for k, (port, url) in enumerate(zip(ports, urls, strict=True)):
            wenv = dict(env, BANGFU_TELEGRAM__LISTEN=f"127.0.0.1:{port}", BANGFU_TELEGRAM__WEBHOOK_URL=url)
            procs.append(await spawn(f"worker{k}", ["run"], wenv, tmp_path))
        workers = procs[1:]

        def webhooks_set() -> bool:
            return {c.params.get("url") for c in api.calls("setWebhook", ok=True)} >= set(urls)

        await wait_until("both workers to listen", webhooks_set, START_TIMEOUT, procs)
        assert all(c.params.get("secret_token") == SECRET for c in api.calls("setWebhook"))
        t_ready = time.monotonic()

        # ---- the load: 10 visit logs per cadre, round robin over cadres; a cadre's messages alternate
        # between the workers, so both handle every cadre.
        rng = random.Random(2026)
        deliveries: list[Delivery] = []
        for k in range(PER_USER):
            for i, c in enumerate(cadres):
                form, item = VISIT_FORMS[(i + k) % len(VISIT_FORMS)]
                head = c.heads[k]
                upd = api.make_text_update(c.uid, c.uid, form.format(v=c.village, h=head), first_name="干部",
                                           last_name=None)
                upd["update_id"] = len(deliveries) + 1
                deliveries.append(Delivery(upd, (i + k) % WORKERS, c.uid, head, item))
        picked = rng.sample(range(len(deliveries)), REDELIVER_RACING + REDELIVER_LATE)
        racing, late = set(picked[:REDELIVER_RACING]), picked[REDELIVER_RACING:]

        sem = asyncio.Semaphore(CONCURRENCY)
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=180)) as http:

            async def post(d: Delivery, worker: int) -> None:
                body = json.dumps(d.update, ensure_ascii=False).encode()
                async with http.post(urls[worker], data=body, headers={
                        "Content-Type": "application/json", SECRET_HEADER: SECRET}) as resp:
                    await resp.read()
                    d.statuses.append(resp.status)

            async def deliver(n: int, d: Delivery) -> None:
                async with sem:
                    if n in racing:  # Telegram's retry arriving at the other worker while the first runs
                        await asyncio.gather(post(d, d.worker), post(d, 1 - d.worker))
                    else:
                        await post(d, d.worker)

            # A wrong secret is refused by both workers and stores nothing.
            for url in urls:
                async with http.post(url, data=json.dumps(deliveries[0].update).encode(),
                                     headers={SECRET_HEADER: "wrong"}) as resp:
                    assert resp.status == 401

            lock_samples = [await scheduler_lock_holders(mp_db_url)]
            cpu0 = {p.name: p.cpu_seconds() for p in procs}
            db_name = str(make_url(mp_db_url).database)
            pg_cpu0, own_cpu0 = pg_backend_cpu(db_name), own_cpu()
            limits = RedisCounters(redis_url, f"bangfu:rl:telegram:{str(uid_base)[:-3]}*")
            t0 = time.monotonic()
            async with limits:
                await asyncio.gather(*(deliver(n, d) for n, d in enumerate(deliveries)))
                t_ingest = time.monotonic() - t0
            limit_counts = limits.per_user()
            lock_samples.append(await scheduler_lock_holders(mp_db_url))
            await asyncio.gather(*(post(deliveries[n], 1 - deliveries[n].worker) for n in late))

        bad = [(d.update["update_id"], d.statuses) for d in deliveries if any(s != 200 for s in d.statuses)]
        assert not bad, f"webhook answers other than 200: {bad[:20]}"

        # ---- wait for every reply
        mine = {c.uid for c in cadres}

        def replies() -> list[JSON]:
            return [c.params for c in api.calls("sendMessage", ok=True) if int(c.params["chat_id"]) in mine]

        await wait_until("2,000 reply cards", lambda: len(replies()) >= len(deliveries), DELIVERY_TIMEOUT, procs)
        t_delivered = time.monotonic() - t0
        cpu = {p.name: round(p.cpu_seconds() - cpu0[p.name], 1) for p in procs}
        cpu["postgres"] = round(sum(v - pg_cpu0.get(pid, 0.0) for pid, v in pg_backend_cpu(db_name).items()), 1)
        cpu["test (fake API + load balancer)"] = round(own_cpu() - own_cpu0, 1)

        engine = make_engine(mp_db_url, poolclass=NullPool)
        sm = make_sessionmaker(engine)

        async def count(q: Any) -> int:
            async with sm() as s:
                return int((await s.execute(q)).scalar_one())

        try:
            unsettled = select(func.count()).select_from(OutboxMessage).where(
                OutboxMessage.status.in_(("pending", "sending")))
            deadline = time.monotonic() + SETTLE_TIMEOUT
            while time.monotonic() < deadline:
                if not await count(unsettled):
                    break
                await asyncio.sleep(0.5)
            await asyncio.sleep(2.0)  # anything sent twice would show up by now
            lock_samples.append(await scheduler_lock_holders(mp_db_url))

            # ---- the database: exactly one of everything per original update
            n = len(deliveries)
            assert await count(unsettled) == 0
            assert await count(select(func.count()).select_from(InboxMessage)) == n
            async with sm() as s:
                states = dict((await s.execute(select(InboxMessage.state, func.count())
                                               .group_by(InboxMessage.state))).all())
                outbox = dict((await s.execute(select(OutboxMessage.status, func.count())
                                               .group_by(OutboxMessage.status))).all())
            print(f"[multiproc] inbox states {states}")
            assert states == {"done": n}, states
            assert await count(select(func.count()).select_from(Entry)) == n
            assert await count(select(func.count()).select_from(Entry).where(Entry.state == "saved")) == n
            assert await count(select(func.count()).select_from(Visit)) == n
            assert await count(select(func.count(func.distinct(Visit.household_id)))) == n
            assert await count(select(func.count()).select_from(Need)) == n
            outbox_stats = await table_sizes(sm)
        finally:
            await engine.dispose()

        send_times = sorted(c.timestamp for c in api.calls("sendMessage", ok=True))
        peak = max_in_window(send_times, 1.0)
        print(f"\n[multiproc] scheduler leading after {t_sched - t_start:.1f}s, workers ready after "
              f"{t_ready - t_start:.1f}s; {n} updates (+{len(picked)} redelivered) "
              f"ingested by {WORKERS} workers in {t_ingest:.1f}s = {n / t_ingest:.1f} updates/s; "
              f"all {n} cards delivered {t_delivered:.1f}s after the first POST = "
              f"{n / t_delivered:.1f} replies/s; peak {peak} sendMessage in one second; "
              f"outbox rows {outbox}; CPU s used meanwhile {cpu}")
        print(f"[multiproc] table sizes after {n} visits: {outbox_stats}")

        assert outbox == {"sent": n}, outbox

        # ---- the fake Bot API: one card per update, in the right chat, nothing else
        sent = replies()
        per_chat = Counter(int(p["chat_id"]) for p in sent)
        assert set(per_chat) == mine
        assert max(per_chat.values()) == PER_USER and min(per_chat.values()) == PER_USER, per_chat.most_common(3)
        cards: dict[tuple[int, str], list[str]] = defaultdict(list)
        for p in sent:
            m = re.search(r"户主：(\S+?)（", p["text"])
            assert "已记录走访" in p["text"] and m, p["text"]
            cards[(int(p["chat_id"]), m.group(1))].append(p["text"])
        for d in deliveries:
            texts = cards.get((d.chat, d.head), [])
            assert len(texts) == 1, f"{len(texts)} cards for {d.head} in chat {d.chat}: {texts}"
            assert d.item in texts[0], texts[0]
        assert len(cards) == len(deliveries)

        # ---- the shared per-user limit: the workers' Redis counters (one per user and minute) saw each
        # original update exactly once, whichever worker took it; duplicates never reach the limiter.
        off = sorted((u, limit_counts[u]) for u in mine if limit_counts[u] != PER_USER)
        assert not off, f"{len(off)} users' rate-limit counters are not {PER_USER}: {off[:10]}"

        # ---- one scheduler, two workers: the lock was held by exactly one session each time we looked,
        # and only the `bangfu scheduler` process ever led.
        assert lock_samples == [1, 1, 1], lock_samples
        leaders = {p.name: p.text().count("scheduler is the leader") for p in procs}
        assert leaders == {"scheduler": 1, "worker0": 0, "worker1": 0}, leaders
        dups = sum(p.text().count("duplicate delivery") for p in workers)
        assert dups == REDELIVER_RACING + REDELIVER_LATE, dups
        handled = [p.text().count("handler failed") for p in workers]
        assert handled == [0, 0], handled

        # ---- a clean stop: SIGTERM, exit code 0, no traceback, and the token never logged
        t_stop = time.monotonic()
        for p in reversed(procs):
            p.terminate()
        for p in reversed(procs):
            rc = await p.wait()
            log = p.text()
            assert rc == 0, f"{p.name} exited with {rc} after SIGTERM; log:\n{log[-3000:]}"
            assert "Traceback" not in log, f"{p.name}:\n{log[-3000:]}"
            assert TOKEN.split(":")[1] not in log

        print(f"[multiproc] stop {time.monotonic() - t_stop:.1f}s; total {time.monotonic() - t_start:.1f}s")
    finally:
        for p in procs:
            if p.proc.returncode is None:
                p.proc.kill()
                await p.proc.wait()


class RedisCounters:
    """Reads the rate limiter's per-user-per-minute counters every few seconds while the load runs: each
    key expires 120 s after its last use, so reading them only at the end could miss early minutes."""

    def __init__(self, url: str, pattern: str) -> None:
        import redis.asyncio as aredis

        self.redis = aredis.from_url(url)
        self.pattern = pattern
        self.seen: dict[str, int] = {}
        self._task: asyncio.Task[None] | None = None

    async def sample(self) -> None:
        async for k in self.redis.scan_iter(match=self.pattern, count=1000):
            v = await self.redis.get(k)
            if v is not None:
                key = k.decode()
                self.seen[key] = max(self.seen.get(key, 0), int(v))

    async def _loop(self) -> None:
        while True:
            await self.sample()
            await asyncio.sleep(5)

    async def __aenter__(self) -> RedisCounters:
        self._task = asyncio.create_task(self._loop())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        try:
            await self.sample()
            if self.seen:
                await self.redis.delete(*self.seen)
        finally:
            await self.redis.aclose()

    def per_user(self) -> Counter[int]:
        out: Counter[int] = Counter()
        for key, n in self.seen.items():  # bangfu:rl:telegram:{user}:{minute}
            out[int(key.split(":")[3])] += n
        return out


def max_in_window(ts: list[float], width: float) -> int:
    best, j = 0, 0
    for i, t in enumerate(ts):
        while ts[j] < t - width + 1e-9:
            j += 1
        best = max(best, i - j + 1)
    return best


async def table_sizes(sm: Any) -> dict[str, int]:
    """pg_total_relation_size (heap + indexes + TOAST) of the tables one visit log touches."""
    out = {}
    async with sm() as s:
        for t in ("inbox", "entry", "visit", "need", "outbox"):
            out[t] = int((await s.execute(text(f"SELECT pg_total_relation_size('{t}')"))).scalar_one())
    return out
