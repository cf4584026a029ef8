"""Training sign-ups by chat (catalogue, capacity, waitlist, substitutions, attendance)."""

from __future__ import annotations

from typing import Any

from handlers.context import Context

CALLBACK_PREFIXES: frozenset[str] = frozenset()


async def command(ctx: Context, args: str) -> None:
    ctx.reply("目前没有开放报名的培训班。")


async def on_text(ctx: Context, parsed: dict[str, Any]) -> None:
    course = parsed.get("course_norm") or parsed.get("course") or "培训"
    ctx.inbox_state = "not_understood"
    ctx.reply(f"收到“{course}”的报名信息，已保存。目前没有找到对应的开放培训班，组织者发布后再报名即可。")


async def on_callback(ctx: Context, parts: list[str]) -> None:
    ctx.reply("这个按钮已经失效了。")


async def pending_reply(ctx: Context, text: str) -> bool:
    return False
