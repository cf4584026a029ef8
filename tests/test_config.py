"""Config: file discovery, BANGFU_<TABLE>__<KEY> overrides, secrets never printed, one clear line on error."""

from __future__ import annotations

import logging
import re
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from bot.cli import main
from bot.config import ConfigError, Settings, load_settings
from bot.logging import RedactFilter, secrets_of

ROOT = Path(__file__).resolve().parents[1]
AES = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"


def test_example_config_is_valid_and_documents_every_key():
    text = (ROOT / "config.example.toml").read_text(encoding="utf-8")
    Settings.model_validate(tomllib.loads(text))
    # Every key of every table appears in the example (commented out or set), each with a comment.
    lines = text.splitlines()
    for table, model in Settings.model_fields.items():
        assert f"[{table}]" in text, table
        start = lines.index(f"[{table}]")
        for key in model.annotation.model_fields:  # type: ignore[union-attr]
            pat = re.compile(rf"^#?\s*{key}\s*=|^\[{table}\.{key}\]")
            i = next((j for j in range(start, len(lines)) if pat.match(lines[j])), None)
            assert i is not None, f"{table}.{key} missing from config.example.toml"
            line, above = lines[i], lines[i - 1]
            commented = "#" in line.split("=", 1)[-1].split("]", 1)[-1] or above.lstrip().startswith("#")
            assert commented, f"{table}.{key} has no comment"


def test_env_overrides_every_documented_name():
    s = load_settings(environ={
        "BANGFU_DATABASE__URL": "postgresql+asyncpg://u@h/db", "BANGFU_TELEGRAM__TOKEN": "123456789:AAFakeTokenForTestsOnly_abcdefghijk",
        "BANGFU_TELEGRAM__API_BASE": "http://127.0.0.1:9", "BANGFU_TELEGRAM__FRAMEWORK": "ptb",
        "BANGFU_REMINDERS__CADENCE_DAYS": '{"监测户": 3}', "BANGFU_LIMITS__MAX_FILE_BYTES": "1000",
    })
    assert s.database.url.startswith("postgresql")
    assert s.telegram.token is not None and s.telegram.token.get_secret_value() == "123456789:AAFakeTokenForTestsOnly_abcdefghijk"
    assert s.telegram.api_base == "http://127.0.0.1:9" and s.telegram.framework == "ptb"
    assert s.reminders.cadence_days == {"监测户": 3} and s.limits.max_file_bytes == 1000


def test_file_then_env(tmp_path, monkeypatch):
    cfg = tmp_path / "config.toml"
    cfg.write_text('[telegram]\nframework = "ptb"\n[app]\ntimezone = "Asia/Urumqi"\n', encoding="utf-8")
    s = load_settings(str(cfg), environ={"BANGFU_APP__TIMEZONE": "Asia/Shanghai"})
    assert s.telegram.framework == "ptb" and s.app.timezone == "Asia/Shanghai"
    monkeypatch.chdir(tmp_path)  # ./config.toml is found without --config
    assert load_settings(environ={}).telegram.framework == "ptb"
    assert load_settings(environ={"BANGFU_CONFIG": str(cfg)}).app.timezone == "Asia/Urumqi"


@pytest.mark.parametrize(("env", "needle"), [
    ({"BANGFU_TELEGRAM__FRAMEWORK": "pyrogram"}, "telegram.framework"),
    ({"BANGFU_APP__TIMEZONE": "Mars/Olympus"}, "app.timezone"),
    ({"BANGFU_DATABASE__URL": "mysql://x"}, "database.url"),
    ({"BANGFU_TELEGRAM__LISTEN": "nowhere"}, "telegram.listen"),
    ({"BANGFU_LIMITS__MAX_FILE_BYTES": "lots"}, "limits.max_file_bytes"),
    ({"BANGFU_NOPE__X": "1"}, "nope"),
    ({"BANGFU_WECOM__ENABLED": "true", "BANGFU_WECOM__CORP_ID": "ww", "BANGFU_WECOM__AGENT_ID": "1x",
      "BANGFU_WECOM__SECRET": "s", "BANGFU_WECOM__TOKEN": "t", "BANGFU_WECOM__AES_KEY": AES}, "agent_id"),
])
def test_bad_value_is_one_line_naming_the_key_exit_2(env, needle):
    with pytest.raises(ConfigError) as e:
        load_settings(environ=env)
    assert needle in str(e.value) and "\n" not in str(e.value)
    r = CliRunner().invoke(main, ["init"], env={**env, "BANGFU_CONFIG": ""})
    assert r.exit_code == 2
    assert r.output.count("\n") == 1 and needle in r.output


def test_secrets_never_printed_or_logged(caplog):
    s = load_settings(environ={"BANGFU_TELEGRAM__TOKEN": "123456789:AAHsecretsecretsecretsecretsecret12",
                               "BANGFU_WECOM__ROBOTS": '{"群": "robot-key-abcdef"}'})
    assert "AAHsecret" not in repr(s) and "AAHsecret" not in str(s.model_dump())
    f = RedactFilter(secrets_of(s))
    log = logging.getLogger("t.secret")
    log.addFilter(f)
    with caplog.at_level(logging.INFO, logger="t.secret"):
        log.info("calling https://api.telegram.org/bot%s/getMe with %s", "123456789:AAHsecretsecretsecretsecretsecret12",
                 "robot-key-abcdef")
    assert "AAHsecret" not in caplog.text and "robot-key-abcdef" not in caplog.text
