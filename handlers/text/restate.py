"""Rewriting derived text after a correction: the quantity a follow-up states for a need ("缺棉被两床送过去"
after "棉被是3床" reads "缺棉被3床送过去"), and whether a follow-up is about a given need."""

from __future__ import annotations

import re

from ._numbers import NUM, parse_number

_FILLER = re.compile(r"^(?:缺少|缺|需要|要|想要|想|没有|申请)")


def _item_core(item: str) -> str:
    return _FILLER.sub("", item.strip()) or item.strip()


def fmt_number(qty: float | int) -> str:
    f = float(qty)
    return str(int(f)) if f == int(f) else f"{f:g}"


def mentions(action: str, item: str) -> bool:
    """True when the follow-up's text names the need's item ("送棉被过去" names 缺棉被)."""
    core = _item_core(item)
    return bool(core) and core in action


def restate_quantity(action: str, item: str, old_qty: float | int | None, new_qty: float | int,
                     unit: str | None) -> str:
    """The follow-up text with the quantity stated for `item` changed to `new_qty`. Only a numeral right
    beside the item (before or after, with the need's unit) and equal to the old quantity is changed, so an
    unrelated number ("下周2号") is never touched; otherwise the text is returned unchanged."""
    core = _item_core(item)
    pos = action.find(core) if core else -1
    if pos < 0:
        return action
    unit_re = re.escape(unit) if unit else r"[\u4e00-\u9fff]"
    new = fmt_number(new_qty)
    after = re.compile(rf"(?P<n>{NUM})\s*(?={unit_re})").match(action, pos + len(core))
    spans = []
    if after is not None:
        spans.append((after.start("n"), after.end("n"), after.group("n")))
    before = re.search(rf"(?P<n>{NUM})\s*{unit_re}\s*$", action[:pos])
    if before is not None:
        spans.append((before.start("n"), before.end("n"), before.group("n")))
    for start, end, raw in spans:
        value = parse_number(raw)
        if value is None or (old_qty is not None and float(value) != float(old_qty)):
            continue
        return action[:start] + new + action[end:]
    return action
