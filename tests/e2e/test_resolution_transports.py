"""The same household-resolution cases over aiogram, python-telegram-bot (fake Bot API) and WeCom (fake WeCom
API), each the real App on the 160-household township: every channel must give the same answer (the same
household recorded, the same options offered, the same refusal), and one tap must record a confirmed one."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import select

import bot.transports.telegram_aiogram  # noqa: F401  (a heavy first import: paid at collection, not in the test)
from bot.app import App, telegram_transport
from handlers.text import parse
from storage.models import Visit
from tests.conftest import FixedClock
from tests.e2e.conftest import E2E, e2e_settings
from tests.e2e_wecom.test_wecom_e2e import WeComBot, options, settings_for
from tests.fakes.botapi import JSON, FakeBotAPI
from tests.fakes.wecom_api import FakeWeComAPI
from tests.resolution_world import CASES, Case, Township, seed_township

pytestmark = pytest.mark.slow

# An own household attached at once, a colleague's confirmed by one tap, namesakes listed, another township's.
PICKED = [
    Case("今天去王德明家，缺米", "top1", ("王德明@大坝",)),
    Case("今天去韦国祥家，缺棉被", "top1", ("韦国祥",)),
    Case("今天去张桂英家，缺化肥", "ask", ("张桂英@新寨", "张桂英@鲍屯")),
    Case("今天去赵永贵家，缺米", "outside"),
]
assert all(c in CASES for c in PICKED)
USER = 7001
FINAL = ("已记录走访", "这一户吗", "是哪一户", "不在您的乡镇范围内")


@dataclass(frozen=True)
class Answer:
    """A channel's answer in channel-neutral terms."""

    recorded: str | None  # "户主：…" line of the card, when a visit was recorded at once
    options: tuple[str, ...]  # household options offered, in order ("都不是" left out)
    refused: bool  # the plain out-of-area refusal


def _answer(texts: list[str], opts: list[str]) -> Answer:
    text = "\n".join(texts)
    line = next((ln for ln in text.splitlines() if ln.startswith("户主：")), None)
    # a household option reads "王德明（大坝村一组，5口）"; card buttons (撤销, 修改) and 都不是 are not options
    return Answer(line if "已记录走访" in text else None, tuple(o for o in opts if "（" in o),
                  "不在您的乡镇范围内" in text)


async def _visit_households(app: App) -> list[int]:
    assert app.sessionmaker is not None
    async with app.sessionmaker() as s:
        return list((await s.execute(select(Visit.household_id).order_by(Visit.id))).scalars())


@asynccontextmanager
async def _telegram(db_url: str, framework: str) -> AsyncIterator[tuple[E2E, Township]]:
    async with FakeBotAPI(token="123456789:AAFakeTokenForTestsOnly_abcdefghijk") as api:
        settings = e2e_settings(db_url, api.base_url, framework)
        clock = FixedClock()
        transport = telegram_transport(settings)
        assert transport is not None
        app = App(settings, clock=clock, transports=[transport], with_scheduler=False)
        await app.build()
        assert app.sessionmaker is not None
        tw = await seed_township(app.sessionmaker)
        await app.start()
        try:
            yield E2E(api, app, tw.world, clock, framework), tw
        finally:
            await app.stop()


async def _run_telegram(db_url: str, framework: str) -> list[tuple[Answer, list[int]]]:
    out = []
    async with _telegram(db_url, framework) as (bot, _tw):
        await bot.bind(USER, "李明")
        for case in PICKED:
            n = len(bot.bot_messages(USER))
            bot.say(USER, case.text)
            # every case ends in exactly one message: a card, a question or the refusal
            await bot.wait_message(USER, lambda m: any(k in (m.get("text") or "") for k in FINAL), after=n)
            msgs = bot.bot_messages(USER)[n:]
            labels = [b["text"] for m in msgs for row in m.get("reply_markup", {}).get("inline_keyboard", [])
                      for b in row if b["callback_data"].startswith("pk:")]
            answer = _answer([m.get("text") or "" for m in msgs], labels)
            ask: JSON | None = next((m for m in msgs if m.get("reply_markup")), None)
            if ask is not None and answer.options and answer.options[0].startswith("是 "):
                n = len(bot.bot_messages(USER))
                bot.press(USER, ask, answer.options[0])
                await bot.wait_message(USER, lambda m: "已记录走访" in (m.get("text") or ""), after=n)
            out.append((answer, await _visit_households(bot.app)))
    return out


async def _run_wecom(db_url: str) -> list[tuple[Answer, list[int]]]:
    out = []
    async with FakeWeComAPI() as fake:
        app = App(settings_for(db_url, fake), clock=FixedClock(), with_scheduler=False)
        await app.build()
        assert app.sessionmaker is not None
        tw = await seed_township(app.sessionmaker)
        await app.start()
        bot = WeComBot(app, fake, db_url, tw.world)
        try:
            await bot.bind("LiMing", "李明")
            for case in PICKED:
                texts = await bot.say("LiMing", case.text)
                opts = list(options(texts[-1]).values()) if texts and "回复数字选择：" in texts[-1] else []
                answer = _answer(texts, opts)
                if answer.options and answer.options[0].startswith("是 "):
                    after = await bot.say("LiMing", "1")
                    assert any("已记录走访" in t for t in after), after
                out.append((answer, await _visit_households(bot.app)))
        finally:
            await bot.app.stop()
    return out


async def test_same_answers_on_every_channel(tmp_path: Path, sqlite_template: Path) -> None:
    parse("今天去大坝村张桂英家，缺大米一袋", FixedClock().now(), None)  # jieba's first load blocks the loop
    runs = {}
    for name in ("aiogram", "ptb", "wecom"):
        path = tmp_path / f"{name}.db"
        shutil.copy(sqlite_template, path)
        url = f"sqlite+aiosqlite:///{path}"
        runs[name] = await (_run_wecom(url) if name == "wecom" else _run_telegram(url, name))
    # The three databases are seeded alike, so household ids agree across runs.
    assert runs["aiogram"] == runs["ptb"] == runs["wecom"], runs
    answers = [a for a, _ in runs["aiogram"]]
    visits = [v for _, v in runs["aiogram"]]
    own, colleague, namesakes, outside = answers
    assert own.recorded is not None and "王德明（大坝村" in own.recorded and not own.options
    assert colleague.recorded is None and colleague.options[0].startswith("是 韦国祥（鲍屯村一组，3口")
    assert sorted(namesakes.options) == ["张桂英（新寨村一组，2口）", "张桂英（鲍屯村二组，4口）"]
    assert outside.refused and not outside.options and outside.recorded is None
    # visits after each case: the own one at once, the colleague's after the tap, nothing more
    assert [len(v) for v in visits] == [1, 2, 2, 2]
