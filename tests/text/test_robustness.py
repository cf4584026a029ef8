"""Robustness: the annotated sets kept in tests/text/data, typed the way phones and voice input mangle them
(punctuation stripped, spaces removed, full- and half-width swapped, common homophone typos), score within
0.03 of the clean text."""

from __future__ import annotations

import importlib.util
import json
import re
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from handlers.text import parse_record

DATA = Path(__file__).resolve().parent / "data"
SCORER = Path(__file__).resolve().parent / "tools" / "score_parse.py"
SETS = ("visit_logs_dev", "signups_dev", "visit_logs_dev2", "signups_dev2")

_PUNCT = re.compile(r"[，,。.!！?？;；:：、“”\"'（）()【】\[\]…~～]")
_FULL = {chr(c): chr(c - 0xFEE0) for c in range(0xFF01, 0xFF5F)}
_HALF = {v: k for k, v in _FULL.items()}
# Typos cadres' input methods make: the same pinyin, another character.
TYPOS = (("低保", "低报"), ("残疾", "残急"), ("公益", "公义"), ("雨露", "雨路"), ("棉被", "棉背"), ("医保", "医宝"),
         ("报销", "报消"), ("危房", "危方"), ("化肥", "化费"), ("自来水", "自来谁"), ("住院", "注院"))


def _typos(s: str) -> str:
    for right, wrong in TYPOS:
        s = s.replace(right, wrong)
    return s


TRANSFORMS: dict[str, Callable[[str], str]] = {
    "punctuation stripped": lambda s: _PUNCT.sub("", s),
    "spaces removed": lambda s: re.sub(r"[ \u3000]", "", s),
    "width swapped": lambda s: "".join(_FULL.get(ch) or _HALF.get(ch) or ch for ch in s).replace(" ", "\u3000"),
    "homophone typos": _typos,
}


def _scorer() -> ModuleType:
    spec = importlib.util.spec_from_file_location("score_parse", SCORER)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _score(expected: dict[str, Any], change: Callable[[str], str]) -> float:
    pred = {rid: parse_record({**row, "message": change(row["message"])}) for rid, row in expected.items()}
    return float(_scorer().score(expected, pred)[1])


@pytest.mark.parametrize("name", SETS)
def test_mangled_text_scores_close_to_clean(name: str) -> None:
    rows = [json.loads(x) for x in (DATA / f"{name}.jsonl").read_text(encoding="utf-8").splitlines() if x.strip()]
    expected = {str(r["id"]): r for r in rows}
    clean = _score(expected, lambda s: s)
    for label, change in TRANSFORMS.items():
        got = _score(expected, change)
        assert got >= clean - 0.03, f"{name}, {label}: {got:.3f} vs clean {clean:.3f}"


def test_the_transforms_really_change_the_text() -> None:
    s = "今天去大坝村王德明家，5口人，缺棉被两床 想申请低保"
    assert all(change(s) != s for change in TRANSFORMS.values())
