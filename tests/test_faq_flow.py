"""A question in chat gets the FAQ's answer; one the FAQ cannot answer goes to the admins (masked), and the
cadre is told it was forwarded. A bad faq_file is a one-line config error."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from bot.config import ConfigError, load_settings
from handlers.faq import DEFAULT_FAQ, faq_from_file
from storage.models import InboxMessage
from tests.harness import make_bot


async def _bot(sessionmaker):  # noqa: ANN202
    bot = await make_bot(sessionmaker)
    bot.dispatcher.prefs = replace(bot.dispatcher.prefs, faq=faq_from_file(str(DEFAULT_FAQ)))
    await bot.bind("u1", "李明")
    return bot


async def test_a_question_the_faq_covers_is_answered(sessionmaker) -> None:
    bot = await _bot(sessionmaker)
    await bot.bind("adm", "管理员")
    out = await bot.send("u1", "低保怎么申请？")
    assert len(out) == 1 and out[0].chat.chat_id == "chat-u1"
    assert "📘 低保申请" in out[0].text and "乡镇" in out[0].text and "已保存" not in out[0].text
    assert await bot.count(InboxMessage, InboxMessage.state == "answered") == 1


async def test_an_unanswered_question_goes_to_the_admins(sessionmaker) -> None:
    bot = await _bot(sessionmaker)
    await bot.bind("adm", "管理员")
    out = await bot.send("u1", "请问今年的化肥补贴什么时候发？王德明电话13912345678")
    to_admin = [m for m in out if m.chat.chat_id == "chat-adm"]
    to_cadre = [m for m in out if m.chat.chat_id == "chat-u1"]
    assert len(to_admin) == 1 and "李明" in to_admin[0].text and "化肥补贴" in to_admin[0].text
    assert "13912345678" not in to_admin[0].text  # masked even towards an admin
    assert len(to_cadre) == 1 and "已转给管理员（1位）" in to_cadre[0].text
    assert await bot.count(InboxMessage, InboxMessage.state == "forwarded") == 1


async def test_no_admin_bound_the_cadre_is_told_plainly(sessionmaker) -> None:
    bot = await _bot(sessionmaker)
    out = await bot.send("u1", "请问今年的化肥补贴什么时候发？")
    assert len(out) == 1 and "没有绑定的管理员" in out[0].text


def test_faq_file_is_checked_when_the_config_loads(tmp_path: Path) -> None:
    bad = tmp_path / "faq.toml"
    bad.write_text('[[faq]]\ntopic = "低保"\n', encoding="utf-8")
    for value, needle in ((str(bad), "缺少 answer"), (str(tmp_path / "none.toml"), "找不到")):
        with pytest.raises(ConfigError) as e:
            load_settings(environ={"BANGFU_APP__FAQ_FILE": value})
        assert e.value.key == "app.faq_file" and needle in e.value.reason
    good = tmp_path / "good.toml"
    good.write_text('[[faq]]\ntopic = "化肥"\npatterns = ["化肥"]\nanswer = "月底发"\n', encoding="utf-8")
    from bot.app import prefs_from

    prefs = prefs_from(load_settings(environ={"BANGFU_APP__FAQ_FILE": str(good)}))
    assert prefs.faq is not None and prefs.faq.match("化肥什么时候发").entry.answer == "月底发"  # type: ignore[union-attr]
