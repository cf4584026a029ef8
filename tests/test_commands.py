"""The command table: a new chat command is one `Command` entry plus its handler, and matching, the Telegram
menu, the reply keyboard and /help all follow from the table."""

from __future__ import annotations

from handlers.context import Context
from handlers.routes import (
    COMMAND_HANDLERS,
    COMMANDS,
    HELP,
    MAIN_KEYBOARD,
    Command,
    help_of,
    keyboard_of,
    match_command,
    menu,
)


async def _ping(ctx: Context, _: str) -> None:
    ctx.reply("在的。")


PING = Command("ping", ("在吗", "在不在"), "看看机器人在不在", _ping, keyboard=7)
REPORT = Command("report", ("报表",), "下载报表", _ping, takes_args=True, roles=frozenset({"admin"}))


def test_one_entry_adds_a_command_everywhere() -> None:
    table = (*COMMANDS, PING, REPORT)
    assert match_command("在吗", table) == ("ping", "")
    assert match_command("在不在", table) == ("ping", "")
    assert match_command("/ping@bangfu_bot", table) == ("ping", "")
    assert match_command("在吗 你好", table) is None  # takes no arguments after a word: free text
    assert match_command("报表 本月", table) == ("report", "本月")
    assert ("ping", "看看机器人在不在") in menu(table) and ("report", "下载报表") in menu(table)
    assert "在吗" in keyboard_of(table)[-1] and all("报表" not in row for row in keyboard_of(table))
    assert "在吗 /ping" in help_of(table)
    assert "报表" not in help_of(table)  # admins only: not in everyone's /help
    # Without the entry, none of it exists.
    assert match_command("在吗") is None and match_command("/ping") == ("unknown", "ping")
    assert "在吗" not in HELP


def test_the_table_is_consistent() -> None:
    names = [c.name for c in COMMANDS]
    words = [w for c in COMMANDS for w in c.words]
    assert len(set(names)) == len(names) and len(set(words)) == len(words)
    for c in COMMANDS:
        assert COMMAND_HANDLERS[c.name] is c.handler
        assert match_command(f"/{c.name}") == (c.name, "")
        for w in c.words:
            assert match_command(w) == (c.name, "")
        assert (f"{c.words[0]} /{c.name}" in HELP) == (c.roles is None)
    keys = [w for row in MAIN_KEYBOARD for w in row]
    assert keys and all(match_command(k) is not None for k in keys)
    assert menu() == [(c.name, c.description) for c in COMMANDS]
