"""Backup, restore, the audit log and inbox text retention, through the CLI on SQLite."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime, timedelta

from click.testing import CliRunner

from bot.cli import main
from bot.cli_ops import purge_old_inbox_text
from storage.engine import make_engine, make_sessionmaker
from storage.models import InboxMessage
from tests.harness import seed_world


def _env(url: str) -> dict[str, str]:
    return {"BANGFU_DATABASE__URL": url, "BANGFU_CONFIG": ""}


def _seed(url: str) -> None:
    async def go() -> None:
        eng = make_engine(url)
        await seed_world(make_sessionmaker(eng))
        await eng.dispose()

    asyncio.run(go())


def test_backup_and_restore_refuses_to_overwrite(sqlite_url, tmp_path):
    _seed(sqlite_url)
    r = CliRunner().invoke(main, ["backup", "-o", str(tmp_path / "b.db")], env=_env(sqlite_url))
    assert r.exit_code == 0, r.output
    with sqlite3.connect(tmp_path / "b.db") as c:
        assert c.execute("select count(*) from household").fetchone()[0] == 5

    r = CliRunner().invoke(main, ["restore", str(tmp_path / "b.db")], env=_env(sqlite_url))
    assert r.exit_code == 1 and "不会覆盖" in r.output

    fresh = f"sqlite+aiosqlite:///{tmp_path / 'new.db'}"
    r = CliRunner().invoke(main, ["restore", str(tmp_path / "b.db")], env=_env(fresh))
    assert r.exit_code == 0, r.output
    with sqlite3.connect(tmp_path / "new.db") as c:
        assert c.execute("select count(*) from household").fetchone()[0] == 5

    r = CliRunner().invoke(main, ["restore", "--force", str(tmp_path / "b.db")], env=_env(sqlite_url))
    assert r.exit_code == 0


def test_restore_rejects_a_non_backup(sqlite_url, tmp_path):
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database at all" * 100)
    r = CliRunner().invoke(main, ["restore", str(junk)], env=_env(sqlite_url))
    assert r.exit_code == 2 and "不是 bangfu 的 SQLite 备份" in r.output


def test_invite_is_audited(sqlite_url):
    _seed(sqlite_url)
    r = CliRunner().invoke(main, ["invite", "--role", "cadre", "--person", "李明"], env=_env(sqlite_url))
    assert r.exit_code == 0, r.output
    code = r.output.strip().splitlines()[-1]
    assert len(code) == 8
    r = CliRunner().invoke(main, ["audit"], env=_env(sqlite_url))
    assert "invite.create" in r.output and "李明" in r.output
    assert code not in r.output  # the code itself is never recorded


def test_retention_blanks_old_text_only(sqlite_url):
    now = datetime(2026, 11, 25, tzinfo=UTC)

    async def go() -> tuple[int, list[str]]:
        eng = make_engine(sqlite_url)
        sm = make_sessionmaker(eng)
        async with sm() as s, s.begin():
            for i, age in enumerate((400, 10)):
                s.add(InboxMessage(channel="t", chat_id="c", message_key=str(i), sender_id="u", kind="message",
                                   text=f"msg{i}", raw={"t": i}, received_at=now - timedelta(days=age)))
        await eng.dispose()
        n = await purge_old_inbox_text(sqlite_url, 365, now=now)
        eng = make_engine(sqlite_url)
        async with make_sessionmaker(eng)() as s:
            from sqlalchemy import select

            texts = list((await s.execute(select(InboxMessage.text).order_by(InboxMessage.id))).scalars())
        await eng.dispose()
        return n, texts

    n, texts = asyncio.run(go())
    assert n == 1 and texts == ["", "msg1"]


def test_retention_also_blanks_raw_of_messages_without_text(sqlite_url):
    now = datetime(2026, 11, 25, tzinfo=UTC)
    raw = {"message": {"from": {"first_name": "张三"}, "location": {"latitude": 26.25, "longitude": 105.93}}}

    async def go() -> object:
        eng = make_engine(sqlite_url)
        sm = make_sessionmaker(eng)
        async with sm() as s, s.begin():
            s.add(InboxMessage(channel="t", chat_id="c", message_key="loc", sender_id="u", kind="message",
                               text="", raw=raw, received_at=now - timedelta(days=400)))
        await purge_old_inbox_text(sqlite_url, 365, now=now)
        async with sm() as s:
            from sqlalchemy import select

            got = (await s.execute(select(InboxMessage.raw))).scalar_one()
        await eng.dispose()
        return got

    assert not asyncio.run(go())
