"""The one spreadsheet writer (exports, digests, rosters, sample data): .xlsx with every text cell stored as
text, never a formula, plus its CSV twin with the same guard. Widths, frozen header and header style live here."""

from __future__ import annotations

import csv
import io
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

XLSX_MIME = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
# A CSV cell starting with one of these runs as a formula when Excel or WPS opens the file.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_MIN_WIDTH, _MAX_WIDTH = 8, 60
_WIDTH_SAMPLE = 500


@dataclass(slots=True)
class Sheet:
    """One worksheet: a Chinese header row, then rows of plain values (str, numbers, date, datetime, None).
    An empty row is written as a blank line; `caption` is an optional bold title line above the header."""

    title: str
    headers: list[str]
    rows: list[list[Any]]
    caption: str | None = None


def display_width(v: Any) -> int:
    """Width of a value in Excel columns: CJK characters count double."""
    s = v.isoformat(sep=" ", timespec="minutes") if isinstance(v, datetime) else str(v if v is not None else "")
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in s[:80])


def _cell(ws: Any, v: Any) -> Any:
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    if isinstance(v, str):
        c = WriteOnlyCell(ws, value=ILLEGAL_CHARACTERS_RE.sub("", v))
        c.data_type = "s"  # never a formula, whatever the text starts with
        c.number_format = "@"  # and Excel keeps it text when edited (phones, ID numbers)
        return c
    if isinstance(v, datetime):
        c = WriteOnlyCell(ws, value=v)
        c.number_format = "yyyy-mm-dd hh:mm"
        return c
    if isinstance(v, date):
        c = WriteOnlyCell(ws, value=v)
        c.number_format = "yyyy-mm-dd"
        return c
    return v


def sheets_to_xlsx(sheets: Sequence[Sheet]) -> bytes:
    """The workbook as bytes. Write-only mode keeps a district's lists fast."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font
    from openpyxl.utils import get_column_letter

    wb = Workbook(write_only=True)
    bold = Font(bold=True)
    for sheet in sheets:
        ws = wb.create_sheet(title=sheet.title[:31])
        ws.freeze_panes = "A3" if sheet.caption else "A2"
        for i, h in enumerate(sheet.headers):
            sample = [r[i] for r in sheet.rows[:_WIDTH_SAMPLE] if i < len(r)]
            width = max([display_width(h), *(display_width(v) for v in sample)]) + 2
            ws.column_dimensions[get_column_letter(i + 1)].width = min(max(width, _MIN_WIDTH), _MAX_WIDTH)

        if sheet.caption:
            c = _cell(ws, sheet.caption)
            c.font = Font(bold=True, size=14)
            ws.append([c])
        header = []
        for h in sheet.headers:
            c = _cell(ws, h)
            c.font = bold
            c.alignment = Alignment(horizontal="center")
            header.append(c)
        ws.append(header)
        for row in sheet.rows:
            ws.append([_cell(ws, v) for v in row])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def csv_cell(v: Any) -> Any:
    """A value as CSV text: dates ISO, whole floats as ints, and a formula-looking string quoted with '."""
    if v is None:
        return ""
    if isinstance(v, datetime):
        return v.strftime("%Y-%m-%d %H:%M")
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, float) and v.is_integer():
        return int(v)
    if isinstance(v, str) and v.startswith(_FORMULA_START):
        return "'" + v
    return v


def sheet_to_csv_text(sheet: Sheet) -> str:
    """One sheet as CSV text with CRLF line endings and no BOM (the caller picks the encoding)."""
    buf = io.StringIO(newline="")
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow([csv_cell(h) for h in sheet.headers])
    for row in sheet.rows:
        w.writerow([csv_cell(v) for v in row])
    return buf.getvalue()


def sheets_to_csv(sheets: Sequence[Sheet]) -> str:
    """The first sheet as CSV: UTF-8 with BOM (Excel and WPS otherwise guess GBK) and CRLF line endings."""
    return "\ufeff" + sheet_to_csv_text(sheets[0])
