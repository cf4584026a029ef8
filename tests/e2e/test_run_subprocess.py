"""`bangfu run` as an operator starts it: a plain process configured by environment variables, talking to a
Bot API server (here FakeBotAPI, in this test's event loop) at BANGFU_TELEGRAM__API_BASE.

The database is prepared with the CLI too: `bangfu init`, `bangfu import examples/households_sample.xlsx`,
`bangfu invite` (the code is the last line of its output). Only standard Bot API methods are relied on.
"""

from __future__ import annotations

import asyncio
import csv
import fcntl
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from tests.fakes.botapi import FakeBotAPI

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SAMPLE_XLSX = ROOT / "examples" / "households_sample.xlsx"
SAMPLE_CSV = ROOT / "examples" / "households_sample.csv"
TOKEN = "123456789:AAFakeTokenForTestsOnly_abcdefghijk"
USER = 7001
START_TIMEOUT = 60.0  # importing aiogram alone takes ~8 s on a busy 2-core CI runner
STOP_TIMEOUT = 15.0


def bangfu_cmd() -> list[str]:
    script = Path(sys.executable).with_name("bangfu")
    return [str(script)] if script.exists() else [sys.executable, "-m", "bot"]


def base_env(db: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BANGFU_")}
    env["BANGFU_DATABASE__URL"] = f"sqlite:///{db}"
    env["PYTHONUNBUFFERED"] = "1"
    return env


@dataclass(frozen=True)
class Sample:
    cadre: str
    village: str
    head: str


def pick_from_sample() -> Sample:
    """A cadre with a unique name and one of their households whose head's name is unique in the file."""
    with SAMPLE_CSV.open(encoding="utf-8-sig", newline="") as f:
        rows = list(csv.DictReader(f))
    heads = Counter(r["户主姓名"] for r in rows)
    cadre_phones: dict[str, set[str]] = {}
    for r in rows:
        cadre_phones.setdefault(r["帮扶责任人"], set()).add(r["责任人电话"])
    for r in rows:
        cadre, head = r["帮扶责任人"], r["户主姓名"]
        if cadre and "、" not in cadre and len(cadre_phones[cadre]) == 1 and heads[head] == 1 and len(head) >= 2:
            return Sample(cadre, r["村"], head)
    raise AssertionError("no usable cadre/household pair in the sample register")


def build_template(work: Path) -> tuple[Path, str]:
    db = work / "template.db"
    env = base_env(db)
    init = subprocess.run([*bangfu_cmd(), "init"], cwd=work, env=env, capture_output=True, text=True, timeout=120)
    assert init.returncode == 0, init.stderr
    assert "数据库已就绪" in init.stdout
    imp = subprocess.run([*bangfu_cmd(), "import", str(SAMPLE_XLSX)], cwd=work, env=env, capture_output=True,
                         text=True, timeout=120)
    assert imp.returncode == 0, imp.stderr
    inv = subprocess.run([*bangfu_cmd(), "invite", "--role", "cadre", "--person", pick_from_sample().cadre],
                         cwd=work, env=env, capture_output=True, text=True, timeout=120)
    assert inv.returncode == 0, inv.stderr
    code = inv.stdout.strip().splitlines()[-1].strip()
    assert code and " " not in code, inv.stdout
    return db, code


@pytest.fixture(scope="session")
def seeded_template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """`bangfu init`, `bangfu import` and `bangfu invite`, once per test run (each CLI call costs seconds;
    under xdist the workers share one copy through a lock). The invite code is single-use, but every test
    binds on its own copy of the database file."""
    if not SAMPLE_XLSX.exists():
        pytest.skip(f"{SAMPLE_XLSX} is missing")
    shared = os.environ.get("PYTEST_XDIST_WORKER") is not None
    root = tmp_path_factory.getbasetemp().parent if shared else tmp_path_factory.getbasetemp()
    work = root / "bangfu-run-template"
    with (root / "bangfu-run-template.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = work / "code.txt"
        if done.exists():
            return work / "template.db", done.read_text().strip()
        work.mkdir(exist_ok=True)
        db, code = build_template(work)
        done.write_text(code)
        return db, code


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Running:
    proc: asyncio.subprocess.Process
    db: Path
    log: Path
    ops: str  # base URL of the health and metrics listener

    async def get(self, path: str) -> tuple[int, str]:
        async with aiohttp.ClientSession() as http, http.get(self.ops + path) as r:
            return r.status, await r.text()

    async def updates_handled(self) -> float:
        status, text = await self.get("/metrics")
        assert status == 200, text
        m = re.search(r'^bangfu_updates_handled_total\{channel="telegram"\} (\S+)$', text, re.M)
        return float(m.group(1)) if m else 0.0

    def stderr(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def visits(self) -> int:
        with sqlite3.connect(self.db) as conn:
            return int(conn.execute("SELECT count(*) FROM visit WHERE NOT deleted").fetchone()[0])

    async def stop(self, sig: int) -> int:
        self.proc.send_signal(sig)
        try:
            return await asyncio.wait_for(self.proc.wait(), STOP_TIMEOUT)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
            raise AssertionError(f"bangfu run did not exit within {STOP_TIMEOUT}s of {signal.Signals(sig).name}; "
                                 f"log:\n{self.stderr()[-3000:]}") from None


@pytest.fixture
async def api() -> AsyncIterator[FakeBotAPI]:
    async with FakeBotAPI(token=TOKEN) as server:
        yield server


async def start_bot(api: FakeBotAPI, db: Path, cwd: Path, framework: str) -> Running:
    env = base_env(db)
    env.update({
        "BANGFU_TELEGRAM__TOKEN": TOKEN,
        "BANGFU_TELEGRAM__API_BASE": api.base_url,
        "BANGFU_TELEGRAM__POLL_TIMEOUT": "1",
        "BANGFU_TELEGRAM__FRAMEWORK": framework,
        # A polling deployment with the optional health/metrics listener; one framework logs JSON.
        "BANGFU_APP__METRICS_LISTEN": f"127.0.0.1:{free_port()}",
        "BANGFU_APP__LOG_FORMAT": "json" if framework == "ptb" else "text",
    })
    log = cwd / f"run-{framework}.log"
    with log.open("wb") as sink:  # a file, not a pipe: a chatty bot can never block on a full pipe
        proc = await asyncio.create_subprocess_exec(*bangfu_cmd(), "run", cwd=cwd, env=env,
                                                    stdout=sink, stderr=subprocess.STDOUT)
    running = Running(proc, db, log, "http://" + env["BANGFU_APP__METRICS_LISTEN"])
    try:
        await api.wait_for(lambda: bool(api.calls("getUpdates")) or proc.returncode is not None, START_TIMEOUT)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise AssertionError(f"bangfu run never polled; log:\n{running.stderr()[-3000:]}") from None
    assert proc.returncode is None, f"bangfu run exited with {proc.returncode}:\n{running.stderr()[-3000:]}"
    return running


@pytest.fixture
async def bot_process(api: FakeBotAPI, seeded_template: tuple[Path, str], tmp_path: Path, framework: str
                      ) -> AsyncIterator[tuple[Running, str]]:
    template, code = seeded_template
    db = tmp_path / "bangfu.db"
    shutil.copy(template, db)
    wal = template.with_name(template.name + "-wal")  # normally checkpointed away when the CLI exits
    if wal.exists():
        shutil.copy(wal, db.with_name(db.name + "-wal"))
    running = await start_bot(api, db, tmp_path, framework)
    try:
        yield running, code
    finally:
        if running.proc.returncode is None:
            running.proc.kill()
            await running.proc.wait()


async def wait_text(api: FakeBotAPI, chat_id: int, needle: str, after: int = 0, timeout: float = 20.0) -> dict:
    def found() -> list[dict]:
        return [m for m in api.messages_to(chat_id)[after:] if needle in (m.get("text") or "")]

    try:
        await api.wait_for(lambda: bool(found()), timeout)
    except TimeoutError:
        raise AssertionError(f"no {needle!r} within {timeout}s; bot sent "
                             f"{[m.get('text') for m in api.messages_to(chat_id)]}") from None
    return found()[0]


# Both signals go through the same handler in `bangfu run`; each framework gets one of them, so both
# transports' stop paths are exercised without paying for four slow process starts.
@pytest.mark.parametrize(("framework", "sig"), [("aiogram", signal.SIGINT), ("ptb", signal.SIGTERM)],
                         ids=["aiogram-SIGINT", "ptb-SIGTERM"])
async def test_bangfu_run_binds_logs_a_visit_and_stops_on_signal(
        api: FakeBotAPI, bot_process: tuple[Running, str], framework: str, sig: signal.Signals) -> None:
    running, code = bot_process
    sample = pick_from_sample()

    # a stranger first: refused, nothing stored
    api.push_update(api.make_text_update(USER + 1, USER + 1, f"今天去{sample.village}{sample.head}家"))
    await wait_text(api, USER + 1, "邀请码")

    api.push_update(api.make_text_update(USER, USER, f"/start {code}"))
    welcome = await wait_text(api, USER, "绑定成功")
    assert sample.cadre in welcome["text"]

    status, body = await running.get("/healthz")
    assert status == 200 and json.loads(body) == {"status": "ok", "database": "ok"}
    handled = await running.updates_handled()
    assert handled == 2  # the stranger and /start
    n = len(api.messages_to(USER))
    api.push_update(api.make_text_update(USER, USER, f"今天去{sample.village}{sample.head}家，缺大米一袋"))
    card = await wait_text(api, USER, "已记录走访", after=n)
    assert sample.head in card["text"] and "大米" in card["text"]
    assert running.visits() == 1
    assert await running.updates_handled() == handled + 1  # the visit moved the counter
    _, metrics = await running.get("/metrics")
    for name in ("bangfu_update_errors_total", "bangfu_outbox_backlog", "bangfu_outbox_oldest_age_seconds",
                 "bangfu_send_seconds_bucket", "bangfu_send_retry_after_total", "bangfu_scheduler_leader",
                 "bangfu_scheduler_jobs_run"):
        assert name in metrics, name
    assert re.search(r"^bangfu_scheduler_leader 1\.0$", metrics, re.M), metrics  # the only process leads
    assert re.search(r'^bangfu_send_seconds_count\{channel="telegram"\} [1-9]', metrics, re.M), metrics

    # Only standard Bot API methods, all answered successfully.
    used = {c.method for c in api.sent}
    assert used <= {"getMe", "getUpdates", "sendMessage", "editMessageText", "editMessageReplyMarkup",
                    "answerCallbackQuery", "sendDocument", "sendPhoto", "getFile", "setMyCommands",
                    "setWebhook", "deleteWebhook"}, used
    assert all(c.ok for c in api.sent if c.method != "getUpdates"), [(c.method, c.response) for c in api.sent]

    # SIGTERM is what systemd, docker stop and Kubernetes send; SIGINT is Ctrl-C.
    rc = await running.stop(sig)
    log = running.stderr()
    assert rc == 0, f"exit code {rc} after {sig.name}; log:\n{log[-3000:]}"
    assert "Traceback" not in log, log[-3000:]
    assert TOKEN.split(":")[1] not in log  # the log never shows the bot token
    # Times in the deployment's zone with its offset; with log_format = "json", one object a line.
    lines = [x for x in log.splitlines() if x.strip()]
    assert lines
    if framework == "ptb":
        rows = [json.loads(x) for x in lines]
        assert all(r["time"].endswith("+08:00") and r["level"] and "message" in r for r in rows), rows[:3]
    else:
        assert all(re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+08:00 [A-Z]+ ", x) for x in lines), lines[:5]
    assert not api.pending_updates  # everything it processed was confirmed
