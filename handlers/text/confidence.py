"""When the parse's intent is too doubtful to act on: the reason the bot should ask "记走访 / 报名培训 / 都不是"
instead of silently taking one path, and the visit reading of a message the cadre says is a visit."""

from __future__ import annotations

import re
from collections.abc import Callable
from enum import Enum
from typing import Any

TRAINING_INTENTS = ("training_signup", "training_cancel")


class Doubt(Enum):
    """Why a reading is too weak to act on without asking."""

    WEAK_VISIT = "weak_visit"  # read as a visit, but with neither a household nor any visit evidence
    MIXED = "mixed"  # a visit that also signs up or withdraws someone: which one is meant?
    SIGNUP_WITH_VISIT = "signup_with_visit"  # read as a sign-up, but the text also reports a home visit or a need
    OTHER_WITH_HOUSEHOLD = "other_with_household"  # read as nothing, but names a household and a need
    OTHER_WITH_VISIT = "other_with_visit"  # read as nothing, but reports going to a home, a call or a meeting
    WEAK_SIGNUP = "weak_signup"  # read as a sign-up with no course and no word of signing up


# Text cues of a visit that the parse fields do not carry when another intent won (the parser fills visit
# fields only for visit logs). Kept deliberately small: they only decide whether to ask.
_VISIT_CUE = re.compile(r"走访|入户|上门|家访|回访|看望|院坝会|(?:去|到|在|从)[\u4e00-\u9fff]{0,6}家(?!政|具|电|禽)"
                        r"|通了电话|打了电话|电话联系|(?:家里|家中)(?:没人|无人)|不在家|没人接")
_NEED_CUE = re.compile(r"缺|需要|漏雨|漏水|坏了|困难|看病|住院|没钱|救助|低保|补助|补贴|慢病|危房|停水|断水|没水")
_NAME_SPAN = re.compile(r"[\u4e00-\u9fff]{2,4}")
# A report of contact that happened: went to a home, phoned, held a meeting. Past marker or visit verb required.
_DID_VISIT = re.compile(r"走访了|回访了|入户了|上门了|看望了|(?:去|到)了?[\u4e00-\u9fff]{1,10}(?:家|户)(?![政具电禽长里人])"
                        r"|(?:打|通)了.{0,4}电话|开了?.{0,3}(?:小会|院坝会|座谈会|群众会|户长会)|(?:院坝会|座谈会|群众会)")
# Not a report: a notice or instruction, or a question.
_NOT_REPORT = re.compile(r"请各|各村|务必|要求|通知|【|[?？]|吗|要不要|是否|有没有")
_SIGNUP_WORD = re.compile(r"报名|报个|报了|想报|要报|帮.{0,8}报|给.{0,6}报|报\s*\d|名额|参加|参训|培训|班|学(?!校|生|费)")
_QUESTION = re.compile(r"[?？]|吗|要不要|是不是|有没有|能不能")


def _has(v: Any) -> bool:
    return v not in (None, "", [], {})


def visit_evidence(parsed: dict[str, Any]) -> bool:
    """Fields only a visit log gets: how or when the visit happened, what was found, what was promised."""
    return any(_has(parsed.get(k)) for k in ("visit_type", "visit_date", "needs", "follow_ups", "household_size")) \
        or parsed.get("visit_outcome") == "not_met"


def _names_a_household(text: str, is_known_name: Callable[[str], bool] | None) -> bool:
    if is_known_name is None:
        return False
    for run in _NAME_SPAN.findall(text):
        for n in (2, 3, 4):
            if any(is_known_name(run[i:i + n]) for i in range(len(run) - n + 1)):
                return True
    return False


def intent_doubt(parsed: dict[str, Any], text: str,
                 is_known_name: Callable[[str], bool] | None = None) -> Doubt | None:
    """The reason to ask before acting on `parsed` (the parse of `text`), or None when its intent is clear.
    `is_known_name` says whether a string is a registered household head (the registry's lookup)."""
    intent = parsed.get("intent")
    secondary = [s for s in parsed.get("secondary_intents") or [] if isinstance(s, str)]
    if intent == "visit_log":
        if any(s in TRAINING_INTENTS for s in secondary):
            return Doubt.MIXED
        if not _has(parsed.get("household_head")) and (not visit_evidence(parsed) or _QUESTION.search(text)):
            return Doubt.WEAK_VISIT
        return None
    if intent in TRAINING_INTENTS:
        if "visit_log" in secondary or (_VISIT_CUE.search(text) and (
                _NEED_CUE.search(text) or re.search(r"走访|入户|上门|家访", text))):
            return Doubt.SIGNUP_WITH_VISIT
        if intent == "training_signup" and not _has(parsed.get("course")) and not _has(parsed.get("cancelled")) \
                and not _SIGNUP_WORD.search(text):
            return Doubt.WEAK_SIGNUP
        return None
    if intent == "other" and not _NOT_REPORT.search(text):
        if _DID_VISIT.search(text):
            return Doubt.OTHER_WITH_VISIT
        if _NEED_CUE.search(text) and _names_a_household(text, is_known_name):
            return Doubt.OTHER_WITH_HOUSEHOLD
    return None


def intent_uncertain(parsed: dict[str, Any], text: str, is_known_name: Callable[[str], bool] | None = None) -> bool:
    return intent_doubt(parsed, text, is_known_name) is not None


def visit_reading(parsed: dict[str, Any]) -> dict[str, Any]:
    """The parse as a visit log, for a message the cadre said is a visit. A sign-up or an unclassified
    reading carries no visit fields, so the people it names stand in as the households."""
    if parsed.get("intent") == "visit_log":
        return dict(parsed)
    out = dict(parsed)
    out["intent"] = "visit_log"
    out["secondary_intents"] = [parsed["intent"]] if parsed.get("intent") in TRAINING_INTENTS else []
    names: list[str] = []
    for key in ("participants", "cancelled"):
        v = parsed.get(key)
        if isinstance(v, dict):
            names += [n for n in v.get("names") or [] if isinstance(n, str) and n not in names]
    if not _has(out.get("household_head")) and names:
        out["household_head"] = names[0] if len(names) == 1 else names
        if isinstance(out.get("village"), list) and len(out["village"]) != len(names):
            out["village"] = None
    return out


def training_reading(parsed: dict[str, Any]) -> dict[str, Any]:
    """The parse as a sign-up or withdrawal, for a message the cadre said is about a training: a visit
    reading that also withdrew someone ("她说电工培训不去了") is a withdrawal, not a new sign-up."""
    if parsed.get("intent") in TRAINING_INTENTS:
        return dict(parsed)
    out = dict(parsed)
    secondary = [s for s in parsed.get("secondary_intents") or [] if s in TRAINING_INTENTS]
    out["intent"] = secondary[0] if secondary else "training_signup"
    out["secondary_intents"] = []
    return out
