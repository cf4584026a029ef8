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


_FIELD_LABEL = {"size": "人口", "phone": "电话"}


def fmt_change(field: str, old: str | None, new: str | None, *, confirmed: bool | None = None,
               button: str | None = None) -> str:
    """A household field stated in chat against the registry: "人口 2→6？" until confirmed. Phone numbers
    are masked. `button` gives the confirm / restore button label instead."""
    label = _FIELD_LABEL.get(field, field)

    def show(v: str | None) -> str:
        return "—" if not v else mask_phone(v) if field == "phone" else v

    if button == "confirm":
        return f"确认{label} {show(old)}→{show(new)}"
    if button == "restore":
        return f"恢复{label}为{show(old)}"
    if confirmed is None:
        return f"{label} {show(old)}→{show(new)}"
    if confirmed:
        return f"{label} {show(old)}→{show(new)}（已确认，花名册已更新）"
    return f"{label} {show(old)}→{show(new)}？（点“确认”才改花名册）"


def clip(text: str, n: int = 40) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"
