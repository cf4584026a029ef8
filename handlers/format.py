"""How records read in chat: dates, masked personal numbers, and the visit card."""

from __future__ import annotations

import re
from datetime import date

WEEKDAYS = "一二三四五六日"

_PHONE = re.compile(r"(?<!\d)(1[3-9]\d)(\d{4})(\d{4})(?!\d)")
_ID = re.compile(r"(?<![\dXx])(\d{6})(\d{8})(\d{3}[\dXx])(?![\dXx])")


def mask_phone(phone: str | None) -> str:
    if not phone:
        return ""
    digits = re.sub(r"\s", "", phone)
    if len(digits) >= 7 and "*" not in digits:
        return digits[:3] + "****" + digits[-4:]
    return digits


def mask_id_number(idn: str | None) -> str:
    if not idn:
        return ""
    return idn[:3] + "*" * max(0, len(idn) - 7) + idn[-4:] if len(idn) > 7 else "****"


def mask_personal(text: str) -> str:
    """Mask any mobile or ID number inside free text before it leaves in a reply."""
    text = _ID.sub(lambda m: m.group(1)[:3] + "*" * 11 + m.group(3)[-4:], text)
    return _PHONE.sub(lambda m: f"{m.group(1)}****{m.group(3)}", text)


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
