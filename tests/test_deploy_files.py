"""The deployment recipes (deploy/, docs/DEPLOY.md) name only real `bangfu` commands and real configuration
keys: nothing is built here, but a renamed command or key fails this test instead of a deployment."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest

from bot.cli import main
from bot.config import Settings, env_overrides

ROOT = Path(__file__).resolve().parents[1]
FILES = [ROOT / "deploy" / "Dockerfile", ROOT / "deploy" / "compose.yaml", ROOT / "deploy" / "bangfu.service",
         ROOT / "docs" / "DEPLOY.md"]


def _commands() -> set[str]:
    ctx = click.Context(main)
    return set(main.list_commands(ctx))


def _bangfu_invocations(text: str) -> list[str]:
    """The subcommand after every `bangfu` used as a program: shell lines, exec lines and JSON argv lists."""
    return re.findall(r'(?:^|[ \t/"\[`])bangfu"?,?[ \t]+"?([a-z][a-z-]*)', text, re.M)


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_commands_are_real(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    used = _bangfu_invocations(text)
    assert used, f"{path.name} runs no bangfu command?"
    unknown = sorted(set(used) - _commands())
    assert not unknown, f"{path.name}: no such command: {unknown}"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_config_keys_are_real(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    names = set(re.findall(r"\bBANGFU_[A-Z]+__[A-Z_]+\b", text)) | set(re.findall(r"\bBANGFU_CONFIG\b", text))
    tables = Settings.model_fields
    for name in names - {"BANGFU_CONFIG"}:
        (table, values), = env_overrides({name: "x"}).items()
        (key,) = values
        assert table in tables, f"{path.name}: {name}: no table [{table}]"
        model = tables[table].annotation
        assert key in model.model_fields, f"{path.name}: {name}: no key {table}.{key}"  # type: ignore[union-attr]
    for table, key in re.findall(r"`\[([a-z]+)\] ([a-z_]+)", text):
        assert key in tables[table].annotation.model_fields, f"{path.name}: [{table}] {key}"  # type: ignore[union-attr]


def test_the_checks_catch_a_wrong_name() -> None:
    assert set(_bangfu_invocations('CMD ["bangfu", "serve"]\nExecStart=/x/bin/bangfu runn')) - _commands() == {
        "serve", "runn"}
    (table, values), = env_overrides({"BANGFU_APP__LOGFORMAT": "x"}).items()
    assert next(iter(values)) not in Settings.model_fields[table].annotation.model_fields  # type: ignore[union-attr]


def test_the_unit_and_compose_use_the_documented_ports_and_exit_code() -> None:
    unit = (ROOT / "deploy" / "bangfu.service").read_text(encoding="utf-8")
    assert "RestartPreventExitStatus=2" in unit  # a config error is exit 2 (bot/cli.py)
    compose = (ROOT / "deploy" / "compose.yaml").read_text(encoding="utf-8")
    assert "9108/healthz" in compose and "BANGFU_APP__METRICS_LISTEN: 0.0.0.0:9108" in compose
