"""Morning visit-due reminders on a fixed clock: what is listed, once per day, quiet hours, snooze, the
phone-contact button, holidays and 调休 workdays, on SQLite and PostgreSQL."""

from __future__ import annotations

import itertools
from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import select

from handlers.context import Prefs
from handlers.reminders import is_workday, morning_reminders, quiet_until
from storage.engine import make_engine, make_sessionmaker
from storage.models import FollowUp, Need, OutboxMessage, Person, SendLedger, Visit
from tests.conftest import TZ
from tests.harness import Bot, make_bot

_keys = itertools.count(1)
PREFS = Prefs(tz=TZ)


def at(y: int, m: int, d: int, h: int = 8, mi: int = 0) -> datetime:
    return datetime(y, m, d, h, mi, tzinfo=TZ)


async def visit(bot: Bot, cadre: str, hh: str, day: date, *, need: str | None = None,
                follow: tuple[str, date] | None = None, deleted: bool = False) -> None:
    w = bot.world
    async with bot.sm() as s, s.begin():
        v = Visit(source_key=f"t:{next(_keys)}", cadre_id=w.people[cadre].id, household_id=w.households[hh].id,
                  visit_date=day, deleted=deleted)
        s.add(v)
        await s.flush()
        if need:
            s.add(Need(visit_id=v.id, household_id=v.household_id, category="生活物资", item=need, raised_on=day))
        if follow:
            s.add(FollowUp(visit_id=v.id, household_id=v.household_id, action=follow[0], due=follow[1]))


async def remind(bot: Bot, now: datetime) -> int:
    bot.clock.set(now)
    async with bot.sm() as s, s.begin():
        return await morning_reminders(s, now=now, prefs=PREFS)


async def rows(bot: Bot, chat_id: str | None = None) -> list[OutboxMessage]:
    async with bot.sm() as s:
        q = select(OutboxMessage).order_by(OutboxMessage.id)
        if chat_id:
            q = q.where(OutboxMessage.chat_id == chat_id)
        return list((await s.execute(q)).scalars())


async def _bot(sm) -> Bot:
    b = await make_bot(sm)
    await b.bind("u1", "李明")
    await b.bind("u2", "赵芳")
    return b


@pytest.fixture
async def bot(sessionmaker):
    """SQLite and PostgreSQL: for the tests whose SQL differs meaningfully between them."""
    return await _bot(sessionmaker)


@pytest.fixture
async def lite_bot(sqlite_url):
    """SQLite only: logic tests, kept off PostgreSQL to keep the suite fast."""
    eng = make_engine(sqlite_url)
    yield await _bot(make_sessionmaker(eng))
    await eng.dispose()


async def test_lists_due_households_once_a_day(bot):
    wed = date(2026, 11, 25)
    await visit(bot, "李明", "王德明@大坝村", wed - timedelta(days=5), follow=("送棉被", wed))  # not due; follow-up
    await visit(bot, "李明", "马德忠", wed - timedelta(days=15), need="化肥")  # 监测户, 7 days: due
    await visit(bot, "李明", "王德明@高坡村", wed - timedelta(days=36))  # 脱贫户, 30 days: due
    await visit(bot, "李明", "张桂英", wed - timedelta(days=2), deleted=True)  # undone: still never visited
    await visit(bot, "赵芳", "韦国祥", wed - timedelta(days=1))  # nothing due for 赵芳

    assert await remind(bot, at(2026, 11, 25)) == 1
    [row] = await rows(bot)
    assert row.chat_id == "chat-u1" and not row.is_group
    text = row.payload["text"]
    assert "3户该走访了" in text and "1条跟进到期" in text
    assert "马德忠（高坡村·监测户）15天未走访（已超期）" in text and "需求1条未解决" in text
    assert "王德明（高坡村·脱贫户）36天未走访" in text
    assert "张桂英（大坝村·脱贫户）从未走访" in text
    assert "⏰ 送棉被（今天到期）" in text
    assert "韦国祥" not in text
    # never-visited first, then longest without a visit
    assert text.index("张桂英") < text.index("王德明（高坡村") < text.index("马德忠")
    flat = [b for line in row.payload["buttons"] for b in line]
    assert ["明天再提醒", "rm:s"] in flat
    assert sum(1 for t, _ in flat if "已电话联系" in t) == 3  # due households only, not the follow-up one
    assert all(len(d.encode()) <= 64 for _, d in flat)

    # A second tick the same day (restart, second process) sends nothing more.
    assert await remind(bot, at(2026, 11, 25, 9)) == 0
    assert len(await rows(bot)) == 1
    async with bot.sm() as s:
        led = (await s.execute(select(SendLedger))).scalar_one()
    assert (led.kind, led.period, led.recipient, led.outbox_id) == (
        "visit_due", "2026-11-25", str(bot.world.people["李明"].id), row.id)


async def test_nothing_due_gets_nothing(lite_bot):
    bot = lite_bot
    wed = date(2026, 11, 25)
    for hh in ("王德明@大坝村", "王德明@高坡村", "马德忠", "张桂英"):
        await visit(bot, "李明", hh, wed - timedelta(days=3))
    await visit(bot, "赵芳", "韦国祥", wed - timedelta(days=3), follow=("回访", wed + timedelta(days=1)))
    assert await remind(bot, at(2026, 11, 25)) == 0
    assert await rows(bot) == []
    assert await bot.count(SendLedger) == 0


async def test_quiet_hours_hold_the_message(lite_bot):
    bot = lite_bot
    # Deployment default 21:00–08:00: a tick at 07:00 waits until 08:00.
    assert await remind(bot, at(2026, 11, 25, 7)) == 2
    for r in await rows(bot):
        assert r.not_before == at(2026, 11, 25, 8)
    # 李明 sets his own hours by chat; the next morning's 08:00 message waits until 09:30.
    bot.clock.set(at(2026, 11, 25, 12))
    out = await bot.send("u1", "设置 免打扰 22:00-09:30")
    assert "22:00–09:30" in out[-1].text
    assert await remind(bot, at(2026, 11, 26, 8)) == 2
    thu = {r.chat_id: r.not_before for r in await rows(bot) if r.created_at >= at(2026, 11, 26, 0)}
    assert thu["chat-u1"] == at(2026, 11, 26, 9, 30)
    assert thu["chat-u2"] == at(2026, 11, 26, 8)  # default hours end at 08:00: not held


def test_quiet_until_wraps_midnight_and_can_be_off():
    assert quiet_until(at(2026, 11, 25, 22, 30), "21:00", "08:00") == at(2026, 11, 26, 8)
    assert quiet_until(at(2026, 11, 25, 7, 59), "21:00", "08:00") == at(2026, 11, 25, 8)
    assert quiet_until(at(2026, 11, 25, 8, 0), "21:00", "08:00") is None
    assert quiet_until(at(2026, 11, 25, 20, 59), "21:00", "08:00") is None
    assert quiet_until(at(2026, 11, 25, 13, 0), "12:00", "14:00") == at(2026, 11, 25, 14)
    assert quiet_until(at(2026, 11, 25, 3, 0), "00:00", "00:00") is None  # 关闭免打扰


async def test_snooze_skips_until_the_day_asked_for(lite_bot):
    bot = lite_bot
    # Friday's reminder; 明天再提醒 asks for Saturday, which is not a working day.
    assert await remind(bot, at(2026, 11, 27)) == 2
    bot.clock.set(at(2026, 11, 27, 8, 5))
    [msg] = [m for m in await bot.flush() if m.chat.chat_id == "chat-u1"]
    out = await bot.press("u1", msg, "明天再提醒")
    assert "11月28日" in out[0].text and "明天虽不是工作日" in out[0].text
    async with bot.sm() as s:
        assert (await s.get(Person, bot.world.people["李明"].id)).snooze_until == date(2026, 11, 28)
    # Saturday: only the one who asked for it.
    assert await remind(bot, at(2026, 11, 28)) == 1
    assert [r.chat_id for r in await rows(bot)][-1] == "chat-u1"
    assert await remind(bot, at(2026, 11, 29)) == 0  # Sunday: nobody

    # Pressed before a working day's tick (on Monday's message, at 07:00 Tuesday): Tuesday is
    # skipped for him, Wednesday he hears again.
    assert await remind(bot, at(2026, 11, 30)) == 2
    bot.clock.set(at(2026, 12, 1, 7))
    async with bot.sm() as s, s.begin():
        (await s.get(Person, bot.world.people["李明"].id)).snooze_until = date(2026, 12, 2)
    assert await remind(bot, at(2026, 12, 1)) == 1
    assert [r.chat_id for r in await rows(bot)][-1] == "chat-u2"
    assert await remind(bot, at(2026, 12, 2)) == 2


async def test_phone_contact_button_records_one_visit_and_clears_the_household(bot):
    assert await remind(bot, at(2026, 11, 25)) == 2
    bot.clock.set(at(2026, 11, 25, 8, 10))
    [msg] = [m for m in await bot.flush() if m.chat.chat_id == "chat-u1"]
    out = await bot.press("u1", msg, "马德忠")
    assert "电话回访 马德忠（高坡村）" in out[0].text
    out = await bot.press("u1", msg, "马德忠")
    assert "已经记过" in out[0].text
    async with bot.sm() as s:
        vs = list((await s.execute(select(Visit))).scalars())
    assert [(v.visit_type, v.visit_date, v.household_id) for v in vs] == [
        ("电话回访", date(2026, 11, 25), bot.world.households["马德忠"].id)]
    assert await remind(bot, at(2026, 11, 26)) == 2
    thu = [r for r in await rows(bot, "chat-u1")][-1]
    assert "马德忠" not in thu.payload["text"] and "张桂英" in thu.payload["text"]


async def test_phone_button_for_someone_elses_household_is_refused(lite_bot):
    bot = lite_bot
    other = bot.world.households["韦国祥"].id  # 赵芳's, in another township
    out = await bot.send("u1", kind="callback", callback=f"rm:c:{other}")
    assert "失效" in out[0].text
    assert await bot.count(Visit) == 0


async def test_holiday_skipped_and_makeup_workday_counted(lite_bot):
    bot = lite_bot
    assert not is_workday(date(2026, 10, 1))  # 国庆节, a Thursday
    assert is_workday(date(2026, 10, 10))  # Saturday, 调休 make-up day
    assert not is_workday(date(2026, 10, 11))
    assert await remind(bot, at(2026, 10, 1)) == 0
    assert await remind(bot, at(2026, 10, 5)) == 0  # a Monday inside the holiday
    assert await remind(bot, at(2026, 10, 10)) == 2
    assert await remind(bot, at(2026, 10, 11)) == 0
    assert await bot.count(SendLedger) == 2


def test_years_without_holiday_data_fall_back_to_weekdays():
    assert is_workday(date(2031, 1, 6)) and not is_workday(date(2031, 1, 5))
