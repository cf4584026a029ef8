"""CLI record front end, and the first dev set parsed in-process and scored by the annotation set's scorer
(both kept in tests/text; must stay >= 0.90)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from handlers.text import parse_jsonl, parse_record

HERE = Path(__file__).resolve().parent
SCORER = HERE / "tools" / "score_parse.py"


def test_parse_record_and_bad_input() -> None:
    r = parse_record({"id": "x1", "message": "今天去高坡村马德忠家，4口人", "ref_date": "2026-11-25", "extra": 1})
    assert r["id"] == "x1" and r["visit_date"] == "2026-11-25" and r["household_size"] == 4
    assert parse_record({"id": 2})["intent"] == "other"
    assert parse_record({"id": 3, "message": 42, "ref_date": "garbage", "tz": "Nowhere/Zone"})["intent"] == "other"
    assert parse_record("not a dict")["id"] is None


def test_parse_jsonl_survives_bad_lines() -> None:
    lines = ['{"id": "a", "message": "好的", "ref_date": "2026-11-25"}', "{broken", "", "[1,2]"]
    out = [json.loads(x) for x in parse_jsonl(lines)]
    assert out[0]["id"] == "a" and out[0]["intent"] == "other"
    assert out[1]["id"] is None and "error" in out[1]
    assert out[2]["id"] is None and "error" in out[2]
    assert "汉" in next(parse_jsonl(['{"id": "汉", "message": "", "ref_date": "2026-11-25"}']))


@pytest.mark.parametrize("name", ["visit_logs_dev", "signups_dev"])
def test_dev_set_score(name: str, tmp_path: Path) -> None:
    expected = HERE / "data" / f"{name}.jsonl"
    pred = tmp_path / "pred.jsonl"
    with expected.open(encoding="utf-8") as f:
        pred.write_text("\n".join(parse_jsonl(f)) + "\n", encoding="utf-8")
    out = subprocess.run([sys.executable, str(SCORER), str(expected), str(pred), "--json"], capture_output=True,
                         text=True, check=True)
    score = json.loads(out.stdout)["score"]
    assert score >= 0.90, out.stdout
