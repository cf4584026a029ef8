"""Configuration: one pydantic model per TOML table, read from a file and BANGFU_<TABLE>__<KEY> variables.

Secrets are SecretStr so that neither repr() nor logging can print them.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import tomllib
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit
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
    """One line naming the key and what is wrong with it: str() is "KEY: reason"."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"{key}: {reason}")
        self.key = key
        self.reason = reason


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
# A Bot API token as @BotFather issues it: the bot's numeric id, a colon, 35 URL-safe characters. Checked
# here for both frameworks (aiogram raised a traceback on a malformed one; python-telegram-bot accepted it).
_TG_TOKEN = re.compile(r"^\d{5,20}:[A-Za-z0-9_-]{30,80}$")
_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


def _http_url(v: str | None) -> str | None:
    if v is None:
        return v
    parts = urlsplit(v)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"不是 http(s):// 开头的网址：{v!r}")
    try:
        _ = parts.port
    except ValueError as e:
        raise ValueError(f"网址里的端口不对：{v!r}") from e
    return v.rstrip("/") if v.endswith("/") and parts.path in ("", "/") else v


def _cron(v: str) -> str:
    # The scheduler's own parser, so that what passes here is exactly what it will accept at start.
    from bot.scheduler import cron

    if len(v.split()) != 5:
        raise ValueError(f"cron 表达式要有 5 段（分 时 日 月 周），{v!r} 有 {len(v.split())} 段")
    try:
        cron(v, "UTC")
    except (ValueError, TypeError) as e:
        raise ValueError(f"cron 表达式 {v!r} 不对：{str(e).splitlines()[0]}") from e
    return v


def _writable_dir_for(path: Path) -> bool:
    """Whether path could be created: its nearest existing ancestor is a writable directory."""
    p = path
    while not p.exists():
        if p.parent == p:
            return False
        p = p.parent
    return p.is_dir() and os.access(p, os.W_OK | os.X_OK)


class _Table(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AppCfg(_Table):
    timezone: str = DEFAULT_TIMEZONE
    district: str = DEFAULT_DISTRICT  # the county/district an imported roster belongs to when it names none
    data_dir: str = "var"
    log_level: str = "INFO"
    log_file: str | None = None
    log_format: Literal["text", "json"] = "text"
    metrics_listen: str | None = None
    faq_file: str | None = None

    @field_validator("faq_file")
    @classmethod
    def _faq(cls, v: str | None) -> str | None:
        if not v:
            return None
        from handlers.faq import faq_from_file
        from handlers.text.faq import FaqError

        try:
            faq_from_file(str(Path(v).resolve()))
        except FileNotFoundError:
            raise ValueError(f"找不到常见问题文件 {v}") from None
        except (OSError, UnicodeDecodeError) as e:
            raise ValueError(f"读不了 {v}（{type(e).__name__}）") from None
        except FaqError as e:
            raise ValueError(f"{v}：{e}") from None
        return v

    @field_validator("metrics_listen")
    @classmethod
    def _metrics_listen(cls, v: str | None) -> str | None:
        return _host_port(v) if v else None

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError) as e:
            raise ValueError(f"未知的时区 {v!r}（例如 Asia/Shanghai）") from e
        return v

    @field_validator("log_level")
    @classmethod
    def _level(cls, v: str) -> str:
        if v.upper() not in LOG_LEVELS:
            raise ValueError(f"日志级别只能是 {', '.join(LOG_LEVELS)}，不能是 {v!r}")
        return v.upper()

    @field_validator("data_dir")
    @classmethod
    def _data_dir(cls, v: str) -> str:
        p = Path(v)
        if p.exists() and not p.is_dir():
            raise ValueError(f"{v} 已存在，但不是文件夹")
        if not p.exists() and not _writable_dir_for(p):
            raise ValueError(f"无法创建文件夹 {v}")
        return v

    @field_validator("log_file")
    @classmethod
    def _log_file(cls, v: str | None) -> str | None:
        if v is None:
            return v
        p = Path(v)
        if p.is_dir():
            raise ValueError(f"{v} 是文件夹，应该是日志文件的路径")
        if p.exists() and not os.access(p, os.W_OK):
            raise ValueError(f"没有权限写 {v}")
        if not p.exists() and not _writable_dir_for(p.parent):
            raise ValueError(f"无法在 {p.parent} 下创建日志文件")
        return v


class DatabaseCfg(_Table):
    url: str = "sqlite+aiosqlite:///var/bangfu.db"

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        if not v.split(":", 1)[0].startswith(("sqlite", "postgresql", "postgres")):
            raise ValueError("必须是 sqlite:/// 或 postgresql:// 开头的数据库地址")
        try:
            u = make_url(v)
        except (ArgumentError, ValueError) as e:
            raise ValueError(f"数据库地址格式不对（{str(e).splitlines()[0]}）") from None
        if u.get_backend_name() == "sqlite" and u.database and u.database != ":memory:":
            path = Path(u.database)
            if path.is_dir():
                raise ValueError(f"{path} 是文件夹，应该是数据库文件的路径")
            if not path.exists() and not _writable_dir_for(path.parent):
                raise ValueError(f"无法在 {path.parent} 下创建数据库文件")
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

    @field_validator("token")
    @classmethod
    def _token(cls, v: SecretStr | None) -> SecretStr | None:
        # The value itself is never put in the message: it is a secret even when malformed.
        if v is not None and not _TG_TOKEN.match(v.get_secret_value().strip()):
            raise ValueError("不是 Telegram 机器人 Token 的格式（数字:35位字母数字，从 @BotFather 复制）")
        return SecretStr(v.get_secret_value().strip()) if v is not None else None

    @field_validator("api_base", "webhook_url")
    @classmethod
    def _urls(cls, v: str | None) -> str | None:
        return _http_url(v)

    @field_validator("webhook_path")
    @classmethod
    def _path(cls, v: str) -> str:
        if not v.startswith("/") or any(c.isspace() for c in v):
            raise ValueError("必须以 / 开头，不能有空格")
        return v


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

    @field_validator("api_base")
    @classmethod
    def _api(cls, v: str) -> str:
        out = _http_url(v)
        assert out is not None
        return out

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

    @field_validator("morning_cron")
    @classmethod
    def _cron(cls, v: str) -> str:
        return _cron(v)

    @field_validator("quiet_start", "quiet_end")
    @classmethod
    def _hhmm(cls, v: str) -> str:
        if not _HHMM.match(v):
            raise ValueError(f"时间要写成 HH:MM（例如 21:00），不能是 {v!r}")
        return v

    @field_validator("cadence_days")
    @classmethod
    def _cadence(cls, v: dict[str, int]) -> dict[str, int]:
        bad = [k for k, n in v.items() if n < 1]
        if bad:
            raise ValueError(f"走访间隔天数必须至少为 1（{', '.join(bad)}）")
        return v

    @field_validator("training_hours_before")
    @classmethod
    def _hours(cls, v: list[int]) -> list[int]:
        if any(h < 1 for h in v):
            raise ValueError("提前提醒的小时数必须至少为 1")
        return v


class DigestCfg(_Table):
    weekly_cron: str = "30 8 * * mon"
    bulletin_cron: str = "0 9 */2 * *"
    misfire_grace_hours: int = Field(12, ge=0)

    @field_validator("weekly_cron", "bulletin_cron")
    @classmethod
    def _cron(cls, v: str) -> str:
        return _cron(v)


class RedisCfg(_Table):
    url: str | None = None

    @field_validator("url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        if v is None:
            return v
        parts = urlsplit(v)
        if parts.scheme not in ("redis", "rediss", "unix") or (parts.scheme != "unix" and not parts.hostname):
            raise ValueError(f"必须是 redis://主机:端口/库号 形式的地址，不能是 {v!r}")
        return v


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
        raise ValueError(f"要写成 主机:端口（例如 127.0.0.1:8081），不能是 {v!r}")
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
        except FileNotFoundError:
            raise ConfigError("config", f"找不到配置文件 {cfg_path}") from None
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError("config", f"读不了配置文件 {cfg_path}（{type(e).__name__}）") from None
        except tomllib.TOMLDecodeError as e:
            raise ConfigError("config", f"{cfg_path} 不是合法的 TOML（{e}）") from None
    for table, values in env_overrides(env).items():
        section = data.setdefault(table, {})
        if not isinstance(section, dict):
            raise ConfigError(table, "必须是一个表（[table]）")
        section.update(values)
    try:
        return Settings.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        key = ".".join(str(p) for p in err["loc"]) or "config"
        raise ConfigError(key, _reason(err)) from None


def _reason(err: Any) -> str:
    """pydantic's error, as one line in the operators' language."""
    kind, ctx = err["type"], err.get("ctx") or {}
    if kind == "value_error":
        return str(err["msg"]).removeprefix("Value error, ").splitlines()[0]
    if kind == "extra_forbidden":
        return "未知的配置项"
    if kind == "literal_error":
        return f"只能是 {ctx.get('expected', '')}"
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return "必须是整数"
    if kind in ("bool_parsing", "bool_type"):
        return "必须是 true 或 false"
    if kind in ("greater_than_equal", "greater_than"):
        return f"不能小于 {ctx.get('ge', ctx.get('gt'))}"
    if kind in ("less_than_equal", "less_than"):
        return f"不能大于 {ctx.get('le', ctx.get('lt'))}"
    if kind in ("string_type", "dict_type", "list_type", "model_type"):
        return {"string_type": "必须是文字", "dict_type": "必须是一个表", "list_type": "必须是列表",
                "model_type": "必须是一个表"}[kind]
    return str(err["msg"]).splitlines()[0]
