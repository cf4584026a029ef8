"""Button payloads: each kind of button is a small frozen class that packs to "prefix:field:field" and
unpacks back, checked against its field types; a registry keeps the prefixes unique. Transport-free."""

from __future__ import annotations

import typing
from collections.abc import Callable
from dataclasses import MISSING, dataclass, fields
from typing import Any, ClassVar, Literal, TypeVar

# Telegram refuses callback_data over 64 bytes; WeCom's limit is larger.
MAX_BYTES = 64
_SEP = ":"


class Callback:
    """Base of every payload class; subclasses are frozen dataclasses registered with `@callback(prefix)`."""

    __slots__ = ()
    prefix: ClassVar[str] = ""
    _parsers: ClassVar[tuple[Callable[[str], Any], ...]] = ()

    def pack(self) -> str:
        """The button's data; trailing fields still at their default are left out ("rm:s")."""
        fs = fields(self)  # type: ignore[arg-type]
        values = [getattr(self, f.name) for f in fs]
        while values and fs[len(values) - 1].default is not MISSING and values[-1] == fs[len(values) - 1].default:
            values.pop()
        text = [str(v) for v in values]
        if any(_SEP in t for t in text):
            raise ValueError(f"{self!r}: a field contains {_SEP!r}")
        data = _SEP.join([self.prefix, *text])
        if len(data.encode()) > MAX_BYTES:
            raise ValueError(f"{data!r} is longer than {MAX_BYTES} bytes")
        return data

    @classmethod
    def unpack(cls: type[C], data: str) -> C:
        """The payload from button data; ValueError if it is not this kind or does not fit its fields."""
        prefix, *parts = data.split(_SEP)
        if prefix != cls.prefix:
            raise ValueError(data)
        fs = fields(cls)  # type: ignore[arg-type]
        required = sum(f.default is MISSING for f in fs)
        if not required <= len(parts) <= len(fs):
            raise ValueError(data)
        return cls(*(parse(p) for parse, p in zip(cls._parsers, parts, strict=False)))


C = TypeVar("C", bound=Callback)
_REGISTRY: dict[str, type[Callback]] = {}


def _parser(tp: Any) -> Callable[[str], Any]:
    if tp is int:
        return int
    if tp is str:
        return str
    if typing.get_origin(tp) is Literal:
        allowed = typing.get_args(tp)

        def one_of(s: str) -> str:
            if s not in allowed:
                raise ValueError(s)
            return s
        return one_of
    raise TypeError(f"callback fields are int, str or a Literal of str, not {tp!r}")


def callback(prefix: str) -> Callable[[type[C]], type[C]]:
    """Register a payload class under `prefix`; a second class with the same prefix is an error at import."""
    if not prefix or _SEP in prefix:
        raise ValueError(f"bad callback prefix {prefix!r}")

    def register(cls: type[C]) -> type[C]:
        if prefix in _REGISTRY:
            raise ValueError(f"callback prefix {prefix!r} is taken by {_REGISTRY[prefix].__name__}")
        hints = typing.get_type_hints(cls)
        cls.prefix = prefix
        cls._parsers = tuple(_parser(hints[f.name]) for f in fields(cls))  # type: ignore[arg-type]
        _REGISTRY[prefix] = cls
        return cls
    return register


def unpack(data: str) -> Callback:
    """Whichever registered payload `data` is; ValueError for anything else (a stale or forged button)."""
    cls = _REGISTRY.get(data.split(_SEP, 1)[0])
    if cls is None:
        raise ValueError(data)
    return cls.unpack(data)


def prefixes() -> dict[str, type[Callback]]:
    """prefix → payload class, for tests and docs."""
    return dict(_REGISTRY)


# --- visits ----------------------------------------------------------------------------------------------------

@callback("pk")
@dataclass(frozen=True, slots=True)
class PickHousehold(Callback):
    """One of several households with the same name; household_id 0 = none of them, -1 = skip this one."""

    entry_id: int
    item: int
    household_id: int


@callback("add")
@dataclass(frozen=True, slots=True)
class AddHousehold(Callback):
    """Add the unknown household named in item `item` of the entry."""

    entry_id: int
    item: int


@callback("dt")
@dataclass(frozen=True, slots=True)
class PickDate(Callback):
    """The visit date chosen among the readings of an ambiguous date (ISO day)."""

    entry_id: int
    day: str


@callback("v")
@dataclass(frozen=True, slots=True)
class CardAction(Callback):
    """撤销 / 修改 under a visit card."""

    entry_id: int
    action: Literal["undo", "edit"]


@callback("nd")
@dataclass(frozen=True, slots=True)
class NeedMet(Callback):
    """已解决 on an open need."""

    need_id: int


@callback("rc")
@dataclass(frozen=True, slots=True)
class RegistryChangeAction(Callback):
    """确认 (ok) / 恢复 (back) a household field stated in a visit message; the handler checks the action."""

    change_id: int
    action: str


@callback("ik")
@dataclass(frozen=True, slots=True)
class IntentChoice(Callback):
    """The answer to "record a visit or a sign-up?" (a CHOICES key of handlers.intent_ask)."""

    entry_id: int
    choice: str


@callback("cmd")
@dataclass(frozen=True, slots=True)
class RunCommand(Callback):
    """A chat command run from a button (WeCom menus, cards)."""

    name: str


# --- trainings -------------------------------------------------------------------------------------------------

@callback("ta")
@dataclass(frozen=True, slots=True)
class ConfirmNotice(Callback):
    """Publish (ok) or drop (no) a training notice parsed from a message."""

    session_id: int
    answer: Literal["ok", "no"]


@callback("tj")
@dataclass(frozen=True, slots=True)
class JoinSession(Callback):
    """Sign up for a session from the list."""

    session_id: int


@callback("tp")
@dataclass(frozen=True, slots=True)
class PickSession(Callback):
    """Which session a sign-up message meant (the message is read back from the inbox)."""

    inbox_id: int
    session_id: int


@callback("tx")
@dataclass(frozen=True, slots=True)
class CancelSignup(Callback):
    """Cancel one sign-up."""

    signup_id: int


@callback("tc")
@dataclass(frozen=True, slots=True)
class CheckinView(Callback):
    """The organiser's check-in list of a session."""

    session_id: int


@callback("tk")
@dataclass(frozen=True, slots=True)
class MarkAttendance(Callback):
    """Mark one sign-up attended (a) or absent (n)."""

    signup_id: int
    mark: Literal["a", "n"]


@callback("te")
@dataclass(frozen=True, slots=True)
class CloseCheckin(Callback):
    """End check-in: the unmarked become no-shows."""

    session_id: int


@callback("tr")
@dataclass(frozen=True, slots=True)
class SendRoster(Callback):
    """The roster workbook of a session."""

    session_id: int


@callback("to")
@dataclass(frozen=True, slots=True)
class ReopenSession(Callback):
    """Reopen sign-ups of a session."""

    session_id: int


# --- reminders and broadcasts ----------------------------------------------------------------------------------

@callback("rm")
@dataclass(frozen=True, slots=True)
class ReminderAction(Callback):
    """Under the morning reminder: s = 明天再提醒, c = 已电话联系 the household."""

    action: Literal["s", "c"]
    household_id: int = 0


@callback("bc")
@dataclass(frozen=True, slots=True)
class BroadcastStep(Callback):
    """A broadcast draft: pick the audience (code; x = cancel), then confirm ("ok") to send."""

    draft_id: int
    code: str
    confirm: Literal["", "ok"] = ""
