"""CLI commands for scheduled messages: `bangfu digest` (a unit's weekly digest on demand: text to stdout,
PNG and XLSX to a folder, optionally queued to its supervisors) and `bangfu scheduler` (the scheduler alone)."""

from __future__ import annotations

import logging
import sys
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import click

from bot.cli import CliState, pass_state, run, setup_logging
from bot.config import Settings

if TYPE_CHECKING:
    from handlers.digest import Digest


def _fail(message: str, code: int) -> NoReturn:
    click.echo(message, err=True)
    sys.exit(code)


@click.command("digest")
@click.option("--unit", "unit_name", required=True, help="Org unit (乡镇/村); 旧州镇/大坝村 if ambiguous.")
@click.option("--week", default=None, help="ISO week, e.g. 2026-W48 (default: the last complete week).")
@click.option("--send", is_flag=True, help="Also queue it to the unit's supervisors (at most once per week).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("."),
              show_default=True, help="Folder for the PNG chart and the XLSX workbook.")
@pass_state
def digest_cmd(state: CliState, unit_name: str, week: str | None, send: bool, out_dir: Path) -> None:
    """Print a unit's weekly digest and write its chart (PNG) and workbook (XLSX)."""
    from handlers.digest import parse_week

    try:
        monday = parse_week(week) if week else None
    except ValueError as e:
        _fail(str(e), 2)
    settings = state.settings
    from storage.engine import upgrade

    upgrade(settings.database.url)
    from handlers.digest import UnfinishedWeekError

    try:
        d, queued = run(_digest(settings, unit_name, monday, send))
    except (LookupError, UnfinishedWeekError) as e:
        _fail(f"错误：{e}", 2)
    click.echo(d.text)
    out_dir.mkdir(parents=True, exist_ok=True)
    for suffix, data in ((".png", d.png), (".xlsx", d.xlsx)):
        path = out_dir / f"{d.basename}{suffix}"
        path.write_bytes(data)
        click.echo(f"→ {path}", err=True)
    if send:
        click.echo(f"queued for {queued} supervisor(s)" if queued else
                   "nothing queued: no bound supervisor of this unit, or already sent this week", err=True)


async def _digest(settings: Settings, unit_name: str, monday: date | None, send: bool) -> tuple[Digest, int]:
    from bot.app import prefs_from
    from handlers.digest import build_digest, previous_week, weekly_digests
    from handlers.spreadsheets import UnknownUnitError, resolve_unit
    from storage.engine import make_engine, make_sessionmaker

    prefs = prefs_from(settings)
    now = datetime.now(UTC).astimezone(prefs.tz)
    engine = make_engine(settings.database.url)
    try:
        async with make_sessionmaker(engine)() as session, session.begin():
            try:
                unit = await resolve_unit(session, unit_name)
            except UnknownUnitError as e:
                raise LookupError(str(e)) from None
            week_start = monday if monday is not None else previous_week(now.date())
            d = await build_digest(session, unit=unit, week_start=week_start, prefs=prefs,
                                   today=now.date())
            queued = 0
            if send:
                queued = await weekly_digests(session, now=now, prefs=prefs, week_start=week_start,
                                              unit_ids=[unit.id])
    finally:
        await engine.dispose()
    return d, queued


@click.command("scheduler")
@click.option("-v", "--verbose", is_flag=True)
@pass_state
def scheduler_cmd(state: CliState, verbose: bool) -> None:
    """Run only the scheduler (reminders, digests, bulletins, broadcast reports); `bangfu run` delivers.

    With PostgreSQL, any number may run: one leads (advisory lock), the others wait to take over."""
    settings = state.settings  # a bad value stops here, before anything is imported or opened
    from bot.scheduler import run_scheduler

    setup_logging(settings, verbose)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    try:
        run(run_scheduler(settings))
    except KeyboardInterrupt:
        pass


COMMANDS: list[click.Command] = [digest_cmd, scheduler_cmd]
