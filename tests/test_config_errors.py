"""Every kind of bad configuration value stops `bangfu run` and `bangfu scheduler` with one line,
`配置错误 KEY: reason`, and exit code 2, before any network connection or database file is opened."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from bot.cli import main
from bot.config import ConfigError, load_settings

BANGFU = Path(sys.executable).with_name("bangfu")
GOOD_TOKEN = "123456789:AAFakeTokenForTestsOnly_abcdefghijk"


def _kinds(tmp: Path, trap: str) -> list[tuple[str, dict[str, str], str]]:
    """(kind, environment, the key the line must name). A token is set (and pointed at a trap server)
    wherever the kind allows, so that a run that got past the config would try to connect."""
    a_file = tmp / "a-file"
    a_file.write_text("x", encoding="utf-8")
    tg = {"BANGFU_TELEGRAM__TOKEN": GOOD_TOKEN, "BANGFU_TELEGRAM__API_BASE": trap}
    return [
        ("token, aiogram", {**tg, "BANGFU_TELEGRAM__TOKEN": "123:abc"}, "telegram.token"),
        ("token, ptb", {**tg, "BANGFU_TELEGRAM__FRAMEWORK": "ptb", "BANGFU_TELEGRAM__TOKEN": "my bot token"},
         "telegram.token"),
        ("cron", {**tg, "BANGFU_DIGEST__WEEKLY_CRON": "61 8 * * mon"}, "digest.weekly_cron"),
        ("log level", {**tg, "BANGFU_APP__LOG_LEVEL": "LOUD"}, "app.log_level"),
        ("url", {**tg, "BANGFU_TELEGRAM__API_BASE": "api.telegram.org"}, "telegram.api_base"),
        ("time zone", {**tg, "BANGFU_APP__TIMEZONE": "Beijing"}, "app.timezone"),
        ("path", {**tg, "BANGFU_APP__LOG_FILE": str(a_file / "bangfu.log")}, "app.log_file"),
    ]


def _env(tmp: Path, extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BANGFU_")}
    env.update({"BANGFU_DATABASE__URL": f"sqlite+aiosqlite:///{tmp / 'db' / 'bangfu.db'}",
                "BANGFU_APP__DATA_DIR": str(tmp / "var"), **extra})
    return env


@pytest.mark.skipif(not BANGFU.exists(), reason="the bangfu console script is not installed in this environment")
async def test_each_bad_value_through_run_and_scheduler(tmp_path: Path) -> None:
    trap = socket.socket()
    trap.bind(("127.0.0.1", 0))
    trap.listen(16)
    trap.setblocking(False)
    trap_url = f"http://127.0.0.1:{trap.getsockname()[1]}"
    limit = asyncio.Semaphore(2)  # a shared 2-core machine: never more than two at once

    async def one(kind: str, env: dict[str, str], key: str, command: str) -> None:
        async with limit:
            proc = await asyncio.create_subprocess_exec(
                str(BANGFU), command, env=_env(tmp_path, env), cwd=tmp_path,
                stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
            # Generous: only a run that went on to serve would reach it.
            out, err = await asyncio.wait_for(proc.communicate(), 120)
        lines = err.decode().strip().splitlines()
        assert proc.returncode == 2, (kind, command, err.decode())
        assert lines and lines[0].startswith(f"配置错误 {key}: "), (kind, command, err.decode())
        assert len(lines) == 1 and not out, (kind, command, err.decode(), out.decode())
        assert "abc" not in lines[0] and "my bot token" not in lines[0]  # a token is never echoed

    try:
        await asyncio.gather(*(one(kind, env, key, cmd) for kind, env, key in _kinds(tmp_path, trap_url)
                               for cmd in ("run", "scheduler")))
        with pytest.raises(BlockingIOError):
            trap.accept()  # nobody connected
    finally:
        trap.close()
    assert not (tmp_path / "db").exists()  # nor was the database opened


@pytest.mark.parametrize(("env", "key"), [
    ({"BANGFU_REMINDERS__MORNING_CRON": "0 8 * *"}, "reminders.morning_cron"),
    ({"BANGFU_DIGEST__BULLETIN_CRON": "0 9 */2 * xyz"}, "digest.bulletin_cron"),
    ({"BANGFU_REMINDERS__QUIET_START": "9pm"}, "reminders.quiet_start"),
    ({"BANGFU_TELEGRAM__WEBHOOK_URL": "bot.example.org/hook"}, "telegram.webhook_url"),
    ({"BANGFU_TELEGRAM__WEBHOOK_PATH": "hook"}, "telegram.webhook_path"),
    ({"BANGFU_WECOM__API_BASE": "qyapi.weixin.qq.com"}, "wecom.api_base"),
    ({"BANGFU_REDIS__URL": "127.0.0.1:6379"}, "redis.url"),
    ({"BANGFU_DATABASE__URL": "postgresql+asyncpg://u@h:port/db"}, "database.url"),
    ({"BANGFU_APP__LOG_LEVEL": "verbose"}, "app.log_level"),
    ({"BANGFU_REMINDERS__CADENCE_DAYS": '{"监测户": 0}'}, "reminders.cadence_days"),
    ({"BANGFU_WECOM__ENABLED": "maybe"}, "wecom.enabled"),
])
def test_more_bad_values_one_line(env: dict[str, str], key: str) -> None:
    with pytest.raises(ConfigError) as e:
        load_settings(environ=env)
    assert e.value.key == key and "\n" not in str(e.value)
    r = CliRunner().invoke(main, ["init"], env={**env, "BANGFU_CONFIG": ""})
    assert r.exit_code == 2 and r.output.startswith(f"配置错误 {key}: ") and r.output.count("\n") == 1, r.output


def test_paths_are_checked(tmp_path: Path) -> None:
    a_file = tmp_path / "f"
    a_file.write_text("x", encoding="utf-8")
    for env, key in [({"BANGFU_APP__DATA_DIR": str(a_file)}, "app.data_dir"),
                     ({"BANGFU_APP__LOG_FILE": str(tmp_path)}, "app.log_file"),
                     ({"BANGFU_DATABASE__URL": f"sqlite+aiosqlite:///{a_file}/x.db"}, "database.url")]:
        with pytest.raises(ConfigError) as e:
            load_settings(environ=env)
        assert e.value.key == key


def test_good_values_pass(tmp_path: Path) -> None:
    s = load_settings(environ={
        "BANGFU_TELEGRAM__TOKEN": f" {GOOD_TOKEN} ", "BANGFU_TELEGRAM__FRAMEWORK": "ptb",
        "BANGFU_APP__LOG_LEVEL": "debug", "BANGFU_DIGEST__WEEKLY_CRON": "30 8 * * mon",
        "BANGFU_REDIS__URL": "redis://127.0.0.1:6379/0", "BANGFU_APP__LOG_FILE": str(tmp_path / "logs" / "b.log"),
        "BANGFU_TELEGRAM__WEBHOOK_URL": "https://bot.example.org/telegram/webhook"})
    assert s.telegram.token is not None and s.telegram.token.get_secret_value() == GOOD_TOKEN
    assert s.app.log_level == "DEBUG"
