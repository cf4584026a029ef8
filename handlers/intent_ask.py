"""Ask, don't guess: a message whose intent is doubtful is kept as an entry and the cadre picks the path
(记走访 / 报名培训 / 都不是); the chosen path then runs on the kept text."""

from __future__ import annotations

from dataclasses import replace

from handlers import trainings, visits
from handlers.callbacks import IntentChoice
from handlers.context import Context
from handlers.format import clip, mask_personal
from handlers.resolver import get_registry
from handlers.text import parse
from handlers.text.confidence import Doubt, training_reading, visit_reading
from handlers.types import Button
from storage.models import Entry
from storage.visits import load_entry

CHOICES = {"v": "记走访", "t": "报名培训", "b": "都要", "n": "都不是"}


async def ask(ctx: Context, parsed: dict[str, object], doubt: Doubt) -> None:
    assert ctx.person is not None
    entry = Entry(source_key=visits.source_key(ctx), person_id=ctx.person.id, channel=ctx.incoming.channel,
                  chat_id=ctx.chat.chat_id, raw_text=ctx.incoming.text, parse=parsed, state="asking",
                  pending={"doubt": doubt.value, "inbox": ctx.inbox_id}, created_at=ctx.now, updated_at=ctx.now,
                  history=[])
    ctx.session.add(entry)
    await ctx.session.flush()
    ctx.inbox_state = "asked"
    # "都要" only where the message reads as both: a visit that also signs up or withdraws someone.
    keys = ("v", "t", "b", "n") if doubt is Doubt.MIXED else ("v", "t", "n")
    buttons = (tuple(Button(CHOICES[k], IntentChoice(entry.id, k).pack()) for k in keys),)
    ctx.reply(f"“{clip(mask_personal(entry.raw_text), 24)}”\n这条是记走访，还是报名培训？（原文已保存）",
              buttons=buttons, card_key=f"ik:{entry.id}")


async def on_choice(ctx: Context, entry_id: int, choice: str) -> None:
    if choice not in CHOICES:
        raise ValueError(choice)
    entry = await load_entry(ctx.session, entry_id)
    if entry is None or ctx.person is None or entry.person_id != ctx.person.id:
        raise ValueError("not this sender's entry")
    if entry.state != "asking":
        ctx.reply("这条已经处理过了。")
        return
    entry.history = [*entry.history, {"at": ctx.now.isoformat(), "change": "chosen", "choice": CHOICES[choice]}]
    entry.updated_at = ctx.now
    if choice in ("v", "b"):
        kept = entry.parse
        # Read the kept text again as a visit, so its dates, needs and visit type are filled too; the
        # reading stays anchored at the time the message was sent, not the time of the tap.
        sent = entry.created_at
        when = sent.astimezone(ctx.now.tzinfo) if sent is not None and sent.tzinfo is not None else ctx.now
        forced = parse(entry.raw_text or "", when, await get_registry(ctx.session), intent="visit_log")
        entry.parse = visit_reading(forced if forced.get("household_head") else kept)
        await visits.resolve_entry(ctx, entry)
        if choice == "b":
            await _signup_path(ctx, entry.raw_text, kept, entry.pending.get("inbox"))
        return
    if choice == "n":
        entry.state = "note"
        ctx.reply("好的，这条不记走访、也不报名，原文已作为备注保存。\n"
                  "要记走访可以直接发，例如“今天去大坝村王德明家，缺棉被两床”。")
        return
    entry.state = "signup"
    await _signup_path(ctx, entry.raw_text, entry.parse, entry.pending.get("inbox"))


async def _signup_path(ctx: Context, text: str, parsed: dict[str, object], inbox_id: int | None) -> None:
    # The sign-up path reads the message itself (and a later "which session?" answer reads it back from the
    # inbox), so it runs as if the kept message had just arrived.
    ctx.incoming = replace(ctx.incoming, kind="message", text=text, callback_data=None)
    ctx.inbox_id = inbox_id or ctx.inbox_id
    if await trainings.pending_reply(ctx, text):
        return
    await trainings.on_text(ctx, training_reading(parsed))
