"""/broadcast (广播) through the dispatcher: who may send, scope, preview and confirm, masking in groups,
quiet hours, no double send, and the delivery report once the batch is finished."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import select

from bot.transports.base import OutMessage, PermanentError, Sent
from handlers.broadcast import delivery_reports
from handlers.types import Incoming
from storage.engine import make_engine, make_sessionmaker
from storage.models import ChatGroup, OutboxMessage, Person
from tests.conftest import TZ
from tests.fakes.transcript import TranscriptTransport
from tests.harness import make_bot


class BlockingTransport(TranscriptTransport):
    """赵芳 (chat-u2) has blocked the bot."""

    async def send(self, msg: OutMessage) -> Sent:
        if msg.chat.chat_id == "chat-u2":
            raise PermanentError("Forbidden: bot was blocked by the user", blocked=True)
        return await super().send(msg)


@pytest.fixture
async def bot(sessionmaker):
    """SQLite and PostgreSQL."""
    return await _bot(sessionmaker)


@pytest.fixture
async def lite_bot(sqlite_url):
    """SQLite only: logic tests, kept off PostgreSQL to keep the suite fast."""
    eng = make_engine(sqlite_url)
    yield await _bot(make_sessionmaker(eng))
    await eng.dispose()


async def _bot(sessionmaker):
    b = await make_bot(sessionmaker, transport=BlockingTransport())
    for user, person in (("u1", "李明"), ("u2", "赵芳"), ("sup", "周督查"), ("adm", "管理员")):
        await b.bind(user, person)
    async with sessionmaker() as s, s.begin():
        s.add_all([ChatGroup(channel="telegram", chat_id="-100", title="双堡镇群", unit_id=b.world.township.id),
                   ChatGroup(channel="telegram", chat_id="-200", title="旧州镇群",
                             unit_id=b.world.villages["水井村"].parent_id)])
        s.add(Person(natural_key="未绑|x", name="未绑", role="cadre", unit_id=b.world.villages["高坡村"].id))
    return b


async def report(bot) -> list[OutMessage]:
    async with bot.sm() as s, s.begin():
        await delivery_reports(s, now=bot.clock.now())
    return await bot.flush()


async def test_supervisor_broadcast_within_scope_with_preview_and_report(bot):
    out = await bot.send("sup", "广播 周五上午9点在镇政府开会，联系人电话13912345678")
    ask = out[0]
    assert "发给谁" in ask.text and not any("督查人员" in b.text for r in ask.buttons for b in r)
    assert all(len(b.data.encode()) <= 64 for r in ask.buttons for b in r)
    out = await bot.press("sup", ask, "群聊和干部")
    preview = out[0]
    assert "预览" in preview.text and "1个群、1人" in preview.text  # 双堡镇群 and 李明; not 赵芳 nor 旧州镇群
    assert "另有1人还没绑定账号" in preview.text and "群里发出的版本会隐去手机号" in preview.text
    assert await bot.count(OutboxMessage, OutboxMessage.batch.is_not(None)) == 0  # nothing before confirming
    out = await bot.press("sup", preview, "确认发送")
    assert "已提交发送，共2条" in out[-1].text
    sent = {m.chat.chat_id: m.text for m in out}
    assert "13912345678" in sent["chat-u1"] and "139****5678" in sent["-100"]
    assert sent["-100"].startswith("📢 通知（双堡镇 周督查）")
    assert "chat-u2" not in sent and "-200" not in sent
    # Pressing confirm again (a double tap, a retry) sends nothing more.
    out = await bot.press("sup", preview, "确认发送")
    assert "已经发出了" in out[0].text
    assert await bot.count(OutboxMessage, OutboxMessage.batch.is_not(None)) == 2
    rep = await report(bot)
    assert [m.chat.chat_id for m in rep] == ["chat-sup"]
    assert "共2条：已送达2，失败0，对方已屏蔽0" in rep[0].text
    assert await report(bot) == []  # once


async def test_admin_reaches_everyone_and_blocked_users_are_reported(lite_bot):
    bot = lite_bot
    out = await bot.send("adm", "/broadcast 请各位本周内完成走访")
    out = await bot.press("adm", out[0], "帮扶干部")
    assert "2人" in out[0].text
    out = await bot.press("adm", out[0], "确认发送")
    assert {m.chat.chat_id for m in out} == {"chat-u1", "chat-adm"}
    rep = await report(bot)
    assert "共2条：已送达1，失败0，对方已屏蔽1" in rep[0].text and "电话通知" in rep[0].text


async def test_report_waits_for_messages_held_by_quiet_hours(lite_bot):
    bot = lite_bot
    bot.clock.set(datetime(2026, 11, 25, 22, 0, tzinfo=TZ))
    out = await bot.send("sup", "广播 明早8点集合")
    out = await bot.press("sup", out[0], "帮扶干部")
    btn = next(b for r in out[0].buttons for b in r if b.text == "确认发送")
    # Dispatch without draining the outbox, which runs on the real clock.
    await bot.dispatcher.handle(Incoming(chat=bot.chat("sup"), sender_id="sup", message_id="c9", kind="callback",
                                         callback_data=btn.data, dedup_key="cb:c9"))
    async with bot.sm() as s:
        held = (await s.execute(select(OutboxMessage).where(OutboxMessage.chat_id == "chat-u1"))).scalar_one()
        assert await delivery_reports(s, now=bot.clock.now()) == 0  # still pending: no report yet
    assert held.not_before == datetime(2026, 11, 26, 8, tzinfo=TZ) and held.status == "pending"
    await bot.flush()  # (real time is past 08:00 on the 26th, so it goes now)
    rep = await report(bot)
    assert "已送达1" in rep[0].text


async def test_only_admins_and_supervisors_may_broadcast(lite_bot):
    bot = lite_bot
    out = await bot.send("u1", "广播 大家好")
    assert "只有管理员和督查人员" in out[0].text
    out = await bot.send("u1", kind="callback", callback="bc:1:g:ok")
    assert "只有管理员和督查人员" in out[0].text
    assert await bot.count(OutboxMessage, OutboxMessage.batch.is_not(None)) == 0


async def test_someone_elses_draft_and_cancel(lite_bot):
    bot = lite_bot
    out = await bot.send("sup", "广播")
    assert "用法" in out[0].text
    out = await bot.send("sup", "广播 测试")
    draft = out[0].buttons[0][0].data.split(":")[1]
    out = await bot.send("adm", kind="callback", callback=f"bc:{draft}:g:ok")  # not the admin's draft
    assert "失效" in out[0].text
    out = await bot.send("sup", kind="callback", callback=f"bc:{draft}:x")
    assert "已取消" in out[0].text
    out = await bot.send("sup", kind="callback", callback=f"bc:{draft}:s")  # supervisors can't pick 督查人员
    assert "失效" in out[0].text
    assert await bot.count(OutboxMessage, OutboxMessage.batch.is_not(None)) == 0
