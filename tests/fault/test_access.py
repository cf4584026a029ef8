"""Access control: a cadre can neither see nor change households, visits or needs outside their scope,
through any read or write handler; invites are single-use, expire and resist guessing; broadcasts stay
inside the sender's subtree.

The world (tests/harness.py): 李明 (u1) is a cadre of 大坝村 paired with four households; 赵芳 (u2) is a
cadre of 水井村 in another township, paired only with 韦国祥. Every test has u2 poke at u1's records.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select

from handlers.types import Attachment, ChatRef, Incoming
from storage.models import (
    Course,
    Entry,
    Household,
    InboxMessage,
    Invite,
    Need,
    OutboxMessage,
    Pairing,
    Signup,
    TrainingSession,
    Visit,
    VisitAttachment,
)
from tests.harness import Bot

VISIT = "今天去大坝村张桂英家，2口人，缺棉被两床"


async def _u1_saved_visit(bot: Bot) -> tuple[Entry, str]:
    """u1 logs a visit; returns the entry and the transport id of its card in u1's chat."""
    out = await bot.send("u1", VISIT)
    assert "已记录走访" in out[0].text, out[0].text
    async with bot.sm() as s:
        entry = (await s.execute(select(Entry).where(Entry.state == "saved"))).scalar_one()
    return entry, bot.message_id_of(out[0])


async def _u1_pending_entry(bot: Bot) -> tuple[Entry, list[str]]:
    """u1 names an ambiguous household (two 王德明): the entry waits for a pk: button."""
    out = await bot.send("u1", "昨天去王德明家看了看，缺化肥3袋")
    data = [b.data for row in out[0].buttons for b in row]
    assert any(d.startswith("pk:") for d in data), out[0].text
    async with bot.sm() as s:
        entry = (await s.execute(select(Entry).where(Entry.state == "pending"))).scalar_one()
    return entry, data


async def _forge_card_in_chat(bot: Bot, user: str, entry_id: int, transport_id: str = "9999") -> str:
    """Plant an outbox row in `user`'s chat that claims to show someone else's card. Telegram lets users
    reply only to messages in their own chat, so this stands in for a bug or a shared card: the handlers
    themselves must still check who owns the entry."""
    async with bot.sm() as s, s.begin():
        s.add(OutboxMessage(channel=bot.transport.name, chat_id=f"chat-{user}", is_group=False,
                            payload={"text": "forged"}, card_key=f"entry:{entry_id}", status="sent",
                            transport_message_id=transport_id, created_at=datetime.now(UTC),
                            not_before=datetime.now(UTC), attempts=1))
    return transport_id


# ------------------------------------------------------------------------------------------- reads


async def test_my_lists_only_own_households(bot: Bot) -> None:
    out = await bot.send("u2", "/my")
    text = out[0].text
    assert "韦国祥" in text and "共1户" in text
    for name in ("王德明", "张桂英", "马德忠"):
        assert name not in text


async def test_visits_lists_only_own_visits(bot: Bot) -> None:
    await _u1_saved_visit(bot)
    out = await bot.send("u2", "/visits")
    assert "张桂英" not in out[0].text and "还没有走访记录" in out[0].text


async def test_needs_lists_only_needs_in_scope(bot: Bot) -> None:
    await _u1_saved_visit(bot)
    out = await bot.send("u2", "/needs")
    assert "棉被" not in out[0].text and "张桂英" not in out[0].text
    assert not out[0].buttons
    out = await bot.send("u1", "/needs")  # the positive control
    assert "棉被" in out[0].text


async def test_supervisor_needs_view_is_limited_to_paired(bot: Bot) -> None:
    """/needs for anyone lists needs of their *paired* households, even for a supervisor whose subtree
    is wider: the supervisor pairs with nobody here, so sees nothing."""
    await _u1_saved_visit(bot)
    out = await bot.send("sup", "/needs")
    assert "棉被" not in out[0].text


# ------------------------------------------------------------------------------------------ buttons


async def test_need_met_button_outside_scope(bot: Bot) -> None:
    await _u1_saved_visit(bot)
    async with bot.sm() as s:
        nid = (await s.execute(select(Need.id))).scalar_one()
    out = await bot.send("u2", kind="callback", callback=f"nd:{nid}")
    assert "不在您的帮扶范围" in out[0].text
    assert await bot.count(Need, Need.status == "met") == 0
    out = await bot.send("u2", kind="callback", callback="nd:999999")  # no such need: same answer
    assert "不在您的帮扶范围" in out[0].text


async def test_pick_button_on_someone_elses_entry(bot: Bot) -> None:
    entry, data = await _u1_pending_entry(bot)
    pick = next(d for d in data if d.startswith("pk:") and not d.endswith(":0"))
    out = await bot.send("u2", kind="callback", callback=pick)
    assert "已经处理过了" in out[0].text
    assert await bot.count(Visit) == 0
    async with bot.sm() as s:
        assert (await s.get(Entry, entry.id)).state == "pending"  # type: ignore[union-attr]


async def test_pick_button_cannot_smuggle_a_household_outside_scope(bot: Bot) -> None:
    """u1's own entry, but a forged pk: naming 韦国祥 (水井村, not in u1's scope)."""
    entry, _ = await _u1_pending_entry(bot)
    wei = bot.world.households["韦国祥"].id
    out = await bot.send("u1", kind="callback", callback=f"pk:{entry.id}:0:{wei}")
    assert "不在您的帮扶范围" in out[0].text
    assert await bot.count(Visit, Visit.household_id == wei) == 0


async def test_add_household_button_on_someone_elses_entry(bot: Bot) -> None:
    out = await bot.send("u1", "今天去大坝村龙小花家，3口人，缺米")
    add = next(b.data for row in out[0].buttons for b in row if b.data.startswith("add:"))
    out = await bot.send("u2", kind="callback", callback=add)
    assert "已经处理过了" in out[0].text
    assert await bot.count(Household, Household.head_name == "龙小花") == 0


async def test_add_household_refused_outside_own_unit(bot: Bot) -> None:
    """u1 (大坝村) names a village of another township; adding the household there must be refused,
    or a cadre could create and pair themselves with records in any village."""
    out = await bot.send("u1", "今天去水井村龙小花家，3口人，缺米")
    add = [b.data for row in out[0].buttons for b in row if b.data.startswith("add:")]
    if add:
        await bot.send("u1", kind="callback", callback=add[0])
    async with bot.sm() as s:
        made = (await s.execute(select(Household).where(Household.head_name == "龙小花"))).scalars().all()
    assert all(h.village_id != bot.world.villages["水井村"].id for h in made)


async def test_date_button_on_someone_elses_entry(bot: Bot) -> None:
    entry, _ = await _u1_pending_entry(bot)
    async with bot.sm() as s, s.begin():
        e = await s.get(Entry, entry.id)
        assert e is not None
        e.pending = {**e.pending, "date_cands": ["2026-11-24", "2026-11-17"]}
    out = await bot.send("u2", kind="callback", callback=f"dt:{entry.id}:2026-11-24")
    assert "已经处理过了" in out[0].text
    async with bot.sm() as s:
        e = await s.get(Entry, entry.id)
        assert e is not None and e.pending.get("date") is None and e.state == "pending"


async def test_undo_and_edit_buttons_on_someone_elses_card(bot: Bot) -> None:
    entry, _ = await _u1_saved_visit(bot)
    out = await bot.send("u2", kind="callback", callback=f"v:{entry.id}:undo")
    assert "没有可以撤销" in out[0].text
    assert await bot.count(Visit, Visit.deleted.is_(True)) == 0
    out = await bot.send("u2", kind="callback", callback=f"v:{entry.id}:edit")
    assert "张桂英" not in out[0].text  # only the how-to text, nothing of the record
    async with bot.sm() as s:
        e = await s.get(Entry, entry.id)
        assert e is not None and e.state == "saved" and e.history == []


async def test_reminder_call_button_outside_scope(bot: Bot) -> None:
    hid = bot.world.households["张桂英"].id
    out = await bot.send("u2", kind="callback", callback=f"rm:c:{hid}")
    assert "失效" in out[0].text
    assert await bot.count(Visit) == 0


async def test_garbage_callback_data(bot: Bot) -> None:
    for data in ("", ":", "pk", "pk:x:y:z", "v:1", "nd:-1", "dt:1", "cmd:drop", "bc:1", "tx:abc", "ta:1:ok",
                 "🙂" * 20, "v:1:undo:extra"):
        out = await bot.send("u2", kind="callback", callback=data or None)
        assert out, data
    assert await bot.count(InboxMessage, InboxMessage.state == "failed") == 0


# ---------------------------------------------------------------------------- corrections and the like


async def test_correction_by_reply_to_someone_elses_card(bot: Bot) -> None:
    entry, _ = await _u1_saved_visit(bot)
    forged = await _forge_card_in_chat(bot, "u2", entry.id)
    await bot.send("u2", "改成昨天", reply_to=forged)
    await bot.send("u2", "棉被是5床", reply_to=forged)
    await bot.send("u2", "删掉第1条需求", reply_to=forged)
    async with bot.sm() as s:
        v = (await s.execute(select(Visit).where(Visit.entry_id == entry.id))).scalar_one()
        assert v.visit_date == date(2026, 11, 25)
        need = (await s.execute(select(Need).where(Need.visit_id == v.id))).scalar_one()
        assert float(need.qty) == 2  # type: ignore[arg-type]
        e = await s.get(Entry, entry.id)
        assert e is not None and e.history == []


async def test_correction_without_reply_only_touches_own_latest(bot: Bot) -> None:
    await _u1_saved_visit(bot)
    await bot.send("u2", "改成昨天")  # u2 has no entry; u1's newest must not be "latest" for u2
    async with bot.sm() as s:
        v = (await s.execute(select(Visit))).scalar_one()
        assert v.visit_date == date(2026, 11, 25)


async def test_attachment_to_someone_elses_card(bot: Bot) -> None:
    entry, _ = await _u1_saved_visit(bot)
    forged = await _forge_card_in_chat(bot, "u2", entry.id)
    out = await bot.send("u2", attachments=(Attachment(kind="photo", file_id="EVIL", size=100),), reply_to=forged)
    assert "不知道附到哪条" in out[0].text
    assert await bot.count(VisitAttachment) == 0


async def test_edit_of_someone_elses_message(bot: Bot) -> None:
    """An edit claiming to be of u1's message, from u2 (forged into u1's chat id): ignored."""
    await bot.send("u1", VISIT, message_id="500")
    inc = Incoming(chat=ChatRef(bot.transport.name, "chat-u1"), sender_id="u2", message_id="500", kind="edit",
                   text="今天去大坝村马德忠家，缺化肥", dedup_key="500:e1")
    await bot.dispatcher.handle(inc)
    await bot.flush()
    async with bot.sm() as s:
        v = (await s.execute(select(Visit))).scalar_one()
        assert v.household_id == bot.world.households["张桂英"].id
        row = (await s.execute(select(InboxMessage).where(InboxMessage.message_key == "500:e1"))).scalar_one()
        assert row.state == "ignored"


async def test_visit_naming_a_household_outside_scope_is_not_saved_to_it(bot: Bot) -> None:
    out = await bot.send("u2", VISIT)  # 张桂英 is u1's
    assert await bot.count(Visit, Visit.household_id == bot.world.households["张桂英"].id) == 0
    assert "张桂英（大坝村" not in " ".join(m.text for m in out)


# ----------------------------------------------------------------------------------------- training


async def _training(bot: Bot) -> tuple[int, int]:
    async with bot.sm() as s, s.begin():
        c = Course(name="蜜蜂养殖")
        s.add(c)
        await s.flush()
        ts = TrainingSession(course_id=c.id, starts_at=datetime(2026, 12, 2, 1, 0, tzinfo=UTC), place="镇政府",
                             capacity=30, checkin_code="1234")
        s.add(ts)
        await s.flush()
        su = Signup(session_id=ts.id, participant_name="张桂英", cadre_id=bot.world.people["李明"].id,
                    status="confirmed")
        s.add(su)
        await s.flush()
        return ts.id, su.id


async def test_cadre_cannot_use_organiser_training_actions(bot: Bot) -> None:
    ts_id, su_id = await _training(bot)
    for data in (f"tc:{ts_id}", f"tk:{su_id}:a", f"te:{ts_id}", f"tr:{ts_id}", f"to:{ts_id}", f"ta:{ts_id}:ok"):
        out = await bot.send("u2", kind="callback", callback=data)
        assert "组织者" in out[0].text or "失效" in out[0].text, (data, out[0].text)
    for cmd in (f"培训 名单 {ts_id}", f"培训 签到 {ts_id}", f"培训 截止 {ts_id}", f"培训 名额 {ts_id} 99",
                "培训 缺席"):
        out = await bot.send("u2", cmd)
        assert "组织者" in out[0].text, (cmd, out[0].text)
    async with bot.sm() as s:
        ts = await s.get(TrainingSession, ts_id)
        assert ts is not None and ts.capacity == 30 and not ts.closed
        assert "张桂英" not in " ".join(bot.transport.texts("chat-u2"))


async def test_cadre_cannot_cancel_someone_elses_signup(bot: Bot) -> None:
    _, su_id = await _training(bot)
    out = await bot.send("u2", kind="callback", callback=f"tx:{su_id}")
    assert "失效" in out[0].text
    async with bot.sm() as s:
        su = await s.get(Signup, su_id)
        assert su is not None and su.status == "confirmed"


async def test_session_pick_cannot_replay_someone_elses_message(bot: Bot) -> None:
    ts_id, _ = await _training(bot)
    await bot.send("u1", "帮大坝村张桂英报个名 蜜蜂养殖")
    async with bot.sm() as s:
        inbox_id = (await s.execute(select(InboxMessage.id).where(InboxMessage.sender_id == "u1")
                                    .order_by(InboxMessage.id.desc()))).scalars().first()
    before = await bot.count(Signup)
    out = await bot.send("u2", kind="callback", callback=f"tp:{inbox_id}:{ts_id}")
    assert "失效" in out[0].text
    assert await bot.count(Signup) == before


# ---------------------------------------------------------------------------------------- broadcast


async def test_cadre_cannot_broadcast(bot: Bot) -> None:
    out = await bot.send("u1", "广播 明天开会")
    assert "只有管理员和督查人员" in out[0].text
    out = await bot.send("u1", kind="callback", callback="bc:1:c:ok")
    assert "只有管理员和督查人员" in out[0].text


async def test_supervisor_broadcast_stays_in_subtree(bot: Bot) -> None:
    """周督查 supervises 双堡镇; 赵芳 (u2) works in 旧州镇 and must not receive it."""
    out = await bot.send("sup", "广播 周五上午9点在镇政府开会")
    data = [b.data for row in out[0].buttons for b in row]
    assert not any(d.endswith(":s") for d in data)  # the supervisors audience is admin-only
    cadres = next(d for d in data if d.endswith(":c"))
    out = await bot.send("sup", kind="callback", callback=cadres)
    ok = next(b.data for row in out[0].buttons for b in row if b.data.endswith(":ok"))
    await bot.send("sup", kind="callback", callback=ok)
    assert "已提交发送" in bot.transport.texts("chat-sup")[-1]
    received = {m.chat.chat_id for m in bot.transport.sent if "周五上午9点" in m.text and "预览" not in m.text}
    assert "chat-u1" in received and "chat-u2" not in received
    # A forged audience code and someone else's draft are refused.
    draft = int(cadres.split(":")[1])
    n = len(bot.transport.sent)
    out = await bot.send("sup", kind="callback", callback=f"bc:{draft}:s:ok")
    assert "已经发出" in out[0].text or "失效" in out[0].text
    out = await bot.send("adm", kind="callback", callback=f"bc:{draft}:a:ok")
    assert "失效" in out[0].text
    assert len(bot.transport.sent) == n + 2  # just the two refusals


async def test_supervisor_cannot_use_admin_only_audience(bot: Bot) -> None:
    out = await bot.send("sup", "广播 检查")
    draft = next(b.data for row in out[0].buttons for b in row).split(":")[1]
    out = await bot.send("sup", kind="callback", callback=f"bc:{draft}:s")
    assert "失效" in out[0].text
    out = await bot.send("sup", kind="callback", callback=f"bc:{draft}:s:ok")
    assert "失效" in out[0].text
    assert not any("检查" in m.text for m in bot.transport.sent if m.chat.chat_id != "chat-sup")


# ------------------------------------------------------------------------------------------ invites


async def test_invite_is_stored_hashed_and_single_use(bot: Bot) -> None:
    code = await bot.invite("赵芳")
    async with bot.sm() as s:
        inv = (await s.execute(select(Invite))).scalar_one()
        assert code not in inv.code_hash and len(inv.code_hash) == 64
    out = await bot.send("new1", f"/start {code}")
    assert "绑定成功" in out[0].text
    out = await bot.send("new2", f"/start {code.lower()}")
    assert "已经被使用过" in out[0].text
    out = await bot.send("new2", "/my")
    assert "邀请码" in out[0].text  # still a stranger


async def test_invite_expires_after_seven_days(bot: Bot) -> None:
    # Replies are only delivered once their time has come (real time), so the invites are made in the
    # past instead of moving the clock into the future.
    now = bot.clock.now()
    bot.clock.set(now - timedelta(days=7))
    late = await bot.invite("赵芳")
    bot.clock.set(now - timedelta(days=6, hours=23))
    in_time = await bot.invite("李明")
    bot.clock.set(now)
    out = await bot.send("early", f"/start {in_time}")
    assert "绑定成功" in out[0].text
    out = await bot.send("late", f"/start {late}")
    assert "已过期" in out[0].text
    assert await bot.count(InboxMessage, InboxMessage.state == "bound") == 1


async def test_guessing_codes_is_rate_limited_per_hour(bot: Bot) -> None:
    for i in range(5):
        out = await bot.send("guesser", f"/start ABCDEF{'GH'[i % 2]}{i + 2}")
        assert "无效" in out[0].text
    code = await bot.invite("赵芳")
    out = await bot.send("guesser", f"/start {code}")
    assert "次数过多" in out[0].text  # even the right code is refused while locked out
    bot.clock.advance(minutes=61)
    out = await bot.send("guesser", f"/start {code}")
    assert "绑定成功" in out[0].text


async def test_stranger_buttons_and_edits_are_refused(bot: Bot) -> None:
    entry, _ = await _u1_saved_visit(bot)
    for kw in ({"kind": "callback", "callback": f"v:{entry.id}:undo"},
               {"kind": "callback", "callback": "cmd:my"}, {"kind": "edit", "text": "/my"},
               {"attachments": (Attachment(kind="photo", file_id="X"),)}):
        out = await bot.send("stranger", **kw)  # type: ignore[arg-type]
        assert "邀请码" in out[0].text
    assert await bot.count(Visit, Visit.deleted.is_(True)) == 0
    assert "张桂英" not in " ".join(bot.transport.texts("chat-stranger"))


async def test_unpaired_household_of_own_village_is_in_scope_but_others_are_not(bot: Bot) -> None:
    """Scope rule, stated: a village cadre sees the whole village (paired or not); nothing beyond."""
    from storage.accounts import in_scope, scope_for
    from storage.models import Person

    async with bot.sm() as s:
        li = await s.get(Person, bot.world.people["李明"].id)
        zhao = await s.get(Person, bot.world.people["赵芳"].id)
        assert li is not None and zhao is not None
        s_li, s_zhao = await scope_for(s, li), await scope_for(s, zhao)
        hs = bot.world.households
        assert await in_scope(s, s_li, hs["张桂英"].id)
        assert await in_scope(s, s_li, hs["王德明@高坡村"].id)  # paired, other village
        assert not await in_scope(s, s_li, hs["韦国祥"].id)
        assert await in_scope(s, s_zhao, hs["韦国祥"].id)
        for k in ("张桂英", "王德明@大坝村", "王德明@高坡村", "马德忠"):
            assert not await in_scope(s, s_zhao, hs[k].id)
        paired = (await s.execute(select(Pairing.household_id).where(Pairing.person_id == zhao.id))).scalars().all()
        assert paired == [hs["韦国祥"].id]


def test_expiry_clock_is_exact() -> None:
    """The expiry check is `expires_at <= now` (storage/accounts.py): the very second of expiry is late."""
    import asyncio

    from storage.accounts import InviteError, redeem_invite

    class _S:
        async def execute(self, _q):  # noqa: ANN001, ANN202
            class R:
                def scalar_one_or_none(self_inner):  # noqa: ANN001, ANN202, N805
                    return Invite(code_hash="x", role="cadre", created_at=datetime(2026, 1, 1),
                                  expires_at=datetime(2026, 1, 8))
            return R()

    try:
        asyncio.run(redeem_invite(_S(), code="ABCDEFGH", channel="t", external_id="e", chat_id="c",  # type: ignore[arg-type]
                                  display_name="d", now=datetime(2026, 1, 1) + timedelta(days=7)))
    except InviteError as e:
        assert str(e) == "expired"
    else:
        raise AssertionError("an invite at exactly 7 days must be expired")
