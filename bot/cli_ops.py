"""Operator commands for data safety: SQLite backup and restore, the audit log, inbox text retention."""

from __future__ import annotations

import json
import sqlite3
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import click

from bot.cli import CliState, pass_state, run

if TYPE_CHECKING:
    from storage.models import AuditLog

# storage/ (SQLAlchemy and the models) is imported inside each command: `bangfu` must start fast, so that
# a bad config value is reported before anything heavy loads.


def _audit(path: Path, action: str, detail: dict[str, object]) -> None:
    with sqlite3.connect(path) as conn:
        try:
            conn.execute("INSERT INTO audit_log (at, actor, action, detail) VALUES (?, ?, ?, ?)",
                         (datetime.now(UTC).replace(tzinfo=None).isoformat(sep=" "), "cli", action,
                          json.dumps(detail, ensure_ascii=False)))
        except sqlite3.OperationalError:
            pass  # not a bangfu database (yet): nothing to record into


@click.command()
@click.option("-o", "--output", "out", required=True, type=click.Path(dir_okay=False))
@pass_state
def backup(state: CliState, out: str) -> None:
    """Copy the SQLite database with SQLite's online backup API (safe while the bot runs).

    For PostgreSQL use pg_dump (see docs/SECURITY.md)."""
    from storage.engine import sqlite_file

    src = sqlite_file(state.settings.database.url)
    if src is None:
        click.echo("备份只支持 SQLite；PostgreSQL 请用：pg_dump -Fc -f 文件 库名（见 docs/SECURITY.md）", err=True)
        sys.exit(2)
    if not src.exists():
        click.echo(f"错误：没有数据库文件 {src}", err=True)
        sys.exit(2)
    dest = Path(out)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(src) as s, sqlite3.connect(dest) as d:
        s.backup(d)
    _audit(src, "backup", {"to": str(dest)})
    click.echo(f"已备份 {src} → {dest}（{dest.stat().st_size} 字节）")


def _is_empty(path: Path) -> bool:
    if not path.exists() or path.stat().st_size == 0:
        return True
    with sqlite3.connect(path) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for t in ("household", "person", "visit", "inbox"):
            if t in tables and conn.execute(f'SELECT 1 FROM "{t}" LIMIT 1').fetchone():
                return False
    return True


@click.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--force", is_flag=True, help="Overwrite a database that already holds data.")
@pass_state
def restore(state: CliState, file: str, force: bool) -> None:
    """Restore the SQLite database from a backup file. Refuses to overwrite data unless --force."""
    from storage.engine import sqlite_file

    dest = sqlite_file(state.settings.database.url)
    if dest is None:
        click.echo("恢复只支持 SQLite；PostgreSQL 请用 pg_restore（见 docs/SECURITY.md）", err=True)
        sys.exit(2)
    src = Path(file)
    try:
        with sqlite3.connect(f"file:{src}?mode=ro", uri=True) as conn:
            if conn.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
                raise sqlite3.DatabaseError("integrity check failed")
            conn.execute("SELECT 1 FROM alembic_version").fetchone()
    except sqlite3.DatabaseError as e:
        click.echo(f"错误：{src} 不是 bangfu 的 SQLite 备份（{e}）", err=True)
        sys.exit(2)
    if not _is_empty(dest) and not force:
        click.echo(f"错误：{dest} 里已有数据，不会覆盖。确定要替换，请加 --force", err=True)
        sys.exit(1)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(src) as s, sqlite3.connect(dest) as d:
        s.backup(d)
    _audit(dest, "restore", {"from": str(src), "forced": force})
    click.echo(f"已从 {src} 恢复 {dest}")


@click.command()
@click.option("--limit", default=50, show_default=True)
@pass_state
def audit(state: CliState, limit: int) -> None:
    """Show the newest entries of the audit log (admin actions)."""

    from sqlalchemy import select

    from storage.engine import make_engine, make_sessionmaker
    from storage.models import AuditLog

    async def go() -> list[AuditLog]:
        engine = make_engine(state.settings.database.url)
        try:
            async with make_sessionmaker(engine)() as s:
                q = select(AuditLog).order_by(AuditLog.id.desc()).limit(limit)
                return list((await s.execute(q)).scalars())
        finally:
            await engine.dispose()

    rows = run(go())
    if not rows:
        click.echo("审计日志是空的")
    for r in rows:
        at = r.at.astimezone(state.settings.tz).strftime("%Y-%m-%d %H:%M:%S")
        click.echo(f"{at}  {r.actor:<12} {r.action:<20} {json.dumps(r.detail, ensure_ascii=False)}")


@click.command("purge-inbox-text")
@pass_state
def purge_inbox_text_cmd(state: CliState) -> None:
    """Blank raw message text older than [privacy] inbox_text_retention_days (records stay)."""
    days = state.settings.privacy.inbox_text_retention_days
    if days is None:
        click.echo("未开启原始消息保留期限（[privacy] inbox_text_retention_days 未设置）")
        return
    n = run(purge_old_inbox_text(state.settings.database.url, days))
    click.echo(f"已清空 {n} 条超过 {days} 天的原始消息文字")


async def purge_old_inbox_text(url: str, days: int, now: datetime | None = None) -> int:
    from storage.engine import make_engine, make_sessionmaker
    from storage.messages import purge_inbox_text

    engine = make_engine(url)
    try:
        async with make_sessionmaker(engine)() as s, s.begin():
            return await purge_inbox_text(s, before=(now or datetime.now(UTC)) - timedelta(days=days))
    finally:
        await engine.dispose()


COMMANDS: list[click.Command] = [backup, restore, audit, purge_inbox_text_cmd]
