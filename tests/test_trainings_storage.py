"""Training rules in storage/trainings.py on SQLite and PostgreSQL: the race for the last seat, village
quotas, the waitlist and its promotion, substitution, deadline and reopen, eligibility, duplicates,
placeholders, and the reminder tick."""

from __future__ import annotations

import asyncio
from datetime import datetime, time, timedelta

from sqlalchemy import func, select

from handlers.context import Prefs
from handlers.trainings import due_training_reminders
from storage import trainings as st
from storage.models import ChatIdentity, OutboxMessage, SendLedger, Signup, TrainingSession
from tests.conftest import FIXED_NOW, TZ
from tests.harness import seed_world

NOW = FIXED_NOW
START = NOW + timedelta(days=10)


async def _session(sm, **kw):
    async with sm() as s, s.begin():
        kw.setdefault("capacity", 2)
        ts = await st.create_session(s, course_name=kw.pop("course", "电工培训"), starts_at=kw.pop("starts_at", START),
                                     now=NOW, place="镇就业站", **kw)
        return ts.id


async def _join(sm, ts_id, name, *, village_id=None, village_name="大坝村", cadre_id=None, now=NOW, **kw):
    async with sm() as s, s.begin():
        p = st.Participant(name=name, village_id=village_id, village_name=village_name, **kw)
        return await st.sign_up(s, ts_id=ts_id, participant=p, cadre_id=cadre_id, now=now)


async def _statuses(sm, ts_id):
    async with sm() as s:
        rows = (await s.execute(select(Signup.participant_name, Signup.status).where(
            Signup.session_id == ts_id).order_by(Signup.id))).all()
        return {n: st_ for n, st_ in rows}


async def _seats(sm, ts_id):
    async with sm() as s:
        return (await s.execute(select(TrainingSession.seats_taken).where(TrainingSession.id == ts_id))).scalar_one()


async def test_race_for_the_last_seat(sessionmaker):
    """Two cadres, two transactions, one seat: each holds its transaction open a moment after signing up,
    so without the row lock / conditional update both would read "1 left" and both be confirmed."""
    ts_id = await _session(sessionmaker, capacity=2)
    await _join(sessionmaker, ts_id, "先到者")

    async def racer(name):
        async with sessionmaker() as s, s.begin():
            r = await st.sign_up(s, ts_id=ts_id, participant=st.Participant(name=name, village_name="大坝村"),
                                 cadre_id=None, now=NOW)
            await asyncio.sleep(0.05)
            return r.outcome

    outcomes = await asyncio.gather(racer("甲某"), racer("乙某"))
    assert sorted(outcomes) == ["confirmed", "waitlisted"]
    assert await _seats(sessionmaker, ts_id) == 2
    got = await _statuses(sessionmaker, ts_id)
    assert sorted(got.values()) == ["confirmed", "confirmed", "waitlisted"]


async def test_many_racers_fill_exactly_the_capacity(sessionmaker):
    ts_id = await _session(sessionmaker, capacity=3)

    async def racer(i):
        async with sessionmaker() as s, s.begin():
            r = await st.sign_up(s, ts_id=ts_id, participant=st.Participant(name=f"学员{i}", village_name=f"村{i}"),
                                 cadre_id=None, now=NOW)
            await asyncio.sleep(0.01)
            return r

    results = await asyncio.gather(*(racer(i) for i in range(8)))
    assert sum(r.outcome == "confirmed" for r in results) == 3
    assert sorted(r.position for r in results if r.outcome == "waitlisted") == [1, 2, 3, 4, 5]
    assert await _seats(sessionmaker, ts_id) == 3


async def test_village_quota(sessionmaker):
    ts_id = await _session(sessionmaker, capacity=10, village_quota=2)
    assert (await _join(sessionmaker, ts_id, "张一")).outcome == "confirmed"
    assert (await _join(sessionmaker, ts_id, "张二")).outcome == "confirmed"
    r = await _join(sessionmaker, ts_id, "张三")
    assert r.outcome == "quota" and "每村限报2人" in (r.reason or "") and "大坝村" in (r.reason or "")
    assert (await _join(sessionmaker, ts_id, "王一", village_name="高坡村")).outcome == "confirmed"
    assert await _seats(sessionmaker, ts_id) == 3
    # A freed seat goes to the first waitlisted person whose village still has room.
    ts_id = await _session(sessionmaker, capacity=2, village_quota=1)
    a = await _join(sessionmaker, ts_id, "甲", village_name="大坝村")
    b = await _join(sessionmaker, ts_id, "乙", village_name="水井村")
    assert (await _join(sessionmaker, ts_id, "丙", village_name="高坡村")).outcome == "waitlisted"
    assert (await _join(sessionmaker, ts_id, "戊", village_name="红岩村")).outcome == "waitlisted"
    async with sessionmaker() as s, s.begin():  # 高坡村's one place is now taken by a substitute
        await st.substitute(s, signup_id=b.signup.id, participant=st.Participant(name="己", village_name="高坡村"),
                            now=NOW)
    async with sessionmaker() as s, s.begin():
        promoted = await st.cancel_signup(s, signup_id=a.signup.id, now=NOW)
        assert promoted is not None and promoted.participant_name == "戊"


async def test_cancel_promotes_first_waitlisted(sessionmaker):
    ts_id = await _session(sessionmaker, capacity=1)
    a = await _join(sessionmaker, ts_id, "甲")
    b = await _join(sessionmaker, ts_id, "乙")
    c = await _join(sessionmaker, ts_id, "丙")
    assert (b.outcome, b.position, c.outcome, c.position) == ("waitlisted", 1, "waitlisted", 2)
    async with sessionmaker() as s, s.begin():
        promoted = await st.cancel_signup(s, signup_id=a.signup.id, now=NOW)
        assert promoted is not None and promoted.participant_name == "乙"
    assert await _statuses(sessionmaker, ts_id) == {"甲": "cancelled", "乙": "confirmed", "丙": "waitlisted"}
    assert await _seats(sessionmaker, ts_id) == 1
    async with sessionmaker() as s:
        row = await s.get(Signup, c.signup.id)
        assert await st.waitlist_position(s, row) == 1
    # Cancelling a waitlisted person frees no seat and promotes nobody.
    async with sessionmaker() as s, s.begin():
        assert await st.cancel_signup(s, signup_id=c.signup.id, now=NOW) is None
    assert await _seats(sessionmaker, ts_id) == 1


async def test_substitution_keeps_the_seat(sessionmaker):
    ts_id = await _session(sessionmaker, capacity=1)
    a = await _join(sessionmaker, ts_id, "韦小兵")
    await _join(sessionmaker, ts_id, "候补甲")
    async with sessionmaker() as s, s.begin():
        r = await st.substitute(s, signup_id=a.signup.id, participant=st.Participant(name="覃小东", village_name="大坝村"),
                                now=NOW)
        assert r.outcome == "confirmed" and r.signup.id == a.signup.id and r.signup.note == "替换 韦小兵"
    assert await _statuses(sessionmaker, ts_id) == {"覃小东": "confirmed", "候补甲": "waitlisted"}
    assert await _seats(sessionmaker, ts_id) == 1
    # Substituting someone already on the list is refused.
    async with sessionmaker() as s, s.begin():
        r = await st.substitute(s, signup_id=a.signup.id, participant=st.Participant(name="候补甲", village_name="大坝村"),
                                now=NOW)
        assert r.outcome == "duplicate" and r.existing.status == "waitlisted"


async def test_deadline_closes_and_reopen_opens(sessionmaker):
    ts_id = await _session(sessionmaker, deadline=NOW + timedelta(days=1))
    later = NOW + timedelta(days=2)
    r = await _join(sessionmaker, ts_id, "迟到者", now=later)
    assert r.outcome == "closed" and r.reason == "报名已截止"
    async with sessionmaker() as s, s.begin():
        await st.set_open(s, ts_id=ts_id, open_=False)
    assert (await _join(sessionmaker, ts_id, "早到者")).reason == "这期培训已停止报名"
    async with sessionmaker() as s, s.begin():
        await st.set_open(s, ts_id=ts_id, open_=True, until=later + timedelta(days=1))
    assert (await _join(sessionmaker, ts_id, "迟到者", now=later)).outcome == "confirmed"
    # Once the session has started, nobody signs up.
    assert (await _join(sessionmaker, ts_id, "更迟者", now=START + timedelta(minutes=1))).outcome == "closed"


async def test_eligibility_refusal_states_the_reason(sessionmaker):
    ts_id = await _session(sessionmaker, eligibility={"htypes": ["脱贫户", "监测户"], "age": [18, 55]})
    r = await _join(sessionmaker, ts_id, "一般户甲", htype="一般户")
    assert r.outcome == "ineligible" and r.reason == "这期只招脱贫户/监测户，此人是一般户"
    r = await _join(sessionmaker, ts_id, "未登记乙", htype=None)
    assert r.outcome == "ineligible" and "无法核实" in (r.reason or "")
    r = await _join(sessionmaker, ts_id, "老人丙", htype="脱贫户", age=60)
    assert r.outcome == "ineligible" and r.reason == "年龄要求18–55岁，此人60岁"
    assert (await _join(sessionmaker, ts_id, "丁", htype="监测户", age=40)).outcome == "confirmed"
    # A preference (优先) never refuses.
    ts2 = await _session(sessionmaker, eligibility={"htypes": ["脱贫户"], "priority": True})
    assert (await _join(sessionmaker, ts2, "一般户甲", htype="一般户")).outcome == "confirmed"
    assert await _seats(sessionmaker, ts_id) == 1


async def test_same_person_twice_is_refused_with_status(sessionmaker):
    ts_id = await _session(sessionmaker, capacity=1)
    await _join(sessionmaker, ts_id, "苏文斌")
    r = await _join(sessionmaker, ts_id, "苏文斌")
    assert r.outcome == "duplicate" and r.existing.status == "confirmed"
    await _join(sessionmaker, ts_id, "郑玉兰")
    r = await _join(sessionmaker, ts_id, "郑玉兰")
    assert r.outcome == "duplicate" and r.existing.status == "waitlisted" and r.position == 1
    # Same name in another village is another person.
    assert (await _join(sessionmaker, ts_id, "苏文斌", village_name="高坡村")).outcome == "waitlisted"
    assert await _seats(sessionmaker, ts_id) == 1


async def test_placeholders_hold_seats_until_the_deadline(sessionmaker):
    w = await seed_world(sessionmaker)
    cadre = w.people["李明"].id
    ts_id = await _session(sessionmaker, capacity=3, deadline=NOW + timedelta(days=2))
    async with sessionmaker() as s, s.begin():
        for _ in range(2):
            r = await st.sign_up(s, ts_id=ts_id, participant=st.Participant(name=None, village_name="大坝村"),
                                 cadre_id=cadre, now=NOW, placeholder=True)
            assert r.outcome == "placeholder"
    await _join(sessionmaker, ts_id, "甲")
    assert (await _join(sessionmaker, ts_id, "乙")).outcome == "waitlisted"
    async with sessionmaker() as s, s.begin():
        promoted = await st.release_expired_placeholders(s, now=NOW + timedelta(days=1))
        assert promoted == []
        promoted = await st.release_expired_placeholders(s, now=NOW + timedelta(days=2, minutes=1))
        assert [p.participant_name for p in promoted] == ["乙"]
    assert await _seats(sessionmaker, ts_id) == 2
    assert list((await _statuses(sessionmaker, ts_id)).values()).count("placeholder") == 0


async def test_attendance_and_no_show_counts(sessionmaker):
    ts_id = await _session(sessionmaker, capacity=5)
    a = await _join(sessionmaker, ts_id, "甲")
    await _join(sessionmaker, ts_id, "乙")
    ts2 = await _session(sessionmaker, capacity=5, starts_at=START + timedelta(days=1))
    await _join(sessionmaker, ts2, "乙")
    async with sessionmaker() as s, s.begin():
        await st.mark_attendance(s, signup_id=a.signup.id, attended=True, now=NOW)
        assert await st.close_checkin(s, ts_id=ts_id, now=NOW) == 1
        assert await st.close_checkin(s, ts_id=ts2, now=NOW) == 1
    async with sessionmaker() as s:
        assert await st.no_show_counts(s) == [("乙", "大坝村", 2)]
        rows = await st.stats(s, by="course")
        assert [(r.key, r.sessions, r.signups, r.attended) for r in rows] == [("电工培训", 2, 3, 1)]


async def test_reminders_once_per_cadre_and_window(sessionmaker):
    w = await seed_world(sessionmaker)
    cadre = w.people["李明"].id
    async with sessionmaker() as s, s.begin():
        s.add(ChatIdentity(person_id=cadre, channel="telegram", external_id="u1", chat_id="chat-u1", bound_at=NOW))
    start = NOW + timedelta(hours=20)
    ts_id = await _session(sessionmaker, starts_at=start)
    await _join(sessionmaker, ts_id, "张桂英", cadre_id=cadre)
    await _join(sessionmaker, ts_id, "王德明", cadre_id=cadre)
    prefs = Prefs(tz=TZ)

    async def tick(now):
        async with sessionmaker() as s, s.begin():
            return await due_training_reminders(s, now=now, prefs=prefs)

    assert await tick(NOW - timedelta(hours=5)) == 0  # 25 h before: nothing yet
    assert await tick(NOW) == 1
    assert await tick(NOW + timedelta(minutes=1)) == 0  # claimed in the ledger
    assert await tick(start - timedelta(hours=1)) == 1  # the 2-hour one
    assert await tick(start + timedelta(minutes=1)) == 0
    async with sessionmaker() as s:
        rows = list((await s.execute(select(OutboxMessage).order_by(OutboxMessage.id))).scalars())
        assert len(rows) == 2 and all(r.chat_id == "chat-u1" for r in rows)
        assert "明天" in rows[0].payload["text"] and "张桂英、王德明" in rows[0].payload["text"]
        assert "今天" in rows[1].payload["text"]
        kinds = set((await s.execute(select(SendLedger.kind))).scalars())
        assert kinds == {"training_reminder_24h", "training_reminder_2h"}
        assert (await s.execute(select(func.count()).select_from(SendLedger).where(
            SendLedger.outbox_id.is_(None)))).scalar_one() == 0


async def test_late_tick_sends_only_the_nearest_reminder(sessionmaker):
    w = await seed_world(sessionmaker)
    cadre = w.people["李明"].id
    async with sessionmaker() as s, s.begin():
        s.add(ChatIdentity(person_id=cadre, channel="telegram", external_id="u1", chat_id="chat-u1", bound_at=NOW))
    ts_id = await _session(sessionmaker, starts_at=NOW + timedelta(hours=1))
    await _join(sessionmaker, ts_id, "张桂英", cadre_id=cadre)
    async with sessionmaker() as s, s.begin():
        assert await due_training_reminders(s, now=NOW, prefs=Prefs(tz=TZ)) == 1
        kinds = list((await s.execute(select(SendLedger.kind))).scalars())
        assert kinds == ["training_reminder_2h"]


async def test_race_for_the_last_village_place(sessionmaker):
    """The quota is counted under the session row lock: two cadres of one village racing for its last
    place cannot both get it, though seats are plenty."""
    ts_id = await _session(sessionmaker, capacity=10, village_quota=1)

    async def racer(name):
        async with sessionmaker() as s, s.begin():
            r = await st.sign_up(s, ts_id=ts_id, participant=st.Participant(name=name, village_name="大坝村"),
                                 cadre_id=None, now=NOW)
            await asyncio.sleep(0.05)
            return r.outcome

    assert sorted(await asyncio.gather(racer("甲某"), racer("乙某"))) == ["confirmed", "quota"]


async def test_training_reminder_waits_out_quiet_hours(sessionmaker):
    """A 2-hours-before reminder for an 8:30 session falls at 06:30, inside the default 21:00–08:00
    quiet hours: it is queued at once but held until 08:00."""
    w = await seed_world(sessionmaker)
    cadre = w.people["李明"].id
    async with sessionmaker() as s, s.begin():
        s.add(ChatIdentity(person_id=cadre, channel="telegram", external_id="u1", chat_id="chat-u1", bound_at=NOW))
    day = (NOW + timedelta(days=1)).date()
    start = datetime.combine(day, time(8, 30), TZ)
    ts_id = await _session(sessionmaker, starts_at=start)
    await _join(sessionmaker, ts_id, "张桂英", cadre_id=cadre)
    early = datetime.combine(day, time(6, 30), TZ)
    async with sessionmaker() as s, s.begin():
        assert await due_training_reminders(s, now=early, prefs=Prefs(tz=TZ)) == 1
    async with sessionmaker() as s:
        row = (await s.execute(select(OutboxMessage))).scalar_one()
        assert row.not_before == datetime.combine(day, time(8, 0), TZ)
