"""Logging set-up, with a filter that scrubs tokens, secrets and ID/phone numbers from every record."""

from __future__ import annotations

import json
import logging
import re
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING

from storage.registry import mask_personal_text

if TYPE_CHECKING:
    from bot.config import Settings

# Telegram bot tokens and secrets in URLs; ID and mobile numbers go through the same masking as chat
# output (storage.registry), so the two can never disagree about what a phone number looks like.
_PATTERNS = [
    (re.compile(r"\b\d{6,12}:[A-Za-z0-9_-]{30,}\b"), "<token>"),
    (re.compile(r"(access_token|corpsecret|key|secret)=([^&\s'\"]+)", re.I), r"\1=<redacted>"),
]


class RedactFilter(logging.Filter):
    def __init__(self, secrets: list[str] | None = None) -> None:
        super().__init__()
        self.secrets = [s for s in (secrets or []) if s and len(s) >= 6]

    def redact(self, text: str) -> str:
        for s in self.secrets:
            text = text.replace(s, "<secret>")
        for pat, rep in _PATTERNS:
            text = pat.sub(rep, text)
        return mask_personal_text(text)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            msg = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string must not kill logging
            msg = str(record.msg)
        red = self.redact(msg)
        if record.exc_info and record.exc_info[1] is not None:
            formatted = logging.Formatter().formatException(record.exc_info)
            record.exc_text = self.redact(formatted)
        if red != msg or record.args:
            record.msg, record.args = red, None
        return True


def secrets_of(settings: Settings) -> list[str]:
    out: list[str] = []
    for v in (settings.telegram.token, settings.telegram.webhook_secret, settings.wecom.secret,
              settings.wecom.token, settings.wecom.aes_key, *settings.wecom.robots.values()):
        if v is not None:
            out.append(v.get_secret_value())
    return out


class ZonedFormatter(logging.Formatter):
    """Every timestamp in the deployment's zone with its offset (2026-11-25T08:00:00.123+08:00), the same
    zone the scheduler's times are written in."""

    def __init__(self, tz: tzinfo, fmt: str | None = None) -> None:
        super().__init__(fmt)
        self.tz = tz

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        return datetime.fromtimestamp(record.created, self.tz).isoformat(timespec="milliseconds")


class JsonFormatter(ZonedFormatter):
    """One JSON object a line: time, level, logger, message (already redacted), and the traceback if any."""

    def format(self, record: logging.LogRecord) -> str:
        out = {"time": self.formatTime(record), "level": record.levelname, "logger": record.name,
               "message": record.getMessage()}
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            out["exc"] = record.exc_text
        return json.dumps(out, ensure_ascii=False)


def configure(settings: Settings, *, verbose: bool = False) -> None:
    root = logging.getLogger()
    level = logging.DEBUG if verbose else getattr(logging, settings.app.log_level.upper(), logging.INFO)
    root.setLevel(level)
    handler: logging.Handler = (
        logging.FileHandler(settings.app.log_file, encoding="utf-8") if settings.app.log_file
        else logging.StreamHandler()
    )
    handler.setFormatter(JsonFormatter(settings.tz) if settings.app.log_format == "json"
                         else ZonedFormatter(settings.tz, "%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactFilter(secrets_of(settings)))
    for h in list(root.handlers):
        root.removeHandler(h)
    root.addHandler(handler)
    # httpx logs every request URL at INFO, and Telegram URLs contain the bot token.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("aiogram.event").setLevel(logging.WARNING)
    # An idle process is silent at INFO: APScheduler logs every run of every interval job ("Running job",
    # "executed successfully"), which was two lines every 20 s; bangfu logs its own job runs that did work.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
