"""People's data stays put: tokens, ID numbers and phones never reach the logs; chat output masks them;
nothing posted to a group carries a phone or ID number; broadcasts to groups stay in the sender's subtree.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest
from sqlalchemy import select

import handlers.routes as routes
from bot.config import Settings
from bot.logging import RedactFilter, configure
from handlers.digest import bulletins
from handlers.format import mask_personal
from handlers.types import ChatRef, Incoming
from storage.models import ChatGroup, Household, OutboxMessage
from tests.harness import Bot

TOKEN = "7012345678:AAHk2f9x_SECRETtokenPART-abcdefghijkl"
WEBHOOK_SECRET = "wh-secret-Zx81"
WECOM_SECRET = "wecom-corp-secret-value-123"
ID_NUMBER = "520402198001011234"  # the seeded households' ID number
HH_PHONE = "13912345678"  # 王德明@大坝村's phone in the seed
MSG_ID = "52040219900307461X"
MSG_PHONE = "13698765432"

PHONE_RE = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)")
ID_RE = re.compile(r"(?<!\d)\d{17}[\dXx](?!\d)")


@pytest.fixture
def restore_logging():
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    levels = {n: logging.getLogger(n).level for n in ("httpx", "aiogram.event")}
    yield
    for h in list(root.handlers):
        root.removeHandler(h)
        h.close()
    for h in handlers:
        root.addHandler(h)
    root.setLevel(level)
    for n, lv in levels.items():
        logging.getLogger(n).setLevel(lv)


async def test_logs_never_contain_tokens_ids_or_phones(bot: Bot, tmp_path: Path, monkeypatch,
                                                       restore_logging) -> None:
    """A whole scenario at DEBUG with the real logging set-up: the log file must hold none of them."""
    log_file = tmp_path / "bangfu.log"
    settings = Settings.model_validate({
        "app": {"log_file": str(log_file), "log_level": "DEBUG"},
        "telegram": {"token": TOKEN, "webhook_secret": WEBHOOK_SECRET},
        "wecom": {"secret": WECOM_SECRET},
    })
    configure(settings, verbose=True)
    # SQLAlchemy logs statements *with parameters* once its logger is at INFO or below.
    logging.getLogger("sqlalchemy.engine").setLevel(logging.INFO)
    try:
        # A message carrying an ID number and a phone (kept in the inbox, logged nowhere in clear).
        await bot.send("u1", f"今天去大坝村张桂英家，身份证{MSG_ID}，电话{MSG_PHONE}，缺棉被两床")
        await bot.send("u1", f"{MSG_PHONE} {MSG_ID}")

        # A handler error whose message and traceback carry all of them.
        async def boom(ctx, _):  # noqa: ANN001, ANN202
            async with ctx.session.begin_nested():
                h = (await ctx.session.execute(select(Household).where(Household.phone == HH_PHONE))).scalar_one()
            raise RuntimeError(f"cannot use {h.id_number} / {h.phone} with bot{TOKEN} key={WECOM_SECRET}")

        monkeypatch.setitem(routes.COMMAND_HANDLERS, "my", boom)
        out = await bot.send("u1", "/my")
        assert "参考码" in out[0].text
        # Logs from the transports' code paths: a webhook body that is not JSON, a failed send.
        logging.getLogger("bot.transports.telegram").warning(
            "webhook body is not JSON: %.200r", f"{{\"t\": \"{MSG_PHONE} {MSG_ID}\"".encode())
        logging.getLogger("bangfu.outbox").warning(
            "transient failure: %s", f"POST https://api.telegram.org/bot{TOKEN}/sendMessage 502")
        logging.getLogger("bangfu.wecom").error(
            "gettoken failed: https://qyapi.weixin.qq.com/cgi-bin/gettoken?corpid=ww1&corpsecret={WECOM_SECRET}")
        logging.getLogger("bangfu.test").info("phone %s id %s", HH_PHONE, ID_NUMBER)
    finally:
        logging.getLogger("sqlalchemy.engine").setLevel(logging.WARNING)
        for h in logging.getLogger().handlers:
            h.flush()
    text = log_file.read_text(encoding="utf-8")
    assert "handler failed" in text and "RuntimeError" in text  # the trace is there ...
    assert "INSERT INTO" in text  # ... and so are the SQL statements with their parameters
    for secret in (TOKEN, TOKEN.split(":")[1], WEBHOOK_SECRET, WECOM_SECRET, ID_NUMBER, HH_PHONE, MSG_ID, MSG_PHONE):
        assert secret not in text, secret
    assert not PHONE_RE.search(text) and not ID_RE.search(text)


def test_redact_filter_catches_common_spellings() -> None:
    f = RedactFilter([TOKEN])
    for raw in (f"bot{TOKEN}/getMe", f"id={ID_NUMBER}", f"tel:{HH_PHONE}", "ID 52040219800101123x",
                "corpsecret=abc&x=1", "access_token=zzz"):
        red = f.redact(raw)
        assert TOKEN not in red and ID_NUMBER not in red and HH_PHONE not in red
        assert "abc" not in red.split("corpsecret=")[-1][:3] and "zzz" not in red
        assert not ID_RE.search(red) and not PHONE_RE.search(red)


@pytest.mark.parametrize("spelled", ["139-1234-5678", "139 1234 5678", "+8613912345678"])
def test_phone_with_separators_or_country_code_is_masked(spelled: str) -> None:
    assert "5678" not in mask_personal(f"电话{spelled}").replace("****5678", "")
    assert "1234" not in RedactFilter().redact(f"电话{spelled}")


async def test_chat_output_masks_numbers(bot: Bot) -> None:
    """Whatever u1 writes, what comes back never shows a full phone or ID number."""
    sent = [f"今天去大坝村张桂英家，身份证{MSG_ID}，电话{MSG_PHONE}，缺棉被两床",
            f"{MSG_PHONE}",  # not understood: the echo of the text is masked
            f"身份证 {MSG_ID}",
            "我是谁", "我的农户", "需求", "走访记录"]
    for t in sent:
        await bot.send("u1", t)
    texts = "\n".join(bot.transport.texts("chat-u1"))
    assert "138****0001" in texts  # /whoami shows the cadre's own phone masked
    assert not PHONE_RE.search(texts), texts
    assert not ID_RE.search(texts), texts


async def test_group_posts_carry_no_phone_or_id(bot: Bot) -> None:
    """Broadcasts, bulletins and replies to (forged) button presses in groups: every outbox row to a group
    chat is free of 11-digit mobiles and 18-digit ID numbers."""
    async with bot.sm() as s, s.begin():
        s.add_all([ChatGroup(channel=bot.transport.name, chat_id="-100大坝", unit_id=bot.world.villages["大坝村"].id),
                   ChatGroup(channel=bot.transport.name, chat_id="-100水井", unit_id=bot.world.villages["水井村"].id)])
    await bot.send("u1", f"今天去大坝村王德明家，电话{HH_PHONE}，缺棉被两床")
    # The supervisor broadcasts a text with a phone and an ID number to groups and cadres.
    out = await bot.send("sup", f"广播 有事找王德明 {HH_PHONE}，身份证{ID_NUMBER}")
    both = next(b.data for row in out[0].buttons for b in row if b.data.endswith(":a"))
    out = await bot.send("sup", kind="callback", callback=both)
    assert "隐去手机号和身份证号" in out[0].text
    ok = next(b.data for row in out[0].buttons for b in row if b.data.endswith(":ok"))
    await bot.send("sup", kind="callback", callback=ok)
    # Bulletins to every group.
    async with bot.sm() as s, s.begin():
        assert await bulletins(s, now=bot.clock.now(), prefs=bot.dispatcher.prefs) == 2
    # A cadre pressing (forged) buttons inside a group chat: the replies go to the group.
    for data in ("cmd:my", "cmd:needs", "cmd:visits", "cmd:whoami", "v:1:undo", "v:1:edit", "nd:1"):
        await bot.dispatcher.handle(Incoming(chat=ChatRef(bot.transport.name, "-100大坝", is_group=True),
                                             sender_id="u1", message_id="1", kind="callback", callback_data=data,
                                             dedup_key=f"cb:{data}"))
    await bot.flush()
    async with bot.sm() as s:
        rows = (await s.execute(select(OutboxMessage).where(OutboxMessage.is_group.is_(True)))).scalars().all()
    texts = [r.payload.get("text") or "" for r in rows]
    assert any("有事找王德明" in t for t in texts)
    assert any("帮扶通报" in t for t in texts)
    for t in texts:
        assert not PHONE_RE.search(t) and not ID_RE.search(t), t
    # The broadcast went to the supervisor's subtree only.
    chats = {r.chat_id for r in rows if "有事找王德明" in (r.payload.get("text") or "")}
    assert chats == {"-100大坝"}
    # Cadres received the unmasked private copy (they are the audience).
    assert any(HH_PHONE in t for t in bot.transport.texts("chat-u1"))
