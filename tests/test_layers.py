"""The import arrows of DESIGN.md: bot → handlers → storage, never back; each framework in its own file."""

from __future__ import annotations

import ast
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# (who may import it) for each third-party framework: the path prefixes allowed.
OWNERS = {
    "aiogram": ("bot/transports/telegram_aiogram.py",),
    "telegram": ("bot/transports/telegram_ptb.py",),
    "apscheduler": ("bot/scheduler.py",),
    "jieba": ("handlers/text/",),
    "cryptography": ("bot/transports/wecom/",),
    "aiohttp": ("bot/transports/",),
    "redis": ("bot/dispatch.py", "bot/outbox.py"),
}
LAYER_FORBIDS = {
    "storage/": ("bot", "handlers", "aiogram", "telegram", "apscheduler", "jieba", "aiohttp"),
    "handlers/": ("bot", "aiogram", "telegram", "apscheduler", "aiohttp"),
}


def _modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module.split(".")[0])
    return out


def _sources() -> list[Path]:
    return sorted(p for d in ("bot", "handlers", "storage") for p in (ROOT / d).rglob("*.py"))


@pytest.mark.parametrize("path", _sources(), ids=lambda p: str(p.relative_to(ROOT)))
def test_import_arrows(path: Path) -> None:
    rel = path.relative_to(ROOT).as_posix()
    mods = _modules(path)
    for prefix, forbidden in LAYER_FORBIDS.items():
        if rel.startswith(prefix):
            bad = mods & set(forbidden)
            assert not bad, f"{rel} imports {sorted(bad)}"
    for lib, owners in OWNERS.items():
        if lib in mods:
            assert rel.startswith(owners), f"{rel} imports {lib}; only {owners} may"


def test_transports_do_not_import_each_other() -> None:
    names = {"telegram_aiogram", "telegram_ptb", "wecom", "console"}
    for path in (ROOT / "bot" / "transports").rglob("*.py"):
        rel = path.relative_to(ROOT / "bot" / "transports").as_posix()
        own = rel.split("/")[0].removesuffix(".py")
        text = path.read_text(encoding="utf-8")
        for other in names - {own}:
            assert f"bot.transports.{other}" not in text, f"{rel} imports the {other} transport"


def test_every_module_opens_with_a_docstring() -> None:
    missing = []
    for path in _sources():
        if path.name == "__init__.py" and not path.read_text(encoding="utf-8").strip():
            continue
        if ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) is None:
            missing.append(str(path.relative_to(ROOT)))
    assert not missing, missing


def _owners_of(check: Callable[[ast.AST], str | None]) -> dict[str, list[str]]:
    """Which source files contain a node for which `check(node)` names a thing ("Workbook", …)."""
    found: dict[str, list[str]] = {}
    for path in _sources():
        rel = path.relative_to(ROOT).as_posix()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            what = check(node)
            if what:
                found.setdefault(what, []).append(rel)
    return found


def _imported(node: ast.AST, module: str, names: set[str]) -> str | None:
    if isinstance(node, ast.ImportFrom) and node.module is not None and node.module.startswith(module):
        hit = {a.name for a in node.names} & names
        return min(hit) if hit else None
    return None


def _xlsx_writing(node: ast.AST) -> str | None:
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "csv" \
            and node.attr in ("writer", "DictWriter"):
        return "csv." + node.attr
    return _imported(node, "openpyxl", {"Workbook", "WriteOnlyCell"})


def _outbox_writing(node: ast.AST) -> str | None:
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "OutboxMessage":
        return "OutboxMessage("
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "OutboxMessage" \
            and node.attr == "__table__":
        return "OutboxMessage.__table__"  # a Core insert
    return _imported(node, "storage.messages", {"add_outbox", "add_outbox_many", "outbox_row"})


def test_one_spreadsheet_writer() -> None:
    """Every workbook and CSV file is written by handlers/xlsx.py, which keeps formulas out of cells."""
    found = _owners_of(_xlsx_writing)
    assert found, "the check found no writer at all: it no longer sees what it is meant to"
    assert {f for files in found.values() for f in files} == {"handlers/xlsx.py"}, found


def test_one_outbox_writer() -> None:
    """Only storage/messages.py builds outbox rows, and only handlers/outgoing.py (with its private-to-group
    guard) asks it to."""
    found = _owners_of(_outbox_writing)
    builders = {f for k in ("OutboxMessage(", "OutboxMessage.__table__") for f in found.get(k, [])}
    assert builders == {"storage/messages.py"}, found
    callers = {f for k in ("add_outbox", "add_outbox_many", "outbox_row") for f in found.get(k, [])}
    assert callers == {"handlers/outgoing.py"}, found
