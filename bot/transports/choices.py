"""Buttons on channels without inline keyboards (WeCom, the terminal): numbered options, answered by number.

Pure functions, shared with the core, which maps a numeric reply back to the button it names.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

from handlers.types import Button

PROMPT = "回复数字选择："
_NUMBER = re.compile(r"\s*(?:第\s*)?(\d{1,3})\s*(?:个|项|号)?\s*[.。、)）]?\s*")


def flatten(buttons: Sequence[Sequence[Button]]) -> list[Button]:
    return [b for row in buttons for b in row]


def render_choices(text: str, buttons: Sequence[Sequence[Button]]) -> str:
    """Append the buttons, rows flattened in order, as "1. …" lines; text alone when there are none."""
    flat = flatten(buttons)
    if not flat:
        return text
    options = "\n".join(f"{i}. {b.text}" for i, b in enumerate(flat, 1))
    head = f"{text}\n\n" if text else ""
    return f"{head}{PROMPT}\n{options}"


def pick_choice(reply: str, buttons: Sequence[Sequence[Button]]) -> Button | None:
    """The button a reply like "2", "２", "第2个" or "2." names (1-based, flattened order), else None."""
    m = _NUMBER.fullmatch(unicodedata.normalize("NFKC", reply))
    if not m:
        return None
    flat = flatten(buttons)
    i = int(m.group(1))
    return flat[i - 1] if 1 <= i <= len(flat) else None
