"""JSON-record front end for the CLI: `parse_record` for one dict, `parse_jsonl` for a stream of lines.

Both are total: bad input produces an error-shaped record, never an exception.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from .parser import empty_result, parse
from .registry import Registry

DEFAULT_TZ = "Asia/Shanghai"


def _now(ref_date: Any, tz_name: Any) -> datetime:
    try:
        tz = ZoneInfo(str(tz_name)) if tz_name else ZoneInfo(DEFAULT_TZ)
    except Exception:
        tz = ZoneInfo(DEFAULT_TZ)
    d: date | None = None
    if isinstance(ref_date, datetime):
        d = ref_date.date()
    elif isinstance(ref_date, date):
        d = ref_date
    elif isinstance(ref_date, str):
        try:
            d = date.fromisoformat(ref_date.strip()[:10])
        except ValueError:
            d = None
    if d is None:
        d = datetime.now(tz).date()
    # noon keeps the send date stable whatever the tz arithmetic does later
    return datetime.combine(d, time(12, 0), tzinfo=tz)


def parse_record(obj: Any, registry: Registry | None = None) -> dict[str, Any]:
    """{"id", "message", "ref_date", "tz"?} → {"id", **parse(...)}; extra keys ignored, never raises."""
    if not isinstance(obj, dict):
        return {"id": None, **empty_result()}
    rid = obj.get("id")
    msg = obj.get("message")
    try:
        now = _now(obj.get("ref_date"), obj.get("tz"))
        out = parse(msg if isinstance(msg, str) else "", now, registry)
    except Exception:
        out = empty_result()
    return {"id": rid, **out}


def parse_jsonl(lines: Iterable[str], registry: Registry | None = None) -> Iterator[str]:
    """Yield one JSON line per non-blank input line; malformed lines yield {"id": null, "error": ...}."""
    for n, line in enumerate(lines, 1):
        if not isinstance(line, str):
            try:
                line = bytes(line).decode("utf-8", "replace")
            except Exception:
                yield json.dumps({"id": None, "error": f"line {n}: not text"}, ensure_ascii=False)
                continue
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except (json.JSONDecodeError, ValueError) as e:
            yield json.dumps({"id": None, "error": f"line {n}: invalid JSON ({e.__class__.__name__})"},
                             ensure_ascii=False)
            continue
        if not isinstance(obj, dict):
            yield json.dumps({"id": None, "error": f"line {n}: not a JSON object"}, ensure_ascii=False)
            continue
        yield json.dumps(parse_record(obj, registry), ensure_ascii=False)
