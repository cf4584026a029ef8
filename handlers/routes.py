"""The ordered route table: strangers, buttons, commands (slash or Chinese word), replies to cards,
edits, attachments, then free text last."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from handlers import accounts, broadcast, faq, households, intent_ask, reminders, trainings, visits
from handlers import callbacks as cbs
from handlers.context import Context
from handlers.format import clip, mask_personal
from handlers.resolver import get_registry
from handlers.text import parse
from handlers.text.confidence import Doubt, intent_doubt

Handler = Callable[[Context, str], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Command:
    """One chat command: `/name` or any of its Chinese `words`. `takes_args`: a word may be followed by
    arguments ("设置 免打扰 22:00-07:00"); a slash command always may. `roles`: who it is for (None: everyone;
    the others are left out of /help, and the handler itself refuses the rest). `keyboard`: its place on the reply
    keyboard, counted from 1 (None: not there)."""

    name: str
    words: tuple[str, ...]
    description: str
    handler: Handler
    takes_args: bool = False
    roles: frozenset[str] | None = None
    keyboard: int | None = None


async def _help(ctx: Context, _: str) -> None:
    ctx.reply(HELP, keyboard=MAIN_KEYBOARD)


async def _my(ctx: Context, _: str) -> None:
    await households.my(ctx)


async def _visits(ctx: Context, _: str) -> None:
    await households.visits(ctx)


async def _needs(ctx: Context, _: str) -> None:
    await households.needs(ctx)


async def _undo(ctx: Context, _: str) -> None:
    await visits.undo(ctx)


async def _whoami(ctx: Context, _: str) -> None:
    await accounts.whoami(ctx)


async def _start(ctx: Context, _: str) -> None:
    ctx.reply("您已经绑定过账号了。直接发走访情况即可记录；发“帮助”看用法。", keyboard=MAIN_KEYBOARD)


async def _unknown(ctx: Context, name: str) -> None:
    ctx.reply(f"没有 /{name} 这个命令。\n\n{HELP}")


# The command table: matching, Telegram's command menu, the reply keyboard and /help all come from it.
COMMANDS: tuple[Command, ...] = (
    Command("help", ("帮助", "help", "?", "？"), "帮助", _help, keyboard=6),
    Command("my", ("我的农户", "农户"), "我的农户", _my, keyboard=1),
    Command("visits", ("走访记录", "记录"), "最近的走访记录", _visits, keyboard=3),
    Command("needs", ("需求", "未解决需求"), "未解决的需求", _needs, keyboard=2),
    Command("train", ("培训", "培训班"), "培训报名", trainings.command, takes_args=True, keyboard=4),
    Command("undo", ("撤销", "撤回"), "撤销上一条走访", _undo, keyboard=5),
    Command("settings", ("设置",), "免打扰等设置", accounts.settings, takes_args=True),
    Command("whoami", ("我是谁",), "我的账号", _whoami),
    Command("broadcast", ("广播",), "群发通知", broadcast.command, takes_args=True,
            roles=frozenset({"admin", "supervisor"})),
)


def _rows(items: list[str], n: int) -> list[tuple[str, ...]]:
    return [tuple(items[i:i + n]) for i in range(0, len(items), n)]


def keyboard_of(commands: Sequence[Command]) -> tuple[tuple[str, ...], ...]:
    """The reply keyboard: each keyboard command's first word, by its place, three to a row."""
    keyed = sorted((c for c in commands if c.keyboard is not None), key=lambda c: c.keyboard or 0)
    return tuple(_rows([c.words[0] for c in keyed], 3))


def help_of(commands: Sequence[Command]) -> str:
    """/help: what to send, then everyone's commands four to a line, help itself last (the reader knows it)."""
    listed = [f"{c.words[0]} /{c.name}" for c in sorted((c for c in commands if c.roles is None),
                                                         key=lambda c: c.name == "help")]
    return (
        "我能做这些：\n"
        "① 记走访：直接发，例如“今天去大坝村王德明家，5口人，缺棉被两床，下周一送去”\n"
        "② 改记录：回复走访卡片，例如“改成昨天”“棉被是3床”“删掉第2条需求”\n"
        "③ 培训报名：例如“帮红岩村苏文斌报个名 蜜蜂养殖”\n"
        "常用命令：\n"
        + "\n".join(" · ".join(line) for line in _rows(listed, 4))
    )


def menu(commands: Sequence[Command] = COMMANDS) -> list[tuple[str, str]]:
    """(name, description) for Telegram's setMyCommands, in table order."""
    return [(c.name, c.description) for c in commands]


MAIN_KEYBOARD = keyboard_of(COMMANDS)
HELP = help_of(COMMANDS)

# By name, for the router (tests swap a handler here); /start and unknown slash commands are not in the menu.
COMMAND_HANDLERS: dict[str, Handler] = {
    **{c.name: c.handler for c in COMMANDS}, "start": _start, "unknown": _unknown,
}
_SLASH = re.compile(r"^/([A-Za-z_]+)(?:@\w+)?(?:\s+(.*))?$", re.S)


def match_command(text: str, commands: Sequence[Command] = COMMANDS) -> tuple[str, str] | None:
    """(command name, its arguments) for a slash command or a command word; None for anything else."""
    t = text.strip()
    m = _SLASH.match(t)
    if m:
        name = m.group(1).lower()
        if name == "start" or any(c.name == name for c in commands):
            return name, (m.group(2) or "").strip()
        return "unknown", name
    for c in commands:
        for w in c.words:
            if t == w or (c.takes_args and t.startswith(w + " ")):
                return c.name, t[len(w):].strip()
    return None


async def on_callback(ctx: Context) -> None:
    """A button press: its payload is unpacked by kind; a stale or forged one gets a plain "expired"."""
    try:
        cb = cbs.unpack(ctx.incoming.callback_data or "")
        match cb:
            case cbs.PickHousehold(entry_id, item, household_id):
                await visits.on_pick(ctx, entry_id, item, household_id)
            case cbs.AddHousehold(entry_id, item):
                await visits.on_add_household(ctx, entry_id, item)
            case cbs.PickDate(entry_id, day):
                await visits.on_pick_date(ctx, entry_id, day)
            case cbs.CardAction(entry_id, "undo"):
                await visits.undo(ctx, entry_id)
            case cbs.CardAction(entry_id, "edit"):
                await visits.on_card_edit_button(ctx, entry_id)
            case cbs.NeedMet(need_id):
                await visits.on_need_met(ctx, need_id)
            case cbs.IntentChoice(entry_id, choice):
                await intent_ask.on_choice(ctx, entry_id, choice)
            case cbs.RegistryChangeAction(change_id, action):
                await visits.on_registry_change(ctx, change_id, action)
            case cbs.RunCommand(name) if name in COMMAND_HANDLERS:
                await COMMAND_HANDLERS[name](ctx, "")
            case cbs.ReminderAction():
                await reminders.on_callback(ctx, cb)
            case cbs.BroadcastStep():
                await broadcast.on_callback(ctx, cb)
            case _ if isinstance(cb, trainings.TRAINING_CALLBACKS):
                await trainings.on_callback(ctx, cb)
            case _:
                raise ValueError(cb)
    except (ValueError, IndexError):
        ctx.inbox_state = "ignored"
        ctx.reply("这个按钮已经失效了，请重新操作。")


async def route(ctx: Context) -> None:
    inc = ctx.incoming
    if ctx.person is None:
        await accounts.handle_stranger(ctx, keyboard=MAIN_KEYBOARD)
        return
    if inc.kind == "callback":
        await on_callback(ctx)
        return
    if inc.kind == "edit":
        await visits.on_edited(ctx)
        return
    if inc.kind == "event":
        if inc.event == "click" and inc.callback_data in COMMAND_HANDLERS:
            await COMMAND_HANDLERS[inc.callback_data](ctx, "")
        else:
            ctx.inbox_state = "ignored"
        return
    if inc.attachments:
        await visits.attach(ctx)
        return
    text = inc.text.strip()
    if not text:
        ctx.inbox_state = "ignored"
        return
    cmd = match_command(text)
    if cmd is not None:
        await COMMAND_HANDLERS[cmd[0]](ctx, cmd[1])
        return
    if ctx.card_key and ctx.card_key.startswith("entry:"):
        if await visits.correct(ctx, int(ctx.card_key.split(":")[1]), text):
            return
    elif await visits.correct_latest(ctx, text):
        return
    await free_text(ctx, text)


async def free_text(ctx: Context, text: str) -> None:
    """A clear visit goes straight to the visit path, before anything of the sign-up flow can claim it; a
    doubtful reading is asked about (handlers.intent_ask); everything else may be a sign-up reply first."""
    registry = await get_registry(ctx.session)
    parsed = parse(text, ctx.now, registry)
    intent = parsed.get("intent")
    doubt = intent_doubt(parsed, text, registry.is_known_name)
    if intent == "visit_log" and doubt is None:
        await visits.log_visit(ctx, parsed)
        return
    # A weak sign-up reading may still answer a sign-up in progress (names for held seats, a swap): that is
    # no visit, so the sign-up flow may look first. Every other doubt is asked before anything acts.
    if doubt is Doubt.WEAK_SIGNUP and await trainings.pending_reply(ctx, text):
        return
    if doubt is not None and not trainings.claims_outright(text, ctx.now):
        await intent_ask.ask(ctx, parsed, doubt)
        return
    if await trainings.pending_reply(ctx, text):
        return
    if intent in ("training_signup", "training_cancel"):
        await trainings.on_text(ctx, parsed)
    elif intent == "query":
        await faq.on_query(ctx, text)
    else:
        await not_understood(ctx, parsed)


async def not_understood(ctx: Context, parsed: dict[str, object]) -> None:
    """Kept in the inbox; the user is told plainly what was understood and what to send instead."""
    ctx.inbox_state = "not_understood"
    bits = []
    if parsed.get("household_head"):
        bits.append(f"户主：{parsed['household_head']}")
    if parsed.get("village"):
        bits.append(f"村：{parsed['village']}")
    if parsed.get("course"):
        bits.append(f"培训：{parsed['course']}")
    seen = ("我从这句话里看到了 " + "，".join(bits) + "，但") if bits else "“" + clip(mask_personal(ctx.incoming.text), 20) + "”"
    kind = "问题" if parsed.get("intent") == "query" else "内容"
    ctx.reply(f"{seen}不确定要记成什么。这条{kind}已保存。\n\n"
              "记走访请这样发：“今天去大坝村王德明家，5口人，缺棉被两床”\n"
              "查情况可以发：“我的农户”“需求”“走访记录”。发“帮助”看全部用法。")
