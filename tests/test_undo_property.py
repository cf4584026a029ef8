"""Property: whatever a cadre does to a visit in chat (corrections, a confirmed size, a need marked met, a
photo), undoing it leaves every view and export exactly as before: /my, /needs, /visits, the visits,
households and needs exports, the digest figures and detail, the reminder list and the registry.
On SQLite and PostgreSQL; bounded to 8 examples per database."""

from __future__ import annotations

from dataclasses import asdict
from datetime import date, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hs
from sqlalchemy import select

from handlers.spreadsheets import build_sheets
from handlers.types import Attachment
from storage.models import Entry, Household, Need, Visit
from storage.reports import digest_detail, digest_stats, due_for_cadres
from tests.conftest import FIXED_NOW, TZ
from tests.harness import make_bot

# 龙小花 is not in the registry: the first visit to her adds the household (the 添加 button).
HOUSEHOLDS = {"张桂英": "大坝村", "马德忠": "高坡村", "龙小花": "大坝村"}
ITEMS = [("棉被", "床"), ("大米", "袋"), ("化肥", "袋")]
CADENCE = {"default": 30}
WEEK = date(2026, 11, 23)


@hs.composite
def visit_text(draw: Any) -> str:
    name = draw(hs.sampled_from(sorted(HOUSEHOLDS)))
    item, unit = draw(hs.sampled_from(ITEMS))
    qty = draw(hs.integers(1, 5))
    size = draw(hs.one_of(hs.none(), hs.integers(1, 8)))
    missed = draw(hs.booleans())
    parts = [f"{draw(hs.sampled_from(['今天', '昨天']))}去{HOUSEHOLDS[name]}{name}家"]
    if missed:
        parts.append("家里没人，邻居说")
    if size:
        parts.append(f"一家{size}口人")
    parts.append(f"缺{item}{qty}{unit}，下周一送过去")
    return "，".join(parts)


ACTION = hs.one_of(
    hs.tuples(hs.just("say"), hs.sampled_from(["改成昨天", "改成前天", "改成电话回访", "加一条 缺大米一袋",
                                                "删掉第1条需求", "是马德忠不是张桂英", "是张桂英不是马德忠"])),
    hs.tuples(hs.just("say"), hs.builds(lambda it, n: f"{it[0]}是{n}{it[1]}", hs.sampled_from(ITEMS),
                                        hs.integers(1, 9))),
    hs.tuples(hs.just("say"), hs.builds(lambda n: f"改成{n}口人", hs.integers(1, 9))),
    hs.tuples(hs.just("confirm"), hs.just("")),
    hs.tuples(hs.just("met"), hs.just("")),
    hs.tuples(hs.just("photo"), hs.just("")),
)


@pytest.fixture
async def bot(sessionmaker):
    b = await make_bot(sessionmaker)
    await b.bind("u1", "李明")
    return b


async def snapshot(bot: Any) -> dict[str, Any]:
    views: dict[str, Any] = {}
    for cmd in ("我的农户", "需求", "走访记录"):
        views[cmd] = [(m.text, [[b.text for b in row] for row in m.buttons]) for m in await bot.send("u1", cmd)]
    async with bot.sm() as s:
        for kind in ("visits", "households", "needs"):
            views[kind] = (await build_sheets(s, kind, tz=TZ))[0].rows  # type: ignore[arg-type]
        views["digest"] = asdict(await digest_stats(
            s, unit=bot.world.district, week_start=WEEK, cadence_days=CADENCE,
            week_start_utc=FIXED_NOW - timedelta(days=3), week_end_utc=FIXED_NOW + timedelta(days=5)))
        views["detail"] = asdict(await digest_detail(s, unit=bot.world.district, as_of=WEEK + timedelta(days=6),
                                                     cadence_days=CADENCE))
        views["due"] = [asdict(c) for c in await due_for_cadres(s, today=FIXED_NOW.date(), cadence_days=CADENCE)]
        views["registry"] = [tuple(r) for r in (await s.execute(
            select(Household.id, Household.head_name, Household.size, Household.phone, Household.status)
            .order_by(Household.id))).all()]
    return views


class Card:
    """The visit card: its first message (replies quote it) and the buttons of its latest edit."""

    def __init__(self, msg: Any) -> None:
        self.msg, self.buttons = msg, msg.buttons

    async def press(self, bot: Any, label_start: str) -> list[Any] | None:
        data = next((b.data for row in self.buttons for b in row if b.text.startswith(label_start)), None)
        if data is None:
            return None
        return await bot.send("u1", kind="callback", callback=data, reply_to=bot.message_id_of(self.msg))


async def log(bot: Any, text: str) -> Any:
    """Send a visit; an unregistered household is added by its button. Returns the card."""
    msg = (await bot.send("u1", text))[0]
    if "没有找到" in msg.text:
        msg = (await bot.press("u1", msg, "添加"))[0]
    assert "已记录" in msg.text, msg.text
    return msg


async def act(bot: Any, card: Card, action: tuple[str, str]) -> None:
    """Apply one chat action to the visit the card shows."""
    kind, arg = action
    card_id = bot.message_id_of(card.msg)
    out: list[Any] | None
    if kind == "say":
        out = await bot.send("u1", arg, reply_to=card_id)
    elif kind == "confirm":
        out = await card.press(bot, "确认")
    elif kind == "met":
        async with bot.sm() as s:
            entry = (await s.execute(select(Entry.id).order_by(Entry.id.desc()).limit(1))).scalar_one()
            need = (await s.execute(select(Need.id).join(Visit, Visit.id == Need.visit_id)
                                    .where(Need.status == "open", Visit.entry_id == entry).limit(1))).scalar()
        out = None if need is None else await bot.send("u1", kind="callback", callback=f"nd:{need}")
    else:
        out = await bot.send("u1", attachments=(Attachment(kind="photo", file_id="P", size=10),), reply_to=card_id)
    for m in out or []:
        if m.edit_message_id == card_id:
            card.buttons = m.buttons


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(keep=hs.lists(visit_text(), max_size=1), text=visit_text(), actions=hs.lists(ACTION, max_size=4),
       by_button=hs.booleans())
async def test_undo_restores_every_view(bot, keep, text, actions, by_button):
    for t in keep:  # state that stays: earlier visits are part of "before"
        await log(bot, t)
    before = await snapshot(bot)
    card = Card(await log(bot, text))
    for a in actions:
        await act(bot, card, a)
    if by_button:
        out = await card.press(bot, "撤销") or []
    else:
        out = await bot.send("u1", "撤销")
    assert any("已撤销" in m.text for m in out)
    assert await snapshot(bot) == before
