"""Local stand-ins for outside services, for tests (the Telegram Bot API lives in `botapi`)."""

from tests.fakes.botapi import FakeBotAPI, RecordedCall, UploadedFile, render_html

__all__ = ["FakeBotAPI", "RecordedCall", "UploadedFile", "render_html"]
