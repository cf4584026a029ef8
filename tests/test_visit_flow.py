"""The visit chat flow on SQLite and PostgreSQL: asking when the intent is doubtful, attempted visits (未遇),
corrections that carry through to what was derived, complete undo, and registry changes only on purpose."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import select

from handlers.spreadsheets import import_spreadsheet
from storage import trainings as st
from storage.models import (
    AuditLog,
    Entry,
    FollowUp,
    Household,
    InboxMessage,
    Need,
    RegistryChange,
    Signup,
    Visit,
)
from storage.reports import digest_stats, due_for_cadres
from tests.conftest import FIXED_NOW, TZ
from tests.harness import make_bot

MIXED = "今天去大坝村张桂英家，缺棉被两床，她说电工培训不去了"


@pytest.fixture
async def bot(sessionmaker):
    b = await make_bot(sessionmaker)
    await b.bind("u1", "李明")
    return b


async def _signup(bot, name: str = "张桂英") -> int:
    """An electrician course with `name` signed up by 李明; returns the session id."""
    async with bot.sm() as s, s.begin():
        ts = await st.create_session(s, course_name="电工培训", starts_at=FIXED_NOW + timedelta(days=10),
                                     now=FIXED_NOW, place="镇就业站", capacity=10)
    out = await bot.send("u1", f"帮大坝村{name}报个名 电工")
    assert "报名成功" in out[0].text
    return ts.id


async def _signup_statuses(bot, ts_id: int) -> list[str]:
    async with bot.sm() as s:
        return list((await s.execute(select(Signup.status).where(Signup.session_id == ts_id)
                                     .order_by(Signup.id))).scalars())


# ------------------------------------------------------------------------------------------ ask, don't guess


async def test_doubtful_message_is_asked_about_and_kept_raw(bot):
    ts_id = await _signup(bot)
    out = await bot.send("u1", MIXED)
    ask = out[0]
    assert "记走访" in ask.text or "走访" in ask.text
    assert [b.text for b in ask.buttons[0]] == ["记走访", "报名培训", "都要", "都不是"]
    # Nothing was acted on: no visit, and the sign-up the text mentions was not cancelled.
    assert await bot.count(Visit) == 0
    assert await _signup_statuses(bot, ts_id) == ["confirmed"]
    async with bot.sm() as s:
        entry = (await s.execute(select(Entry))).scalar_one()
        assert entry.raw_text == MIXED and entry.state == "asking"
        inbox = (await s.execute(select(InboxMessage).where(InboxMessage.text == MIXED))).scalar_one()
        assert inbox.state == "asked"


async def test_choosing_visit_saves_the_visit_and_leaves_the_signup(bot):
    ts_id = await _signup(bot)
    ask = (await bot.send("u1", MIXED))[0]
    out = await bot.press("u1", ask, "记走访")
    assert "已记录走访" in out[0].text and "张桂英" in out[0].text and "棉被" in out[0].text
    async with bot.sm() as s:
        v = (await s.execute(select(Visit))).scalar_one()
        assert v.household_id == bot.world.households["张桂英"].id and v.raw_text == MIXED
    assert await _signup_statuses(bot, ts_id) == ["confirmed"]
    out = await bot.press("u1", ask, "报名培训")  # the question is answered once
    assert "已经处理过" in out[0].text
    assert await _signup_statuses(bot, ts_id) == ["confirmed"]


async def test_choosing_signup_runs_the_signup_flow_on_the_kept_text(bot):
    ts_id = await _signup(bot)
    ask = (await bot.send("u1", MIXED))[0]
    out = await bot.press("u1", ask, "报名培训")
    assert any("张桂英" in m.text for m in out)
    assert await _signup_statuses(bot, ts_id) == ["cancelled"]
    assert await bot.count(Visit) == 0


async def test_choosing_both_saves_the_visit_and_runs_the_withdrawal(bot):
    ts_id = await _signup(bot)
    ask = (await bot.send("u1", MIXED))[0]
    out = await bot.press("u1", ask, "都要")
    assert "已记录走访" in out[0].text and "张桂英" in out[0].text
    assert await bot.count(Visit) == 1
    assert await _signup_statuses(bot, ts_id) == ["cancelled"]


async def test_a_misread_report_is_asked_about_and_the_visit_reading_recovers_it(bot, monkeypatch):
    """Whatever the parser makes of it, an unclassified message reporting a call is asked about, and 记走访
    re-reads it as a visit: the people it names become the households."""
    import handlers.routes as routes

    real_parse = routes.parse

    def misread(text, now, registry=None):
        r = real_parse(text, now, registry)
        return {**r, "intent": "other", "secondary_intents": [], "household_head": None, "visit_type": None,
                "visit_date": None, "needs": [], "follow_ups": [], "participants": {"names": ["张桂英"], "count": 1}}

    monkeypatch.setattr(routes, "parse", misread)
    text = "给大坝村张桂英打了三次电话都没人接 可能在厂里上夜班 明天白天我再打"
    out = await bot.send("u1", text)
    assert [b.text for b in out[0].buttons[0]] == ["记走访", "报名培训", "都不是"]
    assert await bot.count(Visit) == 0
    out = await bot.press("u1", out[0], "记走访")
    assert "已记录" in out[0].text and "张桂英" in out[0].text
    async with bot.sm() as s:
        v = (await s.execute(select(Visit))).scalar_one()
    assert v.household_id == bot.world.households["张桂英"].id and v.raw_text == text


async def test_choosing_neither_keeps_a_note_and_says_so(bot):
    ask = (await bot.send("u1", MIXED))[0]
    out = await bot.press("u1", ask, "都不是")
    assert "备注" in out[0].text and "不记走访" in out[0].text
    assert await bot.count(Visit) == 0 and await bot.count(Signup) == 0
    async with bot.sm() as s:
        entry = (await s.execute(select(Entry))).scalar_one()
        assert entry.state == "note" and entry.raw_text == MIXED


async def test_a_clear_visit_is_never_claimed_by_the_signup_flow(bot):
    ts_id = await _signup(bot)
    out = await bot.send("u1", "今天去大坝村张桂英家，她家低保取消了，缺棉被两床")
    assert "已记录走访" in out[0].text
    assert await _signup_statuses(bot, ts_id) == ["confirmed"]
    # A clear sign-up is not asked about either.
    out = await bot.send("u1", "帮高坡村马德忠报个名 电工")
    assert "报名成功" in out[0].text


# ------------------------------------------------------------------------------------------ attempted visits


async def _digest(bot):
    ws = date(2026, 11, 23)
    async with bot.sm() as s:
        return await digest_stats(s, unit=bot.world.district, week_start=ws, cadence_days={"default": 30},
                                  week_start_utc=FIXED_NOW - timedelta(days=3),
                                  week_end_utc=FIXED_NOW + timedelta(days=5))


@pytest.mark.parametrize("text", ["今天去大坝村张桂英家，家里没人，改天再去", "今天给张桂英打电话，电话没人接"])
async def test_attempt_is_recorded_as_not_met_and_not_counted(bot, text):
    out = await bot.send("u1", text)
    assert "未遇" in out[0].text and "不算一次走访" in out[0].text
    async with bot.sm() as s:
        v = (await s.execute(select(Visit))).scalar_one()
        assert v.outcome == "not_met" and not v.deleted
    out = await bot.send("u1", "我的农户")
    line = next(x for x in out[0].text.splitlines() if "张桂英" in x)
    assert "未走访" in line
    st_ = await _digest(bot)
    assert st_.visits == 0 and st_.households_visited == 0
    async with bot.sm() as s:
        due = await due_for_cadres(s, today=FIXED_NOW.date(), cadence_days={"default": 30})
    mine = next(c for c in due if c.person_id == bot.world.people["李明"].id)
    assert any(h.head_name == "张桂英" and h.due for h in mine.households)
    # A visit that met her counts and resets the clock.
    out = await bot.send("u1", "今天去大坝村张桂英家，老人身体还好")
    assert "已记录走访" in out[0].text and "未遇" not in out[0].text
    st_ = await _digest(bot)
    assert st_.visits == 1 and st_.households_visited == 1
    async with bot.sm() as s:
        due = await due_for_cadres(s, today=FIXED_NOW.date(), cadence_days={"default": 30})
    mine = next(c for c in due if c.person_id == bot.world.people["李明"].id)
    assert not any(h.head_name == "张桂英" and h.due for h in mine.households)


# ------------------------------------------------------------------------------------------ corrections


async def test_quantity_correction_rewrites_the_follow_up_and_date_moves_the_need(bot):
    out = await bot.send("u1", "今天去大坝村张桂英家，缺棉被两床，下周一送过去")
    card_id = bot.message_id_of(out[0])
    async with bot.sm() as s:
        before = (await s.execute(select(FollowUp.action))).scalar_one()
    assert "两床" in before
    out = await bot.send("u1", "棉被是3床", reply_to=card_id)
    assert "已修改" in out[-1].text
    async with bot.sm() as s:
        action = (await s.execute(select(FollowUp.action))).scalar_one()
    assert action == before.replace("两", "3") and "×3床" in out[0].text and action in out[0].text
    await bot.send("u1", "改成前天", reply_to=card_id)
    async with bot.sm() as s:
        need = (await s.execute(select(Need))).scalar_one()
        v = (await s.execute(select(Visit))).scalar_one()
    assert v.visit_date == need.raised_on == date(2026, 11, 23)


async def test_deleting_a_need_takes_its_follow_up_along(bot):
    out = await bot.send("u1", "今天去大坝村张桂英家，缺棉被两床，下周一送过去")
    await bot.send("u1", "删掉第1条需求", reply_to=bot.message_id_of(out[0]))
    assert await bot.count(Need) == 0 and await bot.count(FollowUp) == 0


# ------------------------------------------------------------------------------------------ registry changes


async def _size(bot, key: str = "张桂英") -> int | None:
    async with bot.sm() as s:
        return (await s.get(Household, bot.world.households[key].id)).size


async def test_size_in_chat_is_a_proposal_until_confirmed_then_audited_and_restorable(bot):
    out = await bot.send("u1", "今天去大坝村张桂英家，一家6口人，缺大米")
    card = out[0]
    assert "人口 2→6？" in card.text
    assert await _size(bot) == 2 and await bot.count(AuditLog) == 0
    out = await bot.press("u1", card, "确认人口")
    assert await _size(bot) == 6
    assert any("已更新花名册" in m.text for m in out)
    edited = next(m for m in out if m.edit_message_id)
    assert "已确认" in edited.text
    async with bot.sm() as s:
        log = (await s.execute(select(AuditLog))).scalar_one()
        entry = (await s.execute(select(Entry))).scalar_one()
    assert log.action == "registry.chat_change" and log.actor == f"person:{bot.world.people['李明'].id}"
    assert log.detail["old"] == "2" and log.detail["new"] == "6" and log.detail["entry"] == entry.id
    out = await bot.press("u1", edited, "恢复人口")
    assert await _size(bot) == 2
    async with bot.sm() as s:
        actions = list((await s.execute(select(AuditLog.action).order_by(AuditLog.id))).scalars())
    assert actions == ["registry.chat_change", "registry.chat_change_restored"]


async def test_imported_value_wins_over_an_unconfirmed_chat_value(bot):
    card = (await bot.send("u1", "今天去大坝村张桂英家，一家6口人，缺大米"))[0]
    async with bot.sm() as s:
        await import_spreadsheet(s, "乡镇,村,户主姓名,家庭人口\r\n双堡镇,大坝村,张桂英,4\r\n".encode(), "r.csv", district="西秀区")
        await s.commit()
    assert await _size(bot) == 4
    out = await bot.press("u1", card, "确认人口")
    assert any("以花名册为准" in m.text for m in out)
    assert await _size(bot) == 4
    async with bot.sm() as s:
        rc = (await s.execute(select(RegistryChange))).scalar_one()
    assert rc.status == "stale"


async def test_size_correction_is_a_proposal_too(bot):
    out = await bot.send("u1", "今天去大坝村张桂英家，缺大米")
    out = await bot.send("u1", "改成5口人", reply_to=bot.message_id_of(out[0]))
    assert await _size(bot) == 2
    edited = next(m for m in out if m.edit_message_id)
    assert "人口 2→5？" in edited.text


async def test_undo_restores_a_confirmed_size_and_drops_open_needs_everywhere(bot):
    card = (await bot.send("u1", "今天去大坝村张桂英家，一家6口人，缺棉被两床"))[0]
    await bot.press("u1", card, "确认人口")
    assert await _size(bot) == 6
    await bot.send("u1", "撤销")
    assert await _size(bot) == 2
    out = await bot.send("u1", "我的农户")
    assert "未解决需求" not in out[0].text
    async with bot.sm() as s:
        from handlers.spreadsheets import build_sheets

        sheet = (await build_sheets(s, "households", tz=TZ))[0]
    head = sheet.headers.index("户主姓名")
    row = next(r for r in sheet.rows if r[head] == "张桂英")
    assert row[sheet.headers.index("未解决需求数")] == 0 and row[sheet.headers.index("家庭人口")] == 2


async def test_undo_removes_a_household_added_from_that_message(bot):
    out = await bot.send("u1", "今天去大坝村龙小花家，3口人，缺米")
    out = await bot.press("u1", out[0], "添加")
    assert "已记录走访" in out[0].text
    out = await bot.send("u1", "撤销")
    assert any("龙小花" in m.text and "也已删除" in m.text for m in out)
    assert await bot.count(Household, Household.head_name == "龙小花") == 0
    out = await bot.send("u1", "我的农户")
    assert "共4户" in out[0].text
    # Added again and visited by a second message: undoing that one keeps the household.
    out = await bot.send("u1", "今天去大坝村龙小花家，缺米")
    await bot.press("u1", out[0], "添加")
    await bot.send("u1", "昨天去大坝村龙小花家，缺油")
    await bot.send("u1", "撤销")
    assert await bot.count(Household, Household.head_name == "龙小花") == 1


async def test_the_question_works_as_numbered_choices_without_buttons(sessionmaker):
    from tests.fakes.transcript import NO_BUTTONS, TranscriptTransport

    bot = await make_bot(sessionmaker, transport=TranscriptTransport("wecom", NO_BUTTONS))
    await bot.bind("w1", "李明")
    out = await bot.send("w1", MIXED)
    labels = [b.text for row in out[0].buttons for b in row]
    out = await bot.send("w1", str(labels.index("记走访") + 1))
    assert "已记录走访" in out[0].text and "张桂英" in out[0].text
