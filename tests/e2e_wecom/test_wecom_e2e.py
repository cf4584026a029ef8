"""The whole bot over WeCom (企业微信), end to end, on SQLite and PostgreSQL.

The real App (dispatcher + outbox + WeComTransport built from Settings by `wecom_transport`) runs against
FakeWeComAPI: the fake plays WeCom calling our callback (encrypted and signed with its own, independent
crypto), and our replies must come out at its /cgi-bin/message/send. Replies are read from there only.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import itertools
import re
import socket
import time
from collections.abc import AsyncIterator, Iterator
from datetime import date
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from bot.app import App
from bot.config import Settings, load_settings
from bot.transports.wecom import WeComTransport
from storage.accounts import create_invite
from storage.models import ChatIdentity, Entry, InboxMessage, OutboxMessage, Visit
from tests.conftest import FIXED_NOW, FixedClock
from tests.fakes.wecom_api import CallbackResult, FakeWeComAPI, build_text_xml, post_callback
from tests.harness import World, seed_world

TOKEN = "bangfuE2eCallbackTok3n"
AES_KEY = base64.b64encode(hashlib.sha256(b"bangfu e2e wecom key").digest()).decode()[:43]
LIMING = "LiMing"  # WeCom UserIDs
ZHAOFANG = "ZhaoFang"
OPTION = re.compile(r"^(\d+)\. (.+)$", re.MULTILINE)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def settings_for(db_url: str, fake: FakeWeComAPI) -> Settings:
    # Validated like a real config file, so the [wecom] checks and the listen parsing are exercised too.
    return Settings.model_validate({
        "database": {"url": db_url},
        "wecom": {
            "enabled": True, "corp_id": fake.corp_id, "agent_id": str(fake.agent_id), "secret": fake.secret,
            "token": TOKEN, "aes_key": AES_KEY, "api_base": fake.base_url,
            "listen": f"127.0.0.1:{free_port()}",
        },
    })


async def start_app(db_url: str, fake: FakeWeComAPI) -> App:
    app = App(settings_for(db_url, fake), clock=FixedClock(), with_scheduler=False)
    await app.build()
    return app


class WeComBot:
    """The running app plus the fake; `say` posts one callback and returns the texts that came out."""

    def __init__(self, app: App, fake: FakeWeComAPI, db_url: str, world: World) -> None:
        self.app, self.fake, self.db_url, self.world = app, fake, db_url, world
        self._ids: Iterator[int] = itertools.count(7_300_000_000_000_000_001)  # MsgIds are 64-bit
        self._seen = 0

    @property
    def transport(self) -> WeComTransport:
        [t] = self.app.transports
        assert isinstance(t, WeComTransport)
        return t

    def xml(self, user: str, text: str, msg_id: str | None = None) -> str:
        return build_text_xml(self.fake.corp_id, user, text, msg_id or str(next(self._ids)),
                              self.fake.agent_id, create_time=int(time.time()))

    async def post(self, xml: str, **kw: Any) -> CallbackResult:
        corp = kw.pop("corp_id", self.fake.corp_id)
        return await post_callback(self.transport.callback_url, TOKEN, AES_KEY, corp, xml, **kw)

    async def deliver(self, xml: str) -> CallbackResult:
        """As WeCom does: a callback answered 500 (not handled within the transport's 4 s) is retried,
        at most three times; the retry joins the handler still running, it does not start another."""
        for _ in range(4):
            res = await self.post(xml)
            if res.status != 500:
                break
        return res

    async def say(self, user: str, text: str) -> list[str]:
        res = await self.deliver(self.xml(user, text))
        assert res.status == 200, res
        return await self.replies(user)

    async def replies(self, user: str | None = None) -> list[str]:
        """Texts that reached message/send since the last call, once the outbox has nothing in flight."""
        await self.settle()
        new = self.fake.sent[self._seen:]
        self._seen = len(self.fake.sent)
        for p in new:
            assert p["msgtype"] == "text" and p["agentid"] == self.fake.agent_id, p
            assert user is None or p["touser"] == user, p
        return [p["text"]["content"] for p in new]

    async def settle(self, timeout: float = 10.0) -> None:
        # The callback answers only after the handler committed its outbox rows; wait until they are sent.
        deadline = time.monotonic() + timeout
        while (n := await self.count(OutboxMessage, OutboxMessage.status.in_(("pending", "sending")))) > 0:
            if time.monotonic() > deadline:
                raise AssertionError(f"{n} outbox row(s) not delivered to the fake WeCom API")
            await asyncio.sleep(0.02)

    async def count(self, model: Any, *where: Any) -> int:
        assert self.app.sessionmaker is not None
        async with self.app.sessionmaker() as s:
            return int((await s.execute(select(func.count()).select_from(model).where(*where))).scalar_one())

    async def visits(self) -> list[Visit]:
        assert self.app.sessionmaker is not None
        async with self.app.sessionmaker() as s:
            return list((await s.execute(select(Visit).order_by(Visit.id))).scalars())

    async def invite(self, person: str) -> str:
        assert self.app.sessionmaker is not None
        async with self.app.sessionmaker() as s, s.begin():
            return await create_invite(s, role="cadre", now=FIXED_NOW, person_id=self.world.people[person].id)

    async def bind(self, user: str, person: str) -> None:
        """Shortcut for the tests that are not about binding."""
        assert self.app.sessionmaker is not None
        async with self.app.sessionmaker() as s, s.begin():
            s.add(ChatIdentity(person_id=self.world.people[person].id, channel="wecom", external_id=user,
                               chat_id=user, display_name=person, bound_at=FIXED_NOW))

    async def restart(self) -> None:
        """A new process on the same database: every in-memory dedup cache is gone."""
        await self.app.stop()
        self.app = await start_app(self.db_url, self.fake)
        await self.app.start()


@pytest.fixture(scope="session", autouse=True)
def _warm_parser() -> None:
    """Load jieba's dictionary before any app listens: its first use blocks the event loop for a
    second or more (much longer on a busy CI machine), which is not what these tests are about."""
    from handlers.text import parse

    parse("今天去大坝村张桂英家，缺大米一袋", FIXED_NOW, None)


@pytest.fixture
async def fake() -> AsyncIterator[FakeWeComAPI]:
    async with FakeWeComAPI() as f:
        yield f


@pytest.fixture
async def bot(db_url: str, fake: FakeWeComAPI) -> AsyncIterator[WeComBot]:
    app = await start_app(db_url, fake)
    assert app.sessionmaker is not None
    world = await seed_world(app.sessionmaker)
    await app.start()
    b = WeComBot(app, fake, db_url, world)
    try:
        yield b
    finally:
        await b.app.stop()


def options(text: str) -> dict[int, str]:
    """The numbered choices a button-less channel shows: {1: "王德明（大坝村，5口）", …}."""
    assert "回复数字选择：" in text, text
    return {int(n): label for n, label in OPTION.findall(text)}


# -- the scenario ----------------------------------------------------------------------------------


async def test_visit_logging_over_wecom(bot: WeComBot) -> None:
    # Binding: the bare code (what people paste in WeCom) and the /start form both work.
    out = await bot.say(LIMING, await bot.invite("李明"))
    assert len(out) == 1 and "绑定成功" in out[0] and "李明" in out[0]
    out = await bot.say(ZHAOFANG, f"/start {await bot.invite('赵芳')}")
    assert len(out) == 1 and "绑定成功" in out[0] and "赵芳" in out[0]
    assert await bot.count(ChatIdentity, ChatIdentity.channel == "wecom", ChatIdentity.external_id == LIMING,
                           ChatIdentity.person_id == bot.world.people["李明"].id) == 1

    # Two 王德明 paired with 李明: WeCom has no buttons, so the choice comes as numbered lines.
    out = await bot.say(LIMING, "昨天去王德明家，缺化肥3袋")
    opts = options(out[-1])
    assert any(label.startswith("王德明（大坝村，5口") for label in opts.values()), opts
    [gaopo] = [n for n, label in opts.items() if label.startswith("王德明（高坡村")]
    assert await bot.count(Visit) == 0  # nothing saved until the household is known

    out = await bot.say(LIMING, str(gaopo))
    [card] = [t for t in out if "已记录走访" in t] or [f"no card in {out}"]
    assert "高坡村" in card and "大坝村" not in card, card
    [v] = await bot.visits()
    assert v.household_id == bot.world.households["王德明@高坡村"].id
    assert v.cadre_id == bot.world.people["李明"].id
    assert v.visit_date == date(2026, 11, 24)

    # WeCom cannot quote a card: a bare correction applies to the sender's newest entry.
    out = await bot.say(LIMING, "改成前天")
    assert any("已修改" in t for t in out), out
    [v] = await bot.visits()
    assert v.visit_date == date(2026, 11, 23)
    assert v.household_id == bot.world.households["王德明@高坡村"].id


# -- what must be refused --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tamper", "corp_id"),
    [("signature", None), ("truncate", None), (None, "wwOtherCorp000001")],
    ids=["bad-signature", "truncated-ciphertext", "wrong-corpid"],
)
async def test_forged_or_broken_callback_stores_nothing(
    bot: WeComBot, tamper: str | None, corp_id: str | None
) -> None:
    await bot.bind(LIMING, "李明")
    xml = bot.xml(LIMING, "今天去大坝村张桂英家，缺大米一袋", msg_id="7300000000000009001")
    kw: dict[str, Any] = {"tamper": tamper} if tamper else {"corp_id": corp_id}
    res = await bot.post(xml, **kw)
    assert 400 <= res.status < 500, res
    assert await bot.replies() == []
    for model in (InboxMessage, Entry, Visit, OutboxMessage):
        assert await bot.count(model) == 0, model.__name__

    # The same message, genuine and with the same MsgId, goes through: the refusal was for the forgery only.
    assert (await bot.deliver(xml)).status == 200
    out = await bot.replies(LIMING)
    assert any("已记录走访" in t and "张桂英" in t for t in out), out
    assert (await bot.count(InboxMessage), await bot.count(Visit)) == (1, 1)


async def test_replayed_msgid_stores_nothing_new_and_sends_no_second_reply(bot: WeComBot) -> None:
    await bot.bind(LIMING, "李明")
    xml = bot.xml(LIMING, "今天去大坝村张桂英家，缺棉被两床", msg_id="7300000000000008001")
    assert (await bot.deliver(xml)).status == 200
    assert len(await bot.replies(LIMING)) >= 1
    counts = [await bot.count(m) for m in (InboxMessage, Visit, OutboxMessage)]
    assert counts[:2] == [1, 1]

    # WeCom retries sign afresh; the transport's own memory catches this one…
    assert (await bot.post(xml, nonce="424242", timestamp=str(int(time.time()) + 5))).status == 200
    assert await bot.replies() == []
    assert [await bot.count(m) for m in (InboxMessage, Visit, OutboxMessage)] == counts

    # …and after a restart only the database can: the inbox's unique key.
    await bot.restart()
    assert (await bot.post(xml, nonce="434343")).status == 200
    assert await bot.replies() == []
    assert [await bot.count(m) for m in (InboxMessage, Visit, OutboxMessage)] == counts
    assert len(bot.fake.sent) == bot._seen  # noqa: SLF001 - nothing arrived at message/send at all


async def test_access_token_expiring_mid_run_is_recovered(bot: WeComBot) -> None:
    await bot.bind(LIMING, "李明")
    out = await bot.say(LIMING, "我的农户")
    assert len(out) == 1 and "张桂英" in out[0]
    [old] = bot.fake.issued_tokens
    bot.fake.expire_tokens(40014)

    out = await bot.say(LIMING, "今天去大坝村张桂英家，缺大米一袋")
    assert len(out) >= 1 and any("已记录走访" in t for t in out), out
    assert bot.fake.token_rejections == [(old, 40014)]
    assert bot.fake.gettoken_calls == 2
    assert bot.fake.calls[-1][1] != old
    assert await bot.count(OutboxMessage, OutboxMessage.status != "sent") == 0


# -- `bangfu run` with WeCom only ----------------------------------------------------------------------


WECOM_ENV = {
    "BANGFU_WECOM__ENABLED": "true",
    "BANGFU_WECOM__CORP_ID": "ww0123456789abcdef",
    "BANGFU_WECOM__AGENT_ID": "1000002",
    "BANGFU_WECOM__SECRET": "app-secret",
    "BANGFU_WECOM__TOKEN": "callbackToken",
    "BANGFU_WECOM__AES_KEY": AES_KEY,
    "BANGFU_WECOM__LISTEN": "0.0.0.0:8082",
    "BANGFU_WECOM__ROBOTS": '{"双堡镇工作群": "693a91f6-robot-key"}',
}


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> pytest.MonkeyPatch:
    import os

    for name in list(os.environ):
        if name.startswith("BANGFU_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no ./config.toml
    return monkeypatch


def test_configured_transports_is_wecom_only_from_env(clean_env: pytest.MonkeyPatch) -> None:
    settings = load_settings(environ=dict(WECOM_ENV))
    assert settings.telegram.token is None
    [t] = App(settings).configured_transports()
    assert isinstance(t, WeComTransport) and t.name == "wecom"
    assert t._listen == ("0.0.0.0", 8082)  # noqa: SLF001
    assert t._agent_id == 1000002  # noqa: SLF001
    assert set(t._robots) == {"双堡镇工作群"}  # noqa: SLF001
    assert App(load_settings(environ={})).configured_transports() == []


class _Started(Exception):
    """Raised by the patched App.start: `bangfu run` got as far as starting, nothing ran for real."""


def test_bangfu_run_starts_with_wecom_only(clean_env: pytest.MonkeyPatch) -> None:
    import bot.cli as cli

    started: list[list[str]] = []

    async def fake_start(self: App) -> None:
        started.append([t.name for t in self.configured_transports()])
        raise _Started

    clean_env.setattr(App, "start", fake_start)
    clean_env.setattr(cli, "setup_logging", lambda *a, **k: None)
    res = CliRunner().invoke(cli.main, ["run"], env=WECOM_ENV)
    assert isinstance(res.exception, _Started), (res.exit_code, res.output, res.exception)
    assert "没有配置任何渠道" not in res.output
    assert started == [["wecom"]]

    res = CliRunner().invoke(cli.main, ["run"], env={"BANGFU_WECOM__ENABLED": "false"})
    assert res.exit_code == 2 and "没有配置任何渠道" in res.output
    assert started == [["wecom"]]
