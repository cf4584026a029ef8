"""Held-out-style sets (tests/text/data/heldout_style_*.jsonl): messages written in the dev-set style but with new
wording, names, villages and dates, annotated per tests/text/data/SCHEMA.md before the parser was tuned on them.
Scored with the annotation set's scorer (tests/text/tools); the floors sit a little below the current scores so
regressions show."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCORER = Path(__file__).resolve().parent / "tools" / "score_parse.py"
DATA = Path(__file__).resolve().parent / "data"
BANGFU = Path(sys.executable).with_name("bangfu")


@pytest.mark.parametrize(("name", "floor"), [("heldout_style_visits.jsonl", 0.93), ("heldout_style_signups.jsonl", 0.90)])
def test_heldout_style_score(name: str, floor: float, tmp_path: Path) -> None:
    src = DATA / name
    cmd = [str(BANGFU), "parse"] if BANGFU.exists() else [sys.executable, "-c", "from bot.cli import main; main()", "parse"]
    with src.open("rb") as fin:
        out = subprocess.run(cmd, stdin=fin, capture_output=True, check=True, cwd=ROOT, timeout=120)
    pred = tmp_path / "pred.jsonl"
    pred.write_bytes(out.stdout)
    res = subprocess.run([sys.executable, str(SCORER), str(src), str(pred), "--json"], capture_output=True,
                         check=True, text=True, cwd=ROOT, timeout=60)
    report = json.loads(res.stdout)
    assert report["missing"] == 0
    assert report["score"] >= floor, report["fields"]


def test_heldout_style_files_are_well_formed() -> None:
    keys = {"intent", "secondary_intents", "household_head", "village", "visit_date", "visit_type", "household_size",
            "needs", "follow_ups", "course", "course_norm", "participants", "phone", "training_date",
            "signup_deadline", "cancelled", "notes"}
    for name in ("heldout_style_visits.jsonl", "heldout_style_signups.jsonl"):
        for line in (DATA / name).read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            assert row["ref_date"] == "2026-11-25" and row["tz"] == "Asia/Shanghai"
            assert set(row["expected"]) == keys, row["id"]
