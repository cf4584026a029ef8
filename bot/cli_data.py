"""CLI commands for spreadsheets: `bangfu import` (households, cadres, pairings), `bangfu export`
(visits, households, needs, sign-ups) and `bangfu sample` (a generated demo register)."""

from __future__ import annotations

import sys
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from bot.cli import CliState, pass_state, run

if TYPE_CHECKING:
    from handlers.spreadsheets import ExportKind, ImportResult, ParsedFile

EXPORT_KINDS = ("visits", "households", "needs", "signups")
MAX_WARNINGS_SHOWN = 20


def _fail(message: str, code: int) -> None:
    click.echo(message, err=True)
    sys.exit(code)


def _one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}"


def _ensure_schema(url: str) -> None:
    # Idempotent and quick at head, so a fresh user can import without running `bangfu init` first.
    from storage.engine import upgrade

    try:
        upgrade(url)
    except Exception as e:  # noqa: BLE001 - shown to the operator as one line
        _fail(f"database error: {_one_line(e)}", 1)


@click.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--district", default=None,
              help="District for rows without a 区县 column / 区县 value (default: [app] district, 西秀区).")
@click.option("--dry-run", is_flag=True, help="Validate and count what would change, write nothing.")
@pass_state
def import_cmd(state: CliState, file: Path, district: str | None, dry_run: bool) -> None:
    """Import households, cadres and pairings from an .xlsx or .csv file (Chinese headers).

    Every row is checked first; if any row is bad nothing is imported. Re-importing the same file changes
    nothing. Columns the file lacks leave stored values alone.
    """
    from handlers.spreadsheets import RowErrors, SpreadsheetError, parse_table, read_table

    try:
        data = file.read_bytes()
    except OSError as e:
        _fail(f"cannot read {file}: {e.strerror or e}", 2)
    try:
        parsed = parse_table(read_table(data, file.name), district=district or state.settings.app.district)
    except SpreadsheetError as e:
        _fail(f"{file.name}: {e}", 2)
    except RowErrors as e:
        for err in e.errors:
            click.echo(str(err), err=True)
        _fail(f"{len(e.errors)} 行有错误，未导入任何数据 / {len(e.errors)} bad rows, nothing imported", 1)

    url = state.settings.database.url
    _ensure_schema(url)
    try:
        result = run(_import(url, parsed, dry_run=dry_run))
    except Exception as e:  # noqa: BLE001 - the transaction rolled back; say so in one line
        _fail(f"import failed, nothing imported: {_one_line(e)}", 1)
    for w in result.warnings[:MAX_WARNINGS_SHOWN]:
        click.echo(f"注意: {w}", err=True)
    if len(result.warnings) > MAX_WARNINGS_SHOWN:
        click.echo(f"…另有 {len(result.warnings) - MAX_WARNINGS_SHOWN} 条提示", err=True)
    for line in result.summary_lines():
        click.echo(line)


async def _import(url: str, parsed: ParsedFile, *, dry_run: bool) -> ImportResult:
    from handlers.spreadsheets import import_parsed
    from storage.engine import make_engine, make_sessionmaker

    engine = make_engine(url)
    try:
        async with make_sessionmaker(engine)() as session:
            result = await import_parsed(session, parsed, actor="cli", dry_run=dry_run)
            if dry_run:
                await session.rollback()
            else:
                await session.commit()
            return result
    finally:
        await engine.dispose()


@click.command("export")
@click.argument("kind", type=click.Choice(EXPORT_KINDS))
@click.option("--format", "fmt", type=click.Choice(["xlsx", "csv"]), default=None,
              help="Default: from the -o suffix, else csv.")
@click.option("--since", type=click.DateTime(formats=["%Y-%m-%d"]), default=None,
              help="YYYY-MM-DD. visits: visit date; needs: raised on; signups: session start; "
                   "households: added or changed since.")
@click.option("--unit", default=None, help="Org unit name (乡镇/村/组); 旧州镇/大坝村 if the name is ambiguous.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Output file (csv goes to stdout without it).")
@pass_state
def export_cmd(state: CliState, kind: str, fmt: str | None, since: datetime | None, unit: str | None,
               output: Path | None) -> None:
    """Export visits, households, needs or sign-ups as .xlsx or .csv (phones masked, no ID numbers)."""
    if fmt is None:
        fmt = "xlsx" if output is not None and output.suffix.lower() == ".xlsx" else "csv"
    if fmt == "xlsx" and output is None:
        _fail("xlsx is a binary file: give -o FILE.xlsx (or use --format csv for stdout)", 2)
    url = state.settings.database.url
    _ensure_schema(url)
    from handlers.spreadsheets import UnknownUnitError

    try:
        payload, rows = run(_export(url, kind, fmt, since.date() if since else None, unit, state))
    except UnknownUnitError as e:
        _fail(str(e), 2)
    except Exception as e:  # noqa: BLE001 - shown to the operator as one line
        _fail(f"export failed: {_one_line(e)}", 1)
    data: bytes = payload.encode("utf-8") if isinstance(payload, str) else payload
    if output is None:
        sys.stdout.flush()
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_bytes(data)
    except OSError as e:
        _fail(f"cannot write {output}: {e.strerror or e}", 2)
    click.echo(f"已导出 {rows} 行 / exported {rows} rows → {output}", err=True)


async def _export(url: str, kind: str, fmt: str, since: date | None, unit: str | None,
                  state: CliState) -> tuple[str | bytes, int]:
    from handlers.spreadsheets import build_sheets
    from handlers.xlsx import sheets_to_csv, sheets_to_xlsx
    from storage.engine import make_engine, make_sessionmaker
    from storage.models import AuditLog

    ekind: ExportKind = kind  # type: ignore[assignment]
    engine = make_engine(url)
    try:
        async with make_sessionmaker(engine)() as session:
            sheets = await build_sheets(session, ekind, since=since, unit=unit, tz=state.settings.tz)
            rows = len(sheets[0].rows)
            # Exports carry personal data out of the system: record who took what.
            session.add(AuditLog(actor="cli", action="export", detail={
                "kind": kind, "format": fmt, "since": since.isoformat() if since else None, "unit": unit,
                "rows": rows,
            }))
            await session.commit()
    finally:
        await engine.dispose()
    payload: Any = sheets_to_csv(sheets) if fmt == "csv" else sheets_to_xlsx(sheets)
    return payload, rows


@click.command("sample")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              default=Path("var/households_sample.xlsx"), show_default=True,
              help="Output file, .xlsx or .csv (the default is outside the tracked examples/).")
@click.option("--households", type=click.IntRange(1), default=300, show_default=True)
@click.option("--cadres", type=click.IntRange(1), default=60, show_default=True)
@click.option("--villages", type=click.IntRange(1), default=None, help="Default: about one per 45 households.")
@click.option("--seed", type=int, default=2026, show_default=True)
def sample_cmd(output: Path, households: int, cadres: int, villages: int | None, seed: int) -> None:
    """Write a generated (invented, deterministic) household register to import: .xlsx or .csv by suffix."""
    from bot.sampledata import generate_rows, write_rows

    try:
        rows = generate_rows(households=households, cadres=cadres, villages=villages, seed=seed)
    except ValueError as e:
        _fail(str(e), 2)
    try:
        write_rows(rows, output)
    except OSError as e:
        _fail(f"cannot write {output}: {e.strerror or e}", 2)
    villages_n = len({(r["乡镇"], r["村"]) for r in rows})
    click.echo(f"wrote {len(rows)} households, {cadres} cadres, {villages_n} villages → {output}")


COMMANDS: list[click.Command] = [import_cmd, export_cmd, sample_cmd]
