"""Configuration: one pydantic model per TOML table, read from a file and BANGFU_<TABLE>__<KEY> variables.

Secrets are SecretStr so that neither repr() nor logging can print them.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import tomllib
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

ENV_PREFIX = "BANGFU_"


# Deployment defaults, here only: handlers and storage take them as arguments.
DEFAULT_TIMEZONE = "Asia/Shanghai"
DEFAULT_DISTRICT = "西秀区"


class ConfigError(Exception):
    """One line naming the key and what is wrong with it."""


class _Table(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AppCfg(_Table):
    timezone: str = DEFAULT_TIMEZONE
    district: str = DEFAULT_DISTRICT  # the county/district an imported roster belongs to when it names none
    data_dir: str = "var"
    log_level: str = "INFO"
    log_file: str | None = None

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError) as e:
            raise ValueError(f"unknown time zone {v!r}") from e
        return v


class DatabaseCfg(_Table):
    url: str = "sqlite+aiosqlite:///var/bangfu.db"

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        if not v.split(":", 1)[0].startswith(("sqlite", "postgresql", "postgres")):
            raise ValueError("must be a sqlite:/// or postgresql:// URL")
        return v


class TelegramCfg(_Table):
    token: SecretStr | None = None
    framework: Literal["aiogram", "ptb"] = "aiogram"
    api_base: str | None = None
    webhook_url: str | None = None
    webhook_secret: SecretStr | None = None
    listen: str = "127.0.0.1:8081"
    webhook_path: str = "/telegram/webhook"
    poll_timeout: int = Field(25, ge=0, le=60)

    @field_validator("listen")
    @classmethod
    def _listen(cls, v: str) -> str:
        return _host_port(v)


class WeComCfg(_Table):
    enabled: bool = False
    corp_id: str = ""
    agent_id: str = ""
    secret: SecretStr | None = None
    token: SecretStr | None = None
    aes_key: SecretStr | None = None
    api_base: str = "https://qyapi.weixin.qq.com"
    listen: str = "127.0.0.1:8082"
    robots: dict[str, SecretStr] = Field(default_factory=dict)

    @field_validator("listen")
    @classmethod
    def _listen(cls, v: str) -> str:
        return _host_port(v)

    @model_validator(mode="after")
    def _complete(self) -> WeComCfg:
        if self.enabled:
            missing = [k for k in ("corp_id", "agent_id", "secret", "token", "aes_key") if not getattr(self, k)]
            if missing:
                raise ValueError(f"wecom is enabled but {', '.join(missing)} not set")
            key = self.aes_key.get_secret_value() if self.aes_key else ""
            if len(key) != 43:
                raise ValueError("aes_key (EncodingAESKey) must be 43 characters")
            try:
                raw = base64.b64decode(key + "=", validate=True)
            except binascii.Error:
                raw = b""
            if len(raw) != 32:
                raise ValueError("aes_key (EncodingAESKey) is not valid: copy it again from the WeCom console")
            if not self.agent_id.strip().isdigit():
                raise ValueError("agent_id (AgentId) must be a number")
        return self


class LimitsCfg(_Table):
    max_text_chars: int = Field(4000, ge=100)
    max_file_bytes: int = Field(20_000_000, ge=1)
    user_messages_per_minute: int = Field(30, ge=1)
    attach_window_minutes: int = Field(10, ge=0)


class RemindersCfg(_Table):
    enabled: bool = True
    morning_cron: str = "0 8 * * *"
    quiet_start: str = "21:00"
    quiet_end: str = "08:00"
    # Days between visits, per household type; a type not listed uses "default".
    cadence_days: dict[str, int] = Field(
        default_factory=lambda: {"监测户": 7, "脱贫户": 30, "default": 60}
    )
    training_hours_before: list[int] = Field(default_factory=lambda: [24, 2])


class DigestCfg(_Table):
    weekly_cron: str = "30 8 * * mon"
    bulletin_cron: str = "0 9 */2 * *"
    misfire_grace_hours: int = Field(12, ge=0)


class RedisCfg(_Table):
    url: str | None = None


class PrivacyCfg(_Table):
    inbox_text_retention_days: int | None = Field(365, ge=1)


class Settings(_Table):
    app: AppCfg = Field(default_factory=AppCfg)
    database: DatabaseCfg = Field(default_factory=DatabaseCfg)
    telegram: TelegramCfg = Field(default_factory=TelegramCfg)
    wecom: WeComCfg = Field(default_factory=WeComCfg)
    limits: LimitsCfg = Field(default_factory=LimitsCfg)
    reminders: RemindersCfg = Field(default_factory=RemindersCfg)
    digest: DigestCfg = Field(default_factory=DigestCfg)
    redis: RedisCfg = Field(default_factory=RedisCfg)
    privacy: PrivacyCfg = Field(default_factory=PrivacyCfg)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.app.timezone)


def _host_port(v: str) -> str:
    host, sep, port = v.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError("must be host:port, e.g. 127.0.0.1:8081")
    return v


def _env_value(raw: str) -> Any:
    # Lists and tables come as JSON (BANGFU_WECOM__ROBOTS='{"镇群":"key"}'); scalars stay strings
    # and pydantic coerces them.
    s = raw.strip()
    if s[:1] in "[{":
        try:
            return json.loads(s)
        except json.JSONDecodeError:
            return raw
    return raw


def env_overrides(environ: dict[str, str] | os._Environ[str]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name or name == "BANGFU_CONFIG":
            continue
        table, _, key = name[len(ENV_PREFIX):].partition("__")
        if not table or not key:
            continue
        out.setdefault(table.lower(), {})[key.lower()] = _env_value(value)
    return out


def find_config_path(explicit: str | None, environ: dict[str, str] | os._Environ[str]) -> Path | None:
    if explicit:
        return Path(explicit)
    if environ.get("BANGFU_CONFIG"):
        return Path(environ["BANGFU_CONFIG"])
    local = Path("config.toml")
    return local if local.exists() else None


def load_settings(path: str | None = None, environ: dict[str, str] | None = None) -> Settings:
    env = os.environ if environ is None else environ
    data: dict[str, Any] = {}
    cfg_path = find_config_path(path, env)
    if cfg_path is not None:
        try:
            data = tomllib.loads(cfg_path.read_text(encoding="utf-8"))
        except FileNotFoundError as e:
            raise ConfigError(f"config file {cfg_path} not found") from e
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"{cfg_path}: not valid TOML ({e})") from e
    for table, values in env_overrides(env).items():
        section = data.setdefault(table, {})
        if not isinstance(section, dict):
            raise ConfigError(f"{table}: must be a table")
        section.update(values)
    try:
        return Settings.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        key = ".".join(str(p) for p in err["loc"]) or "config"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        raise ConfigError(f"{key}: {msg}") from None
