"""The conversation core, driven directly through the dispatcher with a transcript transport,
on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select

from handlers.types import Attachment
from storage.models import Entry, Household, InboxMessage, Need, OutboxMessage, Visit, VisitAttachment
from tests.fakes.transcript import NO_BUTTONS, TranscriptTransport
from tests.harness import make_bot


@pytest.fixture
async def bot(sessionmaker):
    b = await make_bot(sessionmaker)
    await b.bind("u1", "李明")
    return b


async def test_stranger_is_refused_and_nothing_else_processed(bot):
    out = await bot.send("stranger", "今天去大坝村张桂英家，缺棉被两床")
    assert len(out) == 1 and "邀请码" in out[0].text
    assert await bot.count(Visit) == 0
    assert await bot.count(InboxMessage, InboxMessage.state == "stranger") == 1


async def test_invite_binds_once(bot):
    code = await bot.invite("赵芳")
    out = await bot.send("newbie", f"/start {code}")
    assert "绑定成功" in out[0].text and "赵芳" in out[0].text
    out = await bot.send("other", code)  # single use
    assert "已经被使用过" in out[0].text
    out = await bot.send("newbie", "我是谁")
    assert "赵芳" in out[0].text and "138****0002" in out[0].text


async def test_code_guessing_is_rate_limited(bot):
    for _ in range(5):
        out = await bot.send("guesser", "/start ABCDEFGH")
        assert "无效" in out[0].text
    code = await bot.invite("赵芳")
    out = await bot.send("guesser", f"/start {code}")
    assert "次数过多" in out[0].text
    assert await bot.count(InboxMessage, InboxMessage.state == "bound") == 0


async def test_visit_is_saved_with_card(bot):
    out = await bot.send("u1", "今天去大坝村张桂英家，2口人，缺棉被两床，下周一送过去")
    card = out[0]
    assert "已记录走访" in card.text and "张桂英" in card.text and "大坝村" in card.text
    assert "棉被" in card.text and "×2床" in card.text
    assert [b.text for b in card.buttons[0]] == ["撤销", "修改"]
    async with bot.sm() as s:
        v = (await s.execute(select(Visit))).scalar_one()
        assert v.visit_date == date(2026, 11, 25) and v.visit_type == "入户走访"
        need = (await s.execute(select(Need))).scalar_one()
        assert need.category == "生活物资" and float(need.qty) == 2 and need.status == "open"


async def test_duplicate_delivery_gives_one_record(bot):
    await bot.send("u1", "今天去大坝村张桂英家，缺大米一袋", message_id="77")
    out = await bot.send("u1", "今天去大坝村张桂英家，缺大米一袋", message_id="77")
    assert out == []
    assert await bot.count(Visit) == 1
    assert await bot.count(InboxMessage) == 1


async def test_ambiguous_household_resolved_by_button(bot):
    out = await bot.send("u1", "昨天去王德明家看了看，缺化肥3袋")
    ask = out[0]
    assert "王德明" in ask.text and len(ask.buttons) == 3  # two candidates + 都不是
    assert any("大坝村" in b.text for row in ask.buttons for b in row)
    out = await bot.press("u1", ask, "高坡村")
    assert "已记录走访" in out[0].text and "高坡村" in out[0].text
    async with bot.sm() as s:
        v = (await s.execute(select(Visit))).scalar_one()
        assert v.household_id == bot.world.households["王德明@高坡村"].id
        assert v.visit_date == date(2026, 11, 24)


async def test_unregistered_household_can_be_added(bot):
    out = await bot.send("u1", "今天去大坝村龙小花家，3口人，缺米")
    assert "没有找到" in out[0].text
    out = await bot.press("u1", out[0], "添加")
    assert "已记录走访" in out[0].text and "龙小花" in out[0].text
    assert await bot.count(Household, Household.head_name == "龙小花") == 1


async def test_corrections_by_reply(bot):
    out = await bot.send("u1", "今天去大坝村张桂英家，缺棉被两床，缺大米一袋")
    card_id = bot.message_id_of(out[0])
    out = await bot.send("u1", "改成昨天", reply_to=card_id)
    assert "已修改" in out[-1].text
    edited = out[0]
    assert edited.edit_message_id == card_id and "11月24日" in edited.text
    await bot.send("u1", "棉被是3床", reply_to=card_id)
    await bot.send("u1", "删掉第二条需求", reply_to=card_id)
    async with bot.sm() as s:
        v = (await s.execute(select(Visit))).scalar_one()
        assert v.visit_date == date(2026, 11, 24)
        needs = list((await s.execute(select(Need))).scalars())
        assert len(needs) == 1 and float(needs[0].qty) == 3
        e = (await s.execute(select(Entry))).scalar_one()
        assert [h["kind"] for h in e.history] == ["date", "need_qty", "delete_need"]


async def test_household_correction(bot):
    out = await bot.send("u1", "今天去马德忠家，缺化肥")
    card_id = bot.message_id_of(out[0])
    out = await bot.send("u1", "是张桂英不是马德忠", reply_to=card_id)
    async with bot.sm() as s:
        v = (await s.execute(select(Visit))).scalar_one()
        assert v.household_id == bot.world.households["张桂英"].id


async def test_undo(bot):
    await bot.send("u1", "今天去大坝村张桂英家，缺大米")
    out = await bot.send("u1", "撤销")
    assert any("已撤销" in m.text for m in out)
    async with bot.sm() as s:
        v = (await s.execute(select(Visit))).scalar_one()
        assert v.deleted is True
    out = await bot.send("u1", "/undo")
    assert "没有可以撤销" in out[0].text


async def test_edited_message_updates_visit(bot):
    await bot.send("u1", "今天去大坝村张桂英家，缺大米一袋", message_id="50")
    out = await bot.send("u1", "今天去大坝村张桂英家，缺大米两袋", message_id="50", kind="edit",
                         dedup_key="50:e1")
    assert out[0].edit_message_id is not None
    async with bot.sm() as s:
        need = (await s.execute(select(Need))).scalar_one()
        assert float(need.qty) == 2
        assert (await s.execute(select(Visit))).scalars().all().__len__() == 1


async def test_photo_attaches_to_card(bot):
    out = await bot.send("u1", "今天去大坝村张桂英家，房子漏雨")
    card_id = bot.message_id_of(out[0])
    out = await bot.send("u1", attachments=(Attachment(kind="photo", file_id="F1", size=1000),), reply_to=card_id)
    assert "已附到走访记录" in out[0].text
    assert await bot.count(VisitAttachment) == 1
    out = await bot.send("u1", attachments=(Attachment(kind="document", file_id="F2", size=10**9),))
    assert "文件太大" in out[0].text
    assert await bot.count(VisitAttachment) == 1


async def test_my_households_and_needs(bot):
    await bot.send("u1", "今天去大坝村张桂英家，缺棉被两床")
    out = await bot.send("u1", "我的农户")
    assert "共4户" in out[0].text and "张桂英" in out[0].text
    out = await bot.send("u1", "/needs")
    assert "棉被" in out[0].text
    out = await bot.press("u1", out[0], "已解决")
    assert "已标记解决" in out[0].text
    assert await bot.count(Need, Need.status == "met") == 1


async def test_cannot_touch_needs_outside_scope(bot):
    await bot.bind("u2", "赵芳")
    await bot.send("u1", "今天去大坝村张桂英家，缺棉被两床")
    async with bot.sm() as s:
        nid = (await s.execute(select(Need.id))).scalar_one()
    out = await bot.send("u2", kind="callback", callback=f"nd:{nid}")
    assert "不在您的帮扶范围" in out[0].text
    assert await bot.count(Need, Need.status == "met") == 0


async def test_not_understood_is_kept_with_useful_answer(bot):
    out = await bot.send("u1", "哈哈好的收到")
    assert "已保存" in out[0].text and "今天去" in out[0].text
    assert await bot.count(InboxMessage, InboxMessage.state == "not_understood") == 1


async def test_handler_error_apologises_with_reference(bot, monkeypatch):
    import handlers.routes as routes

    async def boom(ctx, _):
        raise RuntimeError("kaput")

    monkeypatch.setitem(routes.COMMAND_HANDLERS, "my", boom)
    out = await bot.send("u1", "/my")
    assert "参考码" in out[0].text and "kaput" not in out[0].text
    async with bot.sm() as s:
        row = (await s.execute(select(InboxMessage))).scalar_one()
        assert row.state == "failed" and row.error_ref and row.error_ref in out[0].text


async def test_oversized_text_refused_but_stored(bot):
    out = await bot.send("u1", "缺" * 100_000)
    assert "消息太长" in out[0].text
    async with bot.sm() as s:
        row = (await s.execute(select(InboxMessage))).scalar_one()
        assert len(row.text) == 100_000 and row.state == "too_long"


async def test_numbered_choice_on_channel_without_buttons(sessionmaker):
    bot = await make_bot(sessionmaker, transport=TranscriptTransport("wecom", NO_BUTTONS))
    await bot.bind("w1", "李明")
    out = await bot.send("w1", "昨天去王德明家，缺化肥3袋")
    labels = [b.text for row in out[0].buttons for b in row]
    k = next(i for i, t in enumerate(labels, 1) if "高坡村" in t)
    out = await bot.send("w1", str(k))
    assert "已记录走访" in out[0].text and "高坡村" in out[0].text


async def test_settings_quiet_hours(bot):
    out = await bot.send("u1", "设置 免打扰 22:00-07:00")
    assert "22:00–07:00" in out[0].text
    out = await bot.send("u1", "/settings")
    assert "22:00–07:00" in out[0].text


async def test_outbox_rows_record_delivery(bot):
    await bot.send("u1", "帮助")
    async with bot.sm() as s:
        row = (await s.execute(select(OutboxMessage))).scalar_one()
        assert row.status == "sent" and row.transport_message_id
