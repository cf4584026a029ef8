"""The `bangfu` command line: one click group; heavy imports happen inside each command."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Coroutine
from typing import Any, TypeVar

import click

from bot.config import DEFAULT_TIMEZONE, ConfigError, Settings, load_settings

T = TypeVar("T")
ROLE_NAMES = {"cadre": "帮扶干部", "secretary": "村支书", "supervisor": "督查人员", "organiser": "培训组织者",
              "admin": "管理员"}


class CliState:
    def __init__(self, config_path: str | None, demo: bool = False) -> None:
        self.config_path = config_path
        self.demo = demo
        self._settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            try:
                settings = load_settings(self.config_path)
            except ConfigError as e:
                click.echo(f"配置错误 {e}", err=True)
                sys.exit(2)
            if self.demo:
                from bot.demo import demo_settings

                settings = demo_settings(settings)
            self._settings = settings
        return self._settings


pass_state = click.make_pass_decorator(CliState)


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def setup_logging(settings: Settings, verbose: bool = False) -> None:
    from bot.logging import configure

    configure(settings, verbose=verbose)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="bangfu", prog_name="bangfu", message="%(prog)s %(version)s")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None,
              help="Config file (default: $BANGFU_CONFIG, else ./config.toml if present).")
@click.option("--demo", "use_demo", is_flag=True,
              help="Work on the demo's own database (var/demo/demo.db) instead of the configured one.")
@click.pass_context
def main(ctx: click.Context, config_path: str | None, use_demo: bool) -> None:
    """bangfu (帮扶): a chat assistant for village support cadres."""
    ctx.obj = CliState(config_path, use_demo)


@main.command()
@pass_state
def init(state: CliState) -> None:
    """Create the database, or upgrade it to the newest schema."""
    from storage.engine import current_revision, upgrade

    url = state.settings.database.url
    try:
        upgrade(url)
        rev = current_revision(url)
    except Exception as e:  # noqa: BLE001 - shown to the operator as one line
        click.echo(f"数据库错误：{type(e).__name__}: {str(e).splitlines()[0]}", err=True)
        sys.exit(1)
    click.echo(f"数据库已就绪（结构版本 {rev}）")


@main.command("run")
@click.option("-v", "--verbose", is_flag=True)
@pass_state
def run_cmd(state: CliState, verbose: bool) -> None:
    """Start every configured channel (Telegram, WeCom), the outbox and the scheduler."""
    settings = state.settings  # a bad value stops here, before anything is imported or opened
    from bot.app import App

    setup_logging(settings, verbose)
    app = App(settings)
    if not app.configured_transports():
        click.echo("没有配置任何渠道：请设置 BANGFU_TELEGRAM__TOKEN（或 [telegram] token），或启用 [wecom]。"
                   "想在终端里试用，请运行：bangfu chat", err=True)
        sys.exit(2)
    run(_serve(app))


async def _serve(app: Any) -> None:
    """Run until SIGINT or SIGTERM, then stop every part in reverse order (outbox rows stay queued)."""
    import signal

    from bot.poll_lease import PollLeaseTaken

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await app.start()
    except PollLeaseTaken as e:
        await app.stop()
        click.echo(f"错误：{e}", err=True)
        sys.exit(2)
    try:
        await stop.wait()
    finally:
        await app.stop()


@main.command()
@click.option("--as", "as_name", default=None, help="Talk as this person (name from the registry).")
@pass_state
def chat(state: CliState, as_name: str | None) -> None:
    """Talk to the bot in this terminal, on the configured database."""
    from bot.console_chat import chat_main

    settings = state.settings
    logging.basicConfig(level=logging.WARNING)
    sys.exit(run(chat_main(settings, as_name)))


@main.command()
@click.option("--role", type=click.Choice(["cadre", "secretary", "supervisor", "organiser", "admin"]),
              required=True)
@click.option("--person", "person_name", default=None, help="Bind the code to this imported person.")
@click.option("--phone", default=None, help="Tell apart two people with the same name.")
@click.option("--unit", "unit_name", default=None, help="Or: a new person in this unit (township, village).")
@click.option("--days", default=7, show_default=True, type=click.IntRange(1, 90))
@pass_state
def invite(state: CliState, role: str, person_name: str | None, phone: str | None, unit_name: str | None,
           days: int) -> None:
    """Make a one-time invite code (expires in 7 days). The code is the last line of output."""
    from bot.admin import make_invite

    if bool(person_name) == bool(unit_name):
        click.echo("错误：--person 姓名 和 --unit 单位 二选一，只给一个", err=True)
        sys.exit(2)
    try:
        code, who = run(make_invite(state.settings, role=role, person_name=person_name, phone=phone,
                                    unit_name=unit_name, days=days))
    except LookupError as e:
        click.echo(f"错误：{e}", err=True)
        sys.exit(2)
    click.echo(f"已为 {who} 生成邀请码（{ROLE_NAMES.get(role, role)}），{days} 天内有效；"
               "请对方把它发给机器人：/start 邀请码")
    click.echo(code)


@main.command("parse")
@click.option("--text", "text", default=None, help="Parse one message and pretty-print the result.")
@click.option("--ref-date", default=None, help="The message's send date, YYYY-MM-DD (default: today).")
@click.option("--tz", default=DEFAULT_TIMEZONE, show_default=True)
def parse_cmd(text: str | None, ref_date: str | None, tz: str) -> None:
    """Parse cadre messages: JSONL {"id","message","ref_date"} on stdin → one JSON line each on stdout."""
    import json
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from handlers.text import parse_jsonl, parse_record

    if text is not None:
        ref = ref_date or datetime.now(ZoneInfo(tz)).date().isoformat()
        rec = parse_record({"id": None, "message": text, "ref_date": ref, "tz": tz})
        rec.pop("id", None)
        click.echo(json.dumps(rec, ensure_ascii=False, indent=2))
        return
    # Undecodable bytes must not stop a batch: replace them and carry on.
    lines = (raw.decode("utf-8", "replace") for raw in sys.stdin.buffer)
    out = sys.stdout
    for line in parse_jsonl(lines):
        out.write(line + "\n")
    out.flush()


@main.command()
@click.option("--scale", type=click.Choice(["small", "district", "tiny"]), default="small", show_default=True,
              help="small: ~20 villages, 1,500 households, 300 cadres; district: 182 villages, 12,993 households; "
                   "tiny: 4 villages, 150 households (a quick look, and the README check).")
@click.option("--seed", default=2026, show_default=True)
@pass_state
def demo(state: CliState, scale: str, seed: int) -> None:
    """Build a district in its own database (var/demo/demo.db) and drive a simulated week through the real
    pipeline. The configured database is never touched."""
    from bot.demo import DemoRefused, run_demo

    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("bangfu").setLevel(logging.ERROR)
    try:
        run(run_demo(state.settings, scale=scale, seed=seed))
    except DemoRefused as e:
        click.echo(f"错误：{e}", err=True)
        sys.exit(2)


def _register() -> None:
    from bot.cli_data import COMMANDS as data_commands
    from bot.cli_digest import COMMANDS as digest_commands
    from bot.cli_ops import COMMANDS as ops_commands
    from bot.cli_training import COMMANDS as training_commands

    for cmd in [*data_commands, *ops_commands, *training_commands, *digest_commands]:
        main.add_command(cmd)


_register()
