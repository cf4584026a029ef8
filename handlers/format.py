"""How records read in chat: dates, masked personal numbers, and the visit card."""

from __future__ import annotations

from datetime import date

import storage.registry as _registry

WEEKDAYS = "一二三四五六日"

# One implementation of masking, shared with exports and imports.
mask_phone = _registry.mask_phone
mask_id_number = _registry.mask_id_number
mask_personal = _registry.mask_personal_text


def fmt_date(d: date | None, today: date | None = None) -> str:
    if d is None:
        return "—"
    s = f"{d.month}月{d.day}日(周{WEEKDAYS[d.weekday()]})"
    if today is not None:
        delta = (today - d).days
        if delta == 0:
            s += " 今天"
        elif delta == 1:
            s += " 昨天"
    return s


def fmt_qty(qty: object, unit: str | None) -> str:
    if qty is None:
        return ""
    try:
        f = float(str(qty))
        q = str(int(f)) if f == int(f) else f"{f:g}"
    except ValueError:
        q = str(qty)
    return f" ×{q}{unit or ''}"


def clip(text: str, n: int = 40) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"
