"""Every command in the README's code blocks runs, against a scratch folder and the demo's own database, and
exits 0 (printing what the README says where it says something). Commands that need a Telegram token and
the network, install packages, or serve forever are skipped with the reason named below; placeholders are
filled in as listed in SUBSTITUTE. The list of commands is read from the README each time, so a new or
changed command is checked without touching this file."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from bot.cli import main

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"

# Commands not run here, each with the reason.
SKIP = {
    "pip": "installs packages (the environment running this test was installed that way)",
    "venv": "creates a virtual environment",
    "ruff": "the test command itself: ruff, mypy and pytest are what CI runs",
    "mypy": "the test command itself",
    "pytest": "the test command itself",
    "run": "needs a Telegram token and the network (bangfu run is tested in tests/e2e against a fake Bot API)",
    "scheduler": "serves until stopped (tested in tests/multiproc and tests/test_config_errors.py)",
}
# Placeholders in the README and what stands in for them here, per command (an output file such as
# roster's `-o roster.xlsx` stays in the scratch folder).
SUBSTITUTE = {
    "import": {"roster.xlsx": str(ROOT / "examples" / "households_sample.xlsx")},
}
# What the README says a command prints (by its comment or its text).
EXPECT = {
    "--version": re.compile(r"^bangfu \d+\.\d+"),
    "invite": re.compile(r"\n[A-Z0-9]{6,12}\n?$"),  # "prints a one-time code (last line)"
    "digest": re.compile(r"📊 大西桥镇 帮扶周报 2026-W48"),
    "demo": re.compile(r"digest\.txt"),
}


def readme_commands() -> list[list[str]]:
    """argv lists for every `bangfu` invocation in the README's sh blocks, in order; `a / b` and `a && b`
    split, `x|y` alternatives expanded, `[optional]` parts dropped, comments removed."""
    text = README.read_text(encoding="utf-8")
    out: list[list[str]] = []
    for block in re.findall(r"```sh\n(.*?)```", text, re.S):
        for line in block.splitlines():
            line = re.sub(r"\s+#\s.*$", "", line).strip()
            for part in re.split(r"\s+&&\s+|\s+/\s+(?=bangfu\b)", line):
                part = re.sub(r"\s*\[[^\]]*\]", "", part).strip()
                if part:
                    out.extend(_expand(part))
    return out


def _expand(part: str) -> list[list[str]]:
    """`export a|b|c --format x|y`: one command per choice of the first alternative list; later lists take
    their last choice (csv, which needs no -o, for the export line)."""
    words = shlex.split(part.replace("<", " < "))
    rows: list[list[str]] = [[]]
    for w in words:
        options = w.split("|") if "|" in w else [w]
        rows = [[*r, o] for r in rows for o in (options if len(rows) == 1 else options[-1:])]
    return rows


def test_the_readme_commands_are_found() -> None:
    cmds = readme_commands()
    names = {_name(c) for c in cmds}
    assert {"demo", "chat", "init", "import", "invite", "export", "digest", "course", "parse", "backup",
            "restore", "--version"} <= names, names
    assert sum(_name(c) == "export" for c in cmds) >= 4  # every export kind


def _name(argv: list[str]) -> str:
    prog = next((i for i, w in enumerate(argv) if w.endswith("bangfu")), None)
    if prog is None:
        return Path(argv[0]).name if argv else ""
    rest = [w for w in argv[prog + 1:] if w != "--demo"]
    return rest[0] if rest else ""


@pytest.mark.slow
def test_every_readme_command_exits_0(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for k in [k for k in __import__("os").environ if k.startswith("BANGFU_")]:
        monkeypatch.delenv(k)
    # "the demo's database": every command after `bangfu demo` works on var/demo/demo.db.
    monkeypatch.setenv("BANGFU_DATABASE__URL", f"sqlite+aiosqlite:///{tmp_path / 'var' / 'demo' / 'demo.db'}")
    (tmp_path / "messages.jsonl").write_text(json.dumps(
        {"id": 1, "message": "昨天去大坝村王德明家，缺棉被两床", "ref_date": "2026-11-25"}, ensure_ascii=False) + "\n",
        encoding="utf-8")
    runner = CliRunner()
    ran, skipped = [], []
    session_id = None
    for argv in readme_commands():
        name = _name(argv)
        prog = next((i for i, w in enumerate(argv) if w.endswith("bangfu")), None)
        env_prefix = prog is not None and any("=" in w for w in argv[:prog])
        if prog is None or env_prefix or name in SKIP:
            skipped.append((argv, SKIP.get(name) or SKIP.get(Path(argv[0]).name)
                            or SKIP["run" if env_prefix else "pip"]))
            continue
        args = [SUBSTITUTE.get(name, {}).get(w, w) for w in argv[prog + 1:]]
        stdin = None
        if "<" in args:
            i = args.index("<")
            stdin = Path(args[i + 1]).read_bytes()
            args = args[:i] + args[i + 2:]
        if name == "demo":
            args += ["--scale", "tiny"]  # the same demo, smaller: this test must stay fast
        if name == "chat":
            stdin = "帮助\n退出\n".encode()
        if "SESSION_ID" in args:
            assert session_id is not None, "course add must come before roster in the README"
            args[args.index("SESSION_ID")] = session_id
        r = runner.invoke(main, args, input=stdin)
        out = r.stdout + r.stderr
        assert r.exit_code == 0, (argv, out[-2000:], r.exception)
        if name in EXPECT:
            assert EXPECT[name].search(out), (argv, out[-2000:])
        if name == "course":
            m = re.search(r"(\d+)", r.stdout)
            assert m is not None, r.stdout
            session_id = m.group(1)
        ran.append(name)
    assert {"demo", "chat", "invite", "digest", "roster", "restore"} <= set(ran), ran
    assert all(reason for _, reason in skipped)
