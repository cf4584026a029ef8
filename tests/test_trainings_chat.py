"""Training sign-ups through the whole bot (dispatcher, outbox, transcript transport), on SQLite and
PostgreSQL: notices, free-text and button sign-ups, placeholders, cancellation with a promotion notice,
substitution, check-in and the roster document."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from storage import trainings as st
from storage.models import Person, Signup, TrainingSession
from tests.conftest import FIXED_NOW
from tests.harness import make_bot

START = FIXED_NOW + timedelta(days=10)


@pytest.fixture
async def bot(sessionmaker):
    b = await make_bot(sessionmaker)
    async with b.sm() as s, s.begin():
        org = Person(natural_key="培训办|x", name="培训办", role="organiser", phone="13800000009",
                     unit_id=b.world.township.id)
        s.add(org)
        await s.flush()
        b.world.people["培训办"] = org
    await b.bind("u1", "李明")
    await b.bind("u2", "赵芳")
    await b.bind("org", "培训办")
    return b


async def add_session(bot, course="电工培训", **kw):
    async with bot.sm() as s, s.begin():
        kw.setdefault("capacity", 10)
        ts = await st.create_session(s, course_name=course, starts_at=kw.pop("starts_at", START), now=FIXED_NOW,
                                     place="镇就业站", organiser_id=bot.world.people["培训办"].id, **kw)
        return ts


async def signups(bot, ts_id):
    async with bot.sm() as s:
        return list((await s.execute(select(Signup).where(Signup.session_id == ts_id).order_by(Signup.id))).scalars())


async def test_free_text_signup_links_the_household(bot):
    ts = await add_session(bot)
    out = await bot.send("u1", "帮大坝村张桂英报个名 电工")
    assert "张桂英" in out[0].text and "报名成功" in out[0].text and "已关联农户" in out[0].text
    rows = await signups(bot, ts.id)
    assert len(rows) == 1 and rows[0].status == "confirmed"
    assert rows[0].household_id == bot.world.households["张桂英"].id
    assert rows[0].cadre_id == bot.world.people["李明"].id
    # An unregistered person is kept as name + village; fuzzy course name (电工班 → 电工培训).
    out = await bot.send("u1", "报名 电工班 高坡村 龙小花")
    rows = await signups(bot, ts.id)
    assert rows[1].participant_name == "龙小花" and rows[1].household_id is None
    assert rows[1].village_id == bot.world.villages["高坡村"].id
    # The same person again is refused with the current status.
    out = await bot.send("u1", "帮大坝村张桂英报个名 电工")
    assert "已经报过了" in out[0].text and "已报名" in out[0].text
    assert len(await signups(bot, ts.id)) == 2
    # A visit that mentions her and a cancelled allowance is still a visit, not a training cancellation.
    out = await bot.send("u1", "今天去大坝村张桂英家，她家低保取消了，缺棉被两床")
    assert "已记录走访" in out[0].text
    assert [r.status for r in await signups(bot, ts.id)] == ["confirmed", "confirmed"]


async def test_browse_and_sign_up_by_button(bot):
    ts = await add_session(bot, capacity=1)
    out = await bot.send("u1", "培训")
    assert "电工培训" in out[0].text and "剩1/1" in out[0].text
    out = await bot.press("u1", out[0], "报名")
    assert "请直接发参加人姓名" in out[0].text
    out = await bot.send("u1", "张桂英 王德明")
    assert "张桂英" in out[0].text and "报名成功" in out[0].text
    assert "王德明" in out[0].text and "候补第1位" in out[0].text
    assert [r.status for r in await signups(bot, ts.id)] == ["confirmed", "waitlisted"]


async def test_several_matching_sessions_ask_which(bot):
    await add_session(bot)
    ts2 = await add_session(bot, starts_at=START + timedelta(days=7))
    out = await bot.send("u1", "报名 电工 张桂英")
    assert "哪一期" in out[0].text and len(out[0].buttons) == 2
    out = await bot.press("u1", out[0], f"{(START + timedelta(days=7)).day}日")
    assert "报名成功" in out[0].text
    rows = await signups(bot, ts2.id)
    assert [r.participant_name for r in rows] == ["张桂英"]


async def test_placeholders_then_names_later(bot):
    ts = await add_session(bot, deadline=FIXED_NOW + timedelta(days=3))
    out = await bot.send("u1", "电工报3个 名字晚点发")
    assert "还有3个位等名字" in out[0].text
    assert [r.status for r in await signups(bot, ts.id)] == ["placeholder"] * 3
    async with bot.sm() as s:
        assert (await s.get(TrainingSession, ts.id)).seats_taken == 3
    bot.clock.advance(hours=2)  # later, not replying to anything
    out = await bot.send("u1", "张桂英 龙小花")
    assert "张桂英" in out[0].text and "龙小花" in out[0].text and "还有1个位等名字" in out[0].text
    rows = await signups(bot, ts.id)
    assert sorted(r.status for r in rows) == ["confirmed", "confirmed", "placeholder"]
    async with bot.sm() as s:
        assert (await s.get(TrainingSession, ts.id)).seats_taken == 3
    # The cadre is reminded a day before the deadline, and the unnamed seat is freed at it.
    from handlers.context import Prefs
    from handlers.trainings import due_training_reminders
    from tests.conftest import TZ

    async with bot.sm() as s, s.begin():
        assert await due_training_reminders(s, now=FIXED_NOW + timedelta(days=2, hours=1), prefs=Prefs(tz=TZ)) == 1
    out = await bot.flush()
    assert "1个占位没填名字" in out[0].text and out[0].chat.chat_id == "chat-u1"
    # Answering that reminder with a name fills the seat.
    out = await bot.send("u1", "王德明", reply_to=bot.message_id_of(out[0]))
    assert "王德明" in out[0].text and "报名成功" in out[0].text
    assert sorted(r.status for r in await signups(bot, ts.id)) == ["confirmed"] * 3


async def test_cancel_promotes_and_notifies_the_other_cadre(bot):
    ts = await add_session(bot, capacity=1)
    await bot.send("u1", "帮大坝村张桂英报个名 电工")
    out = await bot.send("u2", "报名 电工 韦国祥")
    assert "候补第1位" in out[0].text
    out = await bot.send("u1", "张桂英不去了")
    mine = [m for m in out if m.chat.chat_id == "chat-u1"]
    theirs = [m for m in out if m.chat.chat_id == "chat-u2"]
    assert "已取消" in mine[0].text and "韦国祥已自动补上" in mine[0].text
    assert len(theirs) == 1 and "韦国祥" in theirs[0].text and "正式报名" in theirs[0].text
    assert [r.status for r in await signups(bot, ts.id)] == ["cancelled", "confirmed"]
    # Another cadre cannot cancel someone they did not sign up.
    out = await bot.send("u1", "韦国祥不去了")
    assert [r.status for r in await signups(bot, ts.id)] == ["cancelled", "confirmed"]


async def test_substitution_by_text_keeps_the_seat(bot):
    ts = await add_session(bot, capacity=1)
    await bot.send("u1", "帮大坝村张桂英报个名 电工")
    await bot.send("u2", "报名 电工 韦国祥")
    out = await bot.send("u1", "把张桂英换成他表哥王德明")
    assert "张桂英 → 王德明" in out[0].text and "名额保留" in out[0].text
    rows = await signups(bot, ts.id)
    assert [(r.participant_name, r.status) for r in rows] == [("王德明", "confirmed"), ("韦国祥", "waitlisted")]
    assert rows[0].household_id == bot.world.households["王德明@大坝村"].id


async def test_eligibility_and_deadline_refusals_in_chat(bot):
    ts = await add_session(bot, eligibility={"htypes": ["监测户"]}, deadline=FIXED_NOW + timedelta(days=1))
    out = await bot.send("u1", "帮大坝村张桂英报个名 电工")
    assert "没报上" in out[0].text and "这期只招监测户，此人是脱贫户" in out[0].text
    bot.clock.advance(days=2)
    out = await bot.send("u1", "报名 电工 高坡村 马德忠")
    assert "报名已截止" in out[0].text
    out = await bot.send("u1", f"培训 重开 {ts.id}")
    assert "只有培训组织者" in out[0].text
    out = await bot.send("org", f"培训 重开 {ts.id}")
    assert "已重新开放" in out[0].text
    out = await bot.send("u1", "报名 电工 高坡村 马德忠")
    assert "报名成功" in out[0].text


async def test_check_in_by_code_and_by_buttons(bot):
    ts = await add_session(bot, starts_at=FIXED_NOW + timedelta(hours=3))
    await bot.send("u1", "报名 电工 张桂英 王德明")
    await bot.send("u2", "报名 电工 韦国祥")
    bot.clock.advance(hours=3, minutes=10)
    out = await bot.send("u1", "签到 0000 张桂英")
    assert "签到码不对" in out[0].text
    out = await bot.send("u1", f"签到 {ts.checkin_code} 张桂英 李四")
    assert "✅ 张桂英 已签到" in out[0].text and "李四：名单上没有" in out[0].text
    out = await bot.send("org", f"培训 签到 {ts.id}")
    view = out[0]
    assert "已到 1/3" in view.text and ts.checkin_code in view.text
    out = await bot.press("org", view, "韦国祥")
    assert out[0].edit_message_id == bot.message_id_of(view) and "已到 2/3" in out[0].text
    out = await bot.press("org", out[0], "结束签到")
    assert "1人记为缺席" in out[-1].text
    got = {r.participant_name: r.status for r in await signups(bot, ts.id)}
    assert got == {"张桂英": "attended", "王德明": "no_show", "韦国祥": "attended"}
    out = await bot.send("org", "培训 缺席")
    assert "王德明（大坝村）1次" in out[0].text
    out = await bot.send("org", "培训 统计 全部")
    assert "电工培训：1期 / 3人 / 2人次" in out[0].text and "大坝村：2人 / 1人次" in out[0].text


async def test_roster_document_for_the_organiser(bot):
    ts = await add_session(bot, capacity=1)
    await bot.send("u1", "帮大坝村王德明报个名 电工")
    await bot.send("u1", "报名 电工 张桂英")
    out = await bot.send("u1", f"培训 名单 {ts.id}")
    assert out[0].document is None and "只有培训组织者" in out[0].text
    out = await bot.send("org", f"培训 名单 {ts.id}")
    doc = out[0].document
    assert doc is not None and doc.filename.endswith(".xlsx") and "正式1/1，候补1" in out[0].text
    ws = load_workbook(io.BytesIO(doc.content)).active
    rows = [[c if c is not None else "" for c in r] for r in ws.iter_rows(values_only=True)]
    assert rows[0] == ["姓名", "村", "户", "电话", "状态"]
    assert rows[1] == ["王德明", "大坝村", "王德明户（脱贫户）", "13912345678", "已报名"]
    assert rows[2][0] == "张桂英" and rows[2][4] == "候补第1位"
    assert b"520402" not in doc.content  # ID numbers never leave
    # An admin (not the organiser role) gets masked phones.
    await bot.bind("adm", "管理员")
    out = await bot.send("adm", f"培训 名单 {ts.id}")
    ws = load_workbook(io.BytesIO(out[0].document.content)).active
    assert list(ws.iter_rows(values_only=True))[1][3] == "139****5678"


async def test_notice_from_organiser_is_confirmed_by_button(bot):
    notice = ("【报名通知】县就业局12月8日—12月17日在镇就业站开展中式面点培训，免费，结业发证，"
              "每村限报5人，脱贫户、监测户优先，请11月30日前报名单。联系人：王老师")
    out = await bot.send("u1", notice)
    assert "培训通知" in out[0].text and "不是报名" in out[0].text
    async with bot.sm() as s:
        assert (await s.execute(select(TrainingSession))).first() is None
    out = await bot.send("org", notice)
    card = out[0]
    assert "中式面点" in card.text and "每村限5人" in card.text and "12月8日" in card.text
    out = await bot.press("org", card, "确认发布")
    assert "已发布" in out[0].text
    async with bot.sm() as s:
        ts = (await s.execute(select(TrainingSession))).scalar_one()
        assert ts.status == "open" and ts.village_quota == 5
        assert ts.deadline is not None and ts.deadline.astimezone(FIXED_NOW.tzinfo).day == 30
    out = await bot.send("u1", "报名 面点 张桂英")
    assert "报名成功" in out[0].text
