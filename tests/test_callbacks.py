"""Button payloads: every kind packs and unpacks to itself, keeps the wire format of buttons already sent,
rejects what does not fit its fields, and no two kinds share a prefix."""

from __future__ import annotations

import typing
from dataclasses import dataclass, fields
from typing import Literal

import pytest

from handlers import callbacks as cbs


def _example(cls: type[cbs.Callback]) -> cbs.Callback:
    """An instance with a value of the right type in every field (a Literal's last choice)."""
    args: list[object] = []
    for f in fields(cls):  # type: ignore[arg-type]
        tp = typing.get_type_hints(cls)[f.name]
        args.append(typing.get_args(tp)[-1] if typing.get_origin(tp) is Literal else {int: 42, str: "2026-11-24"}[tp])
    return cls(*args)


@pytest.mark.parametrize("prefix", sorted(cbs.prefixes()))
def test_every_kind_round_trips(prefix: str) -> None:
    cls = cbs.prefixes()[prefix]
    cb = _example(cls)
    data = cb.pack()
    assert data.startswith(prefix + ":")
    assert cbs.unpack(data) == cb and cls.unpack(data) == cb


def test_wire_format_of_buttons_already_sent() -> None:
    assert cbs.PickHousehold(7, 0, -1).pack() == "pk:7:0:-1"
    assert cbs.CardAction(7, "undo").pack() == "v:7:undo"
    assert cbs.PickDate(7, "2026-11-24").pack() == "dt:7:2026-11-24"
    assert cbs.ReminderAction("s").pack() == "rm:s" and cbs.ReminderAction("c", 3).pack() == "rm:c:3"
    assert cbs.BroadcastStep(5, "g").pack() == "bc:5:g" and cbs.BroadcastStep(5, "g", "ok").pack() == "bc:5:g:ok"
    assert cbs.unpack("bc:5:x") == cbs.BroadcastStep(5, "x")
    assert cbs.unpack("cmd:my") == cbs.RunCommand("my")


@pytest.mark.parametrize("data", ["", ":", "pk", "pk:x:y:z", "pk:1:2", "v:1", "v:1:drop", "v:1:undo:extra", "nd:-x",
                                  "rm:z", "rm:c:1:2", "bc:1", "bc:1:g:yes", "zz:1", "tk:1:b"])
def test_garbage_is_refused(data: str) -> None:
    with pytest.raises(ValueError):
        cbs.unpack(data)


def test_packing_refuses_what_could_not_come_back() -> None:
    with pytest.raises(ValueError):
        cbs.PickDate(1, "a:b").pack()
    with pytest.raises(ValueError):
        cbs.RunCommand("x" * 80).pack()


def test_a_prefix_is_taken_once() -> None:
    with pytest.raises(ValueError, match="taken"):
        @cbs.callback("pk")
        @dataclass(frozen=True, slots=True)
        class Another(cbs.Callback):
            entry_id: int
    with pytest.raises(TypeError):
        @cbs.callback("zz-float")
        @dataclass(frozen=True, slots=True)
        class Floaty(cbs.Callback):
            x: float
    assert "zz-float" not in cbs.prefixes()
