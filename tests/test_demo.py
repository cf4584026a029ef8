"""`bangfu demo` lives in its own database under var/demo/: a real roster and its visits in the configured
database survive any number of demo runs, and the demo refuses a file it did not create."""

from __future__ import annotations

import asyncio
import hashlib
import io
import re
import sqlite3
from datetime import datetime
from pathlib import Path

from click.testing import CliRunner
from rich.console import Console
from sqlalchemy import func, select

from bot.app import App
from bot.cli import main
from bot.config import load_settings
from bot.demo import run_demo
from handlers.types import ChatRef, Incoming
from storage.models import ChatIdentity, Household, Person, Visit
from tests.conftest import TZ, FixedClock
from tests.fakes.transcript import TranscriptTransport

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "examples" / "households_sample.csv"


def _env(tmp: Path, db: Path) -> dict[str, str]:
    return {"BANGFU_DATABASE__URL": f"sqlite+aiosqlite:///{db}", "BANGFU_APP__DATA_DIR": str(tmp / "var")}


async def _cli(*args: str):  # noqa: ANN202
    # The CLI runs its own event loop, so from an async test it goes to a thread.
    return await asyncio.to_thread(CliRunner().invoke, main, list(args))


def _fingerprint(db: Path) -> str:
    """Every household and visit row, so that any change to the real data shows."""
    with sqlite3.connect(db) as conn:
        rows = [*conn.execute("SELECT * FROM household ORDER BY id"), *conn.execute("SELECT * FROM visit ORDER BY id")]
    return hashlib.sha256(repr(rows).encode()).hexdigest()


async def _log_a_visit(env: dict[str, str]) -> None:
    settings = load_settings(environ=env)
    transport = TranscriptTransport()
    app = App(settings, clock=FixedClock(datetime(2026, 11, 25, 10, 0, tzinfo=TZ)), transports=[transport],
              with_scheduler=False)
    await app.build()
    assert app.sessionmaker is not None and app.dispatcher is not None and app.outbox is not None
    async with app.sessionmaker() as s, s.begin():
        cadre = (await s.execute(select(Person).where(Person.name == "杨玉英"))).scalar_one()
        s.add(ChatIdentity(person_id=cadre.id, channel=transport.name, external_id="u1", chat_id="c1",
                           display_name=cadre.name, bound_at=datetime(2026, 11, 25, tzinfo=TZ)))
    await app.dispatcher.handle(Incoming(chat=ChatRef(transport.name, "c1"), sender_id="u1", sender_name="杨玉英",
                                         message_id="1", text="今天去云山屯村韦秀美家，6口人，缺棉被两床"))
    await app.outbox.drain(timeout=10)
    assert any("已记录走访" in m.text for m in transport.sent), [m.text for m in transport.sent]
    await app.stop()


async def _counts(env: dict[str, str]) -> tuple[int, int]:
    app = App(load_settings(environ=env), transports=[], with_scheduler=False)
    await app.build()
    assert app.sessionmaker is not None
    async with app.sessionmaker() as s:
        households = int((await s.execute(select(func.count()).select_from(Household))).scalar_one())
        visits = int((await s.execute(select(func.count()).select_from(Visit))).scalar_one())
    await app.stop()
    return households, visits


async def test_demo_twice_leaves_the_real_roster_and_visits_alone(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    db = tmp_path / "bangfu.db"
    env = _env(tmp_path, db)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    r = await _cli("import", str(SAMPLE), "--district", "西秀区")
    assert r.exit_code == 0, r.output
    await _log_a_visit(env)
    before = await _counts(env)
    assert before[0] > 0 and before[1] == 1
    print_before = _fingerprint(db)

    quiet = Console(file=io.StringIO(), force_terminal=False)
    first = await run_demo(load_settings(environ=env), scale="tiny", console=quiet, messages_per_cadre_day=0.2)
    # Whatever database is configured (here a PostgreSQL nobody could reach), the demo uses its own file.
    elsewhere = {**env, "BANGFU_DATABASE__URL": "postgresql+asyncpg://nobody@127.0.0.1:9/none"}
    second = await run_demo(load_settings(environ=elsewhere), scale="tiny", console=quiet,
                            messages_per_cadre_day=0.2)

    # Not a terminal: plain progress lines (at least the last one), and the summary in Chinese.
    log = quiet.file.getvalue()
    assert re.search(r"模拟 2026-W48：(\d+)/\1 条（100%）", log), log[-2000:]
    assert "农户" in log and "bangfu --demo chat" in log

    assert await _counts(env) == before
    assert _fingerprint(db) == print_before
    demo_db = tmp_path / "var" / "demo" / "demo.db"
    assert demo_db.exists()
    # The demo ran for real, in its own file, and the second run started from scratch rather than adding.
    assert first.counts["households"] == second.counts["households"] == 150
    assert first.counts["visits"] == second.counts["visits"] > 0
    assert (tmp_path / "var" / "demo" / "digest.txt").read_text(encoding="utf-8").strip()
    # The roster left for people to open: phones masked, no ID numbers (the database has them).
    roster = (tmp_path / "var" / "demo" / "roster.csv").read_text(encoding="utf-8-sig")
    assert "身份证号" not in roster.splitlines()[0] and "联系电话" in roster.splitlines()[0]
    assert not re.search(r"\b1[3-9]\d{9}\b", roster) and not re.search(r"\d{17}[\dX]", roster)
    assert "****" in roster
    with sqlite3.connect(demo_db) as conn:
        assert conn.execute("SELECT count(*) FROM household WHERE id_number IS NOT NULL").fetchone()[0] > 0

    # `/train` on the demo's data, on the real clock (as `bangfu --demo chat` runs), shows open sessions.
    from bot.demo import demo_settings

    transport = TranscriptTransport()
    app = App(demo_settings(load_settings(environ=env)), transports=[transport], with_scheduler=False)
    await app.build()
    assert app.sessionmaker is not None and app.dispatcher is not None and app.outbox is not None
    async with app.sessionmaker() as s, s.begin():
        cadre = (await s.execute(select(Person).where(Person.role == "cadre").limit(1))).scalar_one()
        s.add(ChatIdentity(person_id=cadre.id, channel=transport.name, external_id="t1", chat_id="t1",
                           display_name=cadre.name, bound_at=datetime.now(TZ)))
    await app.dispatcher.handle(Incoming(chat=ChatRef(transport.name, "t1"), sender_id="t1", sender_name="x",
                                         message_id="t1", text="/train"))
    await app.outbox.drain(timeout=10)
    await app.stop()
    train = "\n".join(m.text for m in transport.sent)
    assert "刺梨种植" in train and "电商" in train, train

    # A real roster imported into the demo's own file makes it no longer the demo's to delete.
    r = await _cli("--demo", "import", str(SAMPLE), "--district", "西秀区")
    assert r.exit_code == 0, r.output
    kept = demo_db.read_bytes()
    r = await _cli("demo")
    assert r.exit_code == 2 and "import_households" in r.output, r.output
    assert demo_db.read_bytes() == kept


def test_demo_refuses_a_database_it_did_not_create(tmp_path: Path, monkeypatch) -> None:
    """Someone points the configured database at the demo's path and imports a real roster there: the next
    demo refuses with one line and exit 2, and the file is left byte for byte."""
    monkeypatch.chdir(tmp_path)
    demo_db = tmp_path / "var" / "demo" / "demo.db"
    for k, v in _env(tmp_path, demo_db).items():
        monkeypatch.setenv(k, v)
    r = CliRunner().invoke(main, ["import", str(SAMPLE), "--district", "西秀区"])
    assert r.exit_code == 0, r.output
    before = demo_db.read_bytes()
    r = CliRunner().invoke(main, ["demo"])
    assert r.exit_code == 2
    assert "演示不会" in r.output and len(r.output.strip().splitlines()) == 1, r.output
    assert demo_db.read_bytes() == before


def test_demo_refuses_its_own_file_once_real_data_went_in(tmp_path: Path, monkeypatch) -> None:
    """The demo's own file, after a real import into it (e.g. `bangfu --demo import ...`), is no longer
    the demo's to delete."""
    from bot.demo import _prepare_database

    monkeypatch.chdir(tmp_path)

    demo_db = tmp_path / "var" / "demo" / "demo.db"
    _prepare_database(demo_db)  # what the demo does first: claim the path
    for k, v in _env(tmp_path, tmp_path / "other.db").items():
        monkeypatch.setenv(k, v)
    r = CliRunner().invoke(main, ["--demo", "import", str(SAMPLE), "--district", "西秀区"])
    assert r.exit_code == 0, r.output
    assert demo_db.exists() and not (tmp_path / "other.db").exists()
    before = demo_db.read_bytes()
    r = CliRunner().invoke(main, ["demo"])
    assert r.exit_code == 2 and "演示不会" in r.output, r.output
    assert demo_db.read_bytes() == before
