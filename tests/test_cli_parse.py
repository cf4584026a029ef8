"""`bangfu parse` reads JSONL and never crashes; its output scores ≥ 0.90 on both dev sets."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from bot.cli import main

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


@pytest.mark.parametrize("name", ["visit_logs_dev", "signups_dev"])
def test_dev_set_through_cli_scores(name, tmp_path):
    data = (SHARED / "data" / f"{name}.jsonl").read_bytes()
    r = CliRunner().invoke(main, ["parse"], input=data)
    assert r.exit_code == 0
    pred = tmp_path / "pred.jsonl"
    pred.write_text(r.output, encoding="utf-8")
    out = subprocess.run([sys.executable, str(SHARED / "tools" / "score_parse.py"), str(SHARED / "data" / f"{name}.jsonl"),
                          str(pred), "--min", "0.90"], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout


def test_garbage_lines_do_not_stop_the_batch():
    lines = b'\x00\xff\xfe not json\n[1,2]\n{"id": 7}\n{"id": 8, "message": "\xe4\xbb\x8a\xe5\xa4\xa9", "ref_date": "2026-13-99"}\n'
    big = json.dumps({"id": 9, "message": "缺" * 100_000, "ref_date": "2026-11-25"}).encode() + b"\n"
    r = CliRunner().invoke(main, ["parse"], input=lines + big)
    assert r.exit_code == 0
    rows = [json.loads(x) for x in r.output.splitlines()]
    assert len(rows) == 5
    assert rows[0]["id"] is None and "error" in rows[0]
    assert [x.get("id") for x in rows[2:]] == [7, 8, 9]
    assert all("intent" in x for x in rows[2:])


def test_single_text_pretty():
    r = CliRunner().invoke(main, ["parse", "--text", "昨天去大坝村王德明家，缺棉被两床", "--ref-date", "2026-11-25"])
    assert r.exit_code == 0
    obj = json.loads(r.output)
    assert obj["visit_date"] == "2026-11-24" and obj["needs"][0]["qty"] == 2
