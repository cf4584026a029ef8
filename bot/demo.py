"""`bangfu demo`: a whole district on the embedded database, driven through a simulated week.

Every message goes through the real pipeline (Incoming → dispatch → handlers → storage → outbox) on a
fixed clock; the scheduler's jobs are called at their times. Outputs land in var/demo/.
"""

from __future__ import annotations

import contextlib
import json
import random
import secrets
import sqlite3
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy import func, select

from bot.app import App, prefs_from
from bot.config import DatabaseCfg, RedisCfg, Settings
from bot.demo_messages import cancel, correction, question, signup, visit_log
from bot.sampledata import DISTRICT, csv_bytes, generate_rows, masked_rows, write_csv
from bot.transports.base import Capabilities, OnUpdate, OutMessage, Sent
from handlers.digest import build_digest, bulletins, weekly_digests
from handlers.reminders import morning_reminders
from handlers.spreadsheets import import_spreadsheet
from handlers.types import ChatRef, Incoming
from storage.engine import upgrade_async
from storage.models import (
    AuditLog,
    ChatGroup,
    ChatIdentity,
    Entry,
    Household,
    InboxMessage,
    Need,
    OrgUnit,
    OutboxMessage,
    Pairing,
    Person,
    SendLedger,
    Signup,
    Visit,
)
from storage.trainings import create_session

# "tiny" is a quick look (and what the README check runs).
SCALES = {"small": (1500, 300, 20), "district": (12993, 2862, 182), "tiny": (150, 30, 4)}
DEMO_DB = "demo.db"
# Audit actions that mean someone other than the demo put real data into the file.
_REAL_ACTIONS = ("import_households", "training.session.create", "training.session.reopen", "invite.create")
WEEK = date(2026, 11, 23)  # Monday of ISO week 2026-W48
COURSES = [("刺梨种植", "产业"), ("生态鸡养殖", "产业"), ("电工", "就业"), ("家政服务", "就业"), ("挖掘机操作", "就业"),
           ("电商", "就业")]
# The demo channel delivers instantly; real channels' limits are what the outbox enforces in production.
DEMO_CAPS = Capabilities(name="demo", max_text=4096, global_rate=100_000.0, per_chat_interval=0.0001,
                         group_per_minute=100_000)


PROGRESS_EVERY = 5.0  # seconds between progress lines when the output is not a terminal


@contextlib.contextmanager
def _progress(console: Console, label: str, total: int) -> Iterator[Callable[[], None]]:
    """A rich progress bar on a terminal; elsewhere (a log, CI, nohup) one plain line every few seconds,
    so a long run (the district scale takes minutes) is never silent."""
    if console.is_terminal:
        with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=console, transient=False) as bar:
            task = bar.add_task(label, total=total)
            yield lambda: bar.advance(task)
        return
    done = 0
    t0 = last = time.monotonic()

    def advance() -> None:
        nonlocal done, last
        done += 1
        now = time.monotonic()
        if now - last >= PROGRESS_EVERY or done == total:
            last = now
            console.print(f"{label}：{done}/{total} 条（{100 * done // max(1, total)}%），用时 {now - t0:.0f} 秒",
                          highlight=False, soft_wrap=True)

    yield advance


class DemoClock:
    def __init__(self, now: datetime) -> None:
        self.t = now

    def now(self) -> datetime:
        return self.t


class DemoTransport:
    """Records every message; keeps full transcripts for a few chats."""

    name = "demo"
    capabilities = DEMO_CAPS

    def __init__(self, watch: set[str]) -> None:
        self.watch = watch
        self.transcript: dict[str, list[str]] = defaultdict(list)
        self.last: dict[str, OutMessage] = {}
        self.last_id: dict[str, str] = {}
        self.counts: Counter[str] = Counter()
        self.received = 0  # messages the simulated cadres sent
        self._n = 0

    async def start(self, on_update: OnUpdate) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def send(self, msg: OutMessage) -> Sent:
        self._n += 1
        chat = msg.chat.chat_id
        self.last[chat] = msg
        self.last_id[chat] = f"m{self._n}"
        self.counts["group" if msg.chat.is_group else "private"] += 1
        if chat in self.watch or msg.chat.is_group:
            tag = "（编辑）" if msg.edit_message_id else ""
            extra = "".join(f" [{b.text}]" for row in msg.buttons for b in row)
            doc = msg.document or msg.photo
            files = f"\n   📎 {doc.filename}" if doc else ""
            self.transcript[chat].append(f"🤖{tag} {msg.text}{extra}{files}".replace("\n", "\n   "))
        return Sent(message_id=f"m{self._n}")


@dataclass
class Summary:
    timings: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    out_dir: Path = Path("var/demo")
    messages: int = 0


class DemoRefused(Exception):
    """The demo's database file holds data the demo did not put there; one line for the operator."""


def demo_dir(settings: Settings) -> Path:
    return Path(settings.app.data_dir) / "demo"


def demo_db_path(settings: Settings) -> Path:
    return (demo_dir(settings) / DEMO_DB).resolve()


def demo_settings(settings: Settings) -> Settings:
    """The same settings on the demo's own SQLite file: the configured database (SQLite or PostgreSQL)
    is never opened by the demo, and no Redis is shared with a real deployment."""
    url = f"sqlite+aiosqlite:///{demo_db_path(settings).as_posix()}"
    return settings.model_copy(update={"database": DatabaseCfg(url=url), "redis": RedisCfg()})


def _foreign_writes(conn: sqlite3.Connection, token: str) -> str | None:
    """Why this file is not (only) the demo's, or None. Ownership is a random token kept both in the
    owner file beside the database and in the demo's seed row; writes by anyone else show in the audit log."""
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if "household" not in tables:
        return None  # an empty schema (a demo stopped before its import): nothing to lose
    if "audit_log" not in tables:
        return "没有演示的标记"
    seeds = [json.loads(d) if isinstance(d, str) else d
             for (d,) in conn.execute("SELECT detail FROM audit_log WHERE action='demo.create'")]
    has_rows = conn.execute("SELECT 1 FROM household LIMIT 1").fetchone() is not None
    if has_rows and not any(isinstance(d, dict) and d.get("demo_id") == token for d in seeds):
        return "不是本机演示创建的"
    placeholders = ",".join("?" * len(_REAL_ACTIONS))
    row = conn.execute(f"SELECT action FROM audit_log WHERE actor <> 'demo' AND action IN ({placeholders}) "
                       "LIMIT 1", _REAL_ACTIONS).fetchone()
    if row is not None:
        return f"含有演示以外写入的数据（{row[0]}）"
    return None


def _prepare_database(path: Path) -> str:
    """Start from a clean demo database and return this run's ownership token. A file the demo did not
    create, or one that real data was written into, is refused and left exactly as it is."""
    owner = path.with_name(path.name + ".owner")
    if path.exists():
        token = owner.read_text(encoding="utf-8").strip() if owner.exists() else ""
        if not token:
            raise DemoRefused(f"{path} 不是演示创建的数据库，演示不会动它。请把它移走后再运行 bangfu demo")
        # Read-only, so that even a refused file is not checkpointed or otherwise changed.
        with contextlib.closing(sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)) as conn:
            why = _foreign_writes(conn, token)
        if why is not None:
            raise DemoRefused(f"{path} {why}，演示不会删除它。请把它移走后再运行 bangfu demo")
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_hex(16)
    owner.write_text(token + "\n", encoding="utf-8")
    return token


async def run_demo(settings: Settings, *, scale: str = "small", seed: int = 2026, console: Console | None = None,
                   messages_per_cadre_day: float = 0.45) -> Summary:
    console = console or Console()
    out = demo_dir(settings)
    out.mkdir(parents=True, exist_ok=True)
    token = _prepare_database(demo_db_path(settings))
    settings = demo_settings(settings)
    summary = Summary(out_dir=out)
    rng = random.Random(seed)
    t_all = time.perf_counter()
    n_households, n_cadres, n_villages = SCALES[scale]

    t = time.perf_counter()
    await upgrade_async(settings.database.url)
    rows = generate_rows(households=n_households, cadres=n_cadres, villages=n_villages, seed=seed)
    # The full register goes into the database; the file left for people to open is masked (phones) and
    # carries no ID numbers, like every export.
    roster_bytes = csv_bytes(rows)
    write_csv(masked_rows(rows), out / "roster.csv")
    clock = DemoClock(datetime(2026, 11, 22, 20, 0, tzinfo=settings.tz))
    transport = DemoTransport(watch=set())
    app = App(settings, clock=clock, transports=[transport], with_scheduler=False)
    await app.build()
    assert app.sessionmaker is not None and app.dispatcher is not None and app.outbox is not None
    sm = app.sessionmaker
    async with sm() as s, s.begin():
        s.add(AuditLog(at=clock.now(), actor="demo", action="demo.create", detail={"demo_id": token}))
        await import_spreadsheet(s, roster_bytes, "roster.csv", district=DISTRICT, actor="demo")
    summary.timings["import roster"] = time.perf_counter() - t

    t = time.perf_counter()
    cadres, watch = await _seed_people_and_courses(sm, clock.now(), rng)
    transport.watch = watch
    summary.timings["seed people, courses"] = time.perf_counter() - t

    prefs = prefs_from(settings)
    days = [WEEK + timedelta(days=i) for i in range(5)]
    planned = int(len(cadres) * messages_per_cadre_day) * len(days)
    sent = 0
    t_week = time.perf_counter()
    with _progress(console, "模拟 2026-W48", planned) as advance:
        for day in days:
            clock.t = datetime.combine(day, datetime.min.time(), settings.tz).replace(hour=8)
            async with sm() as s, s.begin():
                await morning_reminders(s, now=clock.now(), prefs=prefs)
            if (day - WEEK).days % 2 == 1:
                async with sm() as s, s.begin():
                    await bulletins(s, now=clock.now().replace(hour=9), prefs=prefs)
            await app.outbox.drain(timeout=120)
            active = rng.sample(cadres, int(len(cadres) * messages_per_cadre_day))
            for k, cadre in enumerate(active):
                clock.t = datetime.combine(day, datetime.min.time(), settings.tz).replace(
                    hour=9 + (8 * k) // max(1, len(active)), minute=rng.randrange(60))
                await _cadre_turn(app, transport, cadre, rng, day)
                sent += 1
                advance()
        clock.t = datetime.combine(WEEK + timedelta(days=7), datetime.min.time(), settings.tz).replace(hour=8, minute=30)
        async with sm() as s, s.begin():
            await weekly_digests(s, now=clock.now(), prefs=prefs, week_start=WEEK)
        await app.outbox.drain(timeout=300)
    summary.timings["simulated week"] = time.perf_counter() - t_week

    t = time.perf_counter()
    async with sm() as s:
        district = (await s.execute(select(OrgUnit).where(OrgUnit.level == "district"))).scalars().first()
        assert district is not None
        digest = await build_digest(s, unit=district, week_start=WEEK, prefs=prefs, today=WEEK + timedelta(days=7))
    (out / "digest.txt").write_text(digest.text + "\n", encoding="utf-8")
    (out / "digest.png").write_bytes(digest.png)
    (out / "digest.xlsx").write_bytes(digest.xlsx)
    lines = []
    for chat, msgs in transport.transcript.items():
        lines.append(f"===== {chat} =====")
        lines.extend(msgs)
        lines.append("")
    (out / "transcript.txt").write_text("\n".join(lines), encoding="utf-8")
    await _upcoming_sessions(sm, settings)
    summary.timings["digest files"] = time.perf_counter() - t
    summary.timings["total"] = time.perf_counter() - t_all
    summary.messages = transport.received
    summary.counts = await _counts(sm)
    await app.stop()
    _print(console, summary, transport, sent)
    return summary


async def _seed_people_and_courses(sm: Any, now: datetime, rng: random.Random) -> tuple[list[dict[str, Any]], set[str]]:
    """Supervisors per township, an organiser and an admin; a chat identity for everyone; a group for
    bulletins; this month's training sessions."""
    async with sm() as s, s.begin():
        district = (await s.execute(select(OrgUnit).where(OrgUnit.level == "district"))).scalars().first()
        townships = list((await s.execute(select(OrgUnit).where(OrgUnit.level == "township"))).scalars())
        extra = [Person(natural_key=f"{district.name}督查组|demo", name="周督查", role="supervisor", unit_id=district.id),
                 Person(natural_key="区人社局培训股|demo", name="黄组织", role="organiser", unit_id=district.id,
                        org_name="区人社局"),
                 Person(natural_key="区乡村振兴局|demo", name="管理员", role="admin", unit_id=district.id)]
        for tw in townships:
            extra.append(Person(natural_key=f"{tw.name}督查|demo", name=f"{tw.name[:2]}督查", role="supervisor",
                                unit_id=tw.id))
        s.add_all(extra)
        await s.flush()
        people = list((await s.execute(select(Person))).scalars())
        for p in people:
            s.add(ChatIdentity(person_id=p.id, channel="demo", external_id=f"p{p.id}", chat_id=f"p{p.id}",
                               display_name=p.name, bound_at=now))
        s.add(ChatGroup(channel="demo", chat_id="group-district", title=f"{district.name}帮扶工作群",
                        unit_id=district.id, bulletins=True))
        organiser = extra[1]
        for i, (course, _cat) in enumerate(COURSES):
            start = datetime.combine(WEEK + timedelta(days=8 + i), datetime.min.time(), now.tzinfo).replace(hour=9)
            await create_session(s, course_name=course, starts_at=start, now=now, place=f"{district.name}职业培训中心",
                                 capacity=30, village_quota=6, deadline=start - timedelta(days=2),
                                 organiser_id=organiser.id, contact="黄组织")
        s.add(AuditLog(at=now, actor="demo", action="demo.seed", detail={"people": len(people)}))
        q = (select(Person.id, Person.name, Household.head_name, OrgUnit.name, Household.size)
             .join(Pairing, Pairing.person_id == Person.id).join(Household, Household.id == Pairing.household_id)
             .join(OrgUnit, OrgUnit.id == Household.village_id).where(Person.role.in_(("cadre", "secretary"))))
        by: dict[int, dict[str, Any]] = {}
        for pid, pname, head, village, size in (await s.execute(q)).all():
            by.setdefault(pid, {"id": pid, "name": pname, "households": []})["households"].append((head, village, size))
    cadres = sorted(by.values(), key=lambda c: c["id"])
    watch = {f"p{c['id']}" for c in rng.sample(cadres, 3)} | {f"p{extra[0].id}"}
    return cadres, watch


async def _upcoming_sessions(sm: Any, settings: Settings) -> None:
    """Sessions that are still open on the real calendar, so that `/train` in `bangfu --demo chat`
    (which runs on the real clock, not the demo's) has something to sign up for."""
    real_now = datetime.now(settings.tz)
    async with sm() as s, s.begin():
        organiser = (await s.execute(select(Person).where(Person.natural_key == "区人社局培训股|demo"))).scalar_one()
        district = (await s.execute(select(OrgUnit).where(OrgUnit.level == "district"))).scalars().first()
        for i, course in enumerate(("刺梨种植", "电商", "家政服务")):
            start = datetime.combine(real_now.date() + timedelta(days=10 + 2 * i), datetime.min.time(),
                                     settings.tz).replace(hour=9)
            await create_session(s, course_name=course, starts_at=start, now=real_now,
                                 place=f"{district.name if district else ''}职业培训中心", capacity=40, village_quota=6,
                                 deadline=start - timedelta(days=2), organiser_id=organiser.id, contact="黄组织")


async def _send(app: App, transport: DemoTransport, cadre: dict[str, Any], text: str, *, kind: str = "message",
                callback: str | None = None, reply_to: str | None = None) -> OutMessage | None:
    assert app.dispatcher is not None and app.outbox is not None
    chat = f"p{cadre['id']}"
    mid = f"{chat}-{time.perf_counter_ns()}"
    if chat in transport.watch:
        transport.transcript[chat].append(f"👤 {text or ('按钮：' + str(callback))}".replace("\n", "\n   "))
    inc = Incoming(chat=ChatRef("demo", chat), sender_id=chat, sender_name=cadre["name"], message_id=mid,
                   kind=kind, text=text, callback_data=callback, reply_to_message_id=reply_to,  # type: ignore[arg-type]
                   dedup_key=f"cb:{mid}" if callback else None)
    transport.last.pop(chat, None)
    await app.dispatcher.handle(inc)
    transport.received += 1
    await app.outbox.drain(timeout=60)
    return transport.last.get(chat)


async def _answer_choices(app: App, transport: DemoTransport, cadre: dict[str, Any], reply: OutMessage | None) -> OutMessage | None:
    """Press a button the way a cadre would when the bot asks which household or which day."""
    for _ in range(4):
        if reply is None or not reply.buttons or "已记录走访" in reply.text:
            return reply
        flat = [b for row in reply.buttons for b in row]
        pick = next((b for b in flat if b.data.startswith(("pk:", "dt:")) and not b.data.endswith(":0")), None)
        if pick is None:
            pick = next((b for b in flat if b.data.startswith("add:")), flat[-1])
        reply = await _send(app, transport, cadre, "", kind="callback", callback=pick.data)
    return reply


async def _cadre_turn(app: App, transport: DemoTransport, cadre: dict[str, Any], rng: random.Random, day: date) -> None:
    head, village, size = rng.choice(cadre["households"])
    roll = rng.random()
    if roll < 0.08:
        await _send(app, transport, cadre, question(rng).text)
        return
    if roll < 0.16:
        names = [h for h, v, _ in cadre["households"] if v == village][: rng.choice([1, 2])]
        course, _ = rng.choice(COURSES)
        await _send(app, transport, cadre, signup(course, village, names or [head], rng).text)
        if rng.random() < 0.25:
            await _send(app, transport, cadre, cancel(names[0] if names else head, course, rng).text)
        return
    reply = await _send(app, transport, cadre, visit_log(head, village, size, rng).text)
    reply = await _answer_choices(app, transport, cadre, reply)
    if reply is not None and "已记录走访" in reply.text and rng.random() < 0.12:
        card_id = transport.last_id[f"p{cadre['id']}"]
        await _send(app, transport, cadre, correction(rng).text, reply_to=card_id)


async def _counts(sm: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    async with sm() as s:
        for label, model, where in [
            ("households", Household, None), ("cadres", Person, Person.role.in_(("cadre", "secretary"))),
            ("villages", OrgUnit, OrgUnit.level == "village"), ("messages received", InboxMessage, None),
            ("visit entries", Entry, Entry.state == "saved"), ("visits", Visit, Visit.deleted.is_(False)),
            ("needs raised", Need, None), ("training sign-ups", Signup, None),
            ("questions answered", InboxMessage, InboxMessage.state == "answered"),
            ("messages delivered", OutboxMessage, OutboxMessage.status == "sent"),
            ("reminders", SendLedger, SendLedger.kind == "visit_due"),
            ("bulletins", SendLedger, SendLedger.kind == "bulletin"),
            ("weekly digests", SendLedger, SendLedger.kind == "weekly_digest"),
        ]:
            q = select(func.count()).select_from(model)
            if where is not None:
                q = q.where(where)
            out[label] = int((await s.execute(q)).scalar_one())
    return out


COUNT_LABELS = {"households": "农户", "cadres": "帮扶干部", "villages": "村", "messages received": "收到消息",
                "visit entries": "走访记录条目", "visits": "走访（户次）", "needs raised": "提出的需求",
                "training sign-ups": "培训报名", "questions answered": "答复的提问", "messages delivered": "发出的消息",
                "reminders": "到期提醒", "bulletins": "群通报", "weekly digests": "周报"}
PHASE_LABELS = {"import roster": "导入花名册", "seed people, courses": "准备人员和培训", "simulated week": "模拟一周",
                "digest files": "生成周报文件", "total": "合计"}


def _print(console: Console, s: Summary, transport: DemoTransport, turns: int) -> None:
    table = Table(title="bangfu 演示 — 西秀区，2026-W48（模拟）", show_header=True)
    table.add_column("项目")
    table.add_column("数量", justify="right")
    for k, v in s.counts.items():
        table.add_row(COUNT_LABELS.get(k, k), f"{v:,}")
    console.print(table)
    t = Table(show_header=True)
    t.add_column("阶段")
    t.add_column("秒", justify="right")
    for k, secs in s.timings.items():
        t.add_row(PHASE_LABELS.get(k, k), f"{secs:.1f}")
    week = s.timings.get("simulated week", 0.0)
    if week and s.messages:
        t.add_row("每秒处理消息数", f"{s.messages / week:.0f}")
    console.print(t)
    console.print(f"结果在 [bold]{s.out_dir}/[/]：digest.txt、digest.png、digest.xlsx、transcript.txt、roster.csv",
                  soft_wrap=True)
    console.print("自己和机器人对话（你是演示里的一位帮扶干部）：[bold]bangfu --demo chat[/]", soft_wrap=True)
