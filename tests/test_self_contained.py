"""The test suite needs nothing beside the repository: no file under tests/ (nor CI or bench scripts) points
at the sibling annotation folder the project was developed next to. Its data lives in tests/text/data."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Written in pieces so this file does not match itself.
_SHARED = "sha" + "red"
PATTERNS = [
    re.compile(re.escape("../" + _SHARED)),
    re.compile(re.escape("/" + _SHARED + "/") + "(data|tools)/"),
    re.compile(r"""parents?(\[\d+\])?(\.parent)*\s*/\s*["']""" + _SHARED + r"""["']"""),
    re.compile(r"""\.parent\s*/\s*["']""" + _SHARED + r"""["']"""),
]


def _files() -> list[Path]:
    out: list[Path] = []
    for top in ("tests", ".ci", "bench"):
        for p in (ROOT / top).rglob("*"):
            if p.is_file() and "__pycache__" not in p.parts and p.suffix in ("", ".py", ".md", ".toml", ".txt",
                                                                               ".cfg", ".ini", ".sh", ".json"):
                out.append(p)
    return out


def test_no_test_reads_outside_the_repository() -> None:
    files = _files()
    assert len(files) > 50  # the scan really covers the suite
    hits = [f"{p.relative_to(ROOT)}: {m.group(0)}" for p in files
            for m in (pat.search(p.read_text(encoding="utf-8", errors="replace")) for pat in PATTERNS) if m]
    assert not hits, hits


def test_the_patterns_catch_the_old_ways_of_reaching_it() -> None:
    for line in (f'SHARED = Path(__file__).resolve().parents[1].parent / "{_SHARED}"',
                 f"python ../{_SHARED}/tools/score_parse.py", f'ROOT.parent / "{_SHARED}" / "tools"',
                 f"annotated per /srv/{_SHARED}/data/README.md"):
        assert any(p.search(line) for p in PATTERNS), line
