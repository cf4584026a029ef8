"""A terminal chat: type as a cadre would, read the bot's replies. Choices show as numbers."""

from __future__ import annotations

import asyncio
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from bot.transports.base import Capabilities, OnUpdate, OutMessage, Sent
from bot.transports.choices import render_choices
from handlers.types import ChatRef, Incoming

CAPS = Capabilities(name="console", max_text=100_000, inline_buttons=False, reply_keyboard=False,
                    edit_messages=False, files=True, global_rate=1000.0, per_chat_interval=0.001,
                    group_per_minute=10_000)


class ConsoleTransport:
    name = "console"
    capabilities = CAPS

    def __init__(self, *, user_id: str = "local", user_name: str = "本地用户", stdin: TextIO | None = None,
                 stdout: TextIO | None = None, files_dir: Path = Path("var/console"), prompt: str = "你> ") -> None:
        self.user_id, self.user_name = user_id, user_name
        self.stdin, self.stdout = stdin or sys.stdin, stdout or sys.stdout
        self.files_dir = files_dir
        self.prompt = prompt
        self.chat = ChatRef("console", user_id)
        self._task: asyncio.Task[None] | None = None
        self._n = 0
        self.closed = asyncio.Event()

    async def start(self, on_update: OnUpdate) -> None:
        self._task = asyncio.create_task(self._read(on_update), name="console-read")

    async def _read(self, on_update: OnUpdate) -> None:
        loop = asyncio.get_running_loop()
        while True:
            self._write(self.prompt, end="")
            line = await loop.run_in_executor(None, self.stdin.readline)
            if not line:
                break
            text = line.rstrip("\n")
            if text.strip() in ("/quit", "/exit", "退出"):
                break
            self._n += 1
            inc = Incoming(chat=self.chat, sender_id=self.user_id, sender_name=self.user_name,
                           message_id=f"{time.time_ns()}-{self._n}", text=text, sent_at=datetime.now(UTC))
            try:
                await on_update(inc)
            except Exception as e:  # noqa: BLE001 - keep the terminal session alive and say why
                self._write(f"（系统）这条消息没有处理成功：{type(e).__name__}。请稍后再发。")
            # Give the outbox a moment so the reply prints before the next prompt.
            await asyncio.sleep(0.3)
        self.closed.set()

    def _write(self, s: str, end: str = "\n") -> None:
        self.stdout.write(s + end)
        self.stdout.flush()

    async def send(self, msg: OutMessage) -> Sent:
        text = render_choices(msg.text, msg.buttons)
        doc = msg.document or msg.photo
        if doc is not None:
            self.files_dir.mkdir(parents=True, exist_ok=True)
            path = self.files_dir / doc.filename
            path.write_bytes(doc.content)
            text = f"{text}\n📎 文件已保存：{path}" if text else f"📎 文件已保存：{path}"
        self._write("\n🤖 " + text.replace("\n", "\n   ") + "\n")
        self._n += 1
        return Sent(message_id=f"out-{self._n}")

    async def stop(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
