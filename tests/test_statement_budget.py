"""Statement budget of one visit update: a regression in round trips shows in CI, not months later.

Counts every cursor execute (BEGIN and SAVEPOINT included; COMMIT is a DBAPI call, not a statement) of
the dispatcher handling one visit message, on SQLite and PostgreSQL, after a warm-up message (so the
registry and caches are as in steady state). The outbox's own transactions are counted separately.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event, select

from handlers.types import ChatRef, Incoming
from storage.models import Visit
from tests.harness import make_bot

# The visit transaction (inbox row … outbox row). Lower these when you remove a round trip.
BUDGET = {"sqlite": 20, "postgresql": 19}
# One outbox pass for the card: claim, then mark sent.
OUTBOX_BUDGET = {"sqlite": 8, "postgresql": 8}


class Counter:
    def __init__(self, engine: Any) -> None:
        self.statements: list[str] = []
        event.listen(engine.sync_engine, "before_cursor_execute", self._on)

    def _on(self, _conn: Any, _cur: Any, statement: str, *_: Any) -> None:
        self.statements.append(statement.split("\n", 1)[0][:90])

    def take(self) -> list[str]:
        out, self.statements = self.statements, []
        return out


@pytest.fixture
async def bot(sessionmaker):
    b = await make_bot(sessionmaker)
    await b.bind("u1", "李明")
    return b


def _visit(bot: Any, mid: str, text: str) -> Incoming:
    return Incoming(chat=ChatRef(bot.transport.name, "chat-u1"), sender_id="u1", sender_name="u1",
                    message_id=mid, kind="message", text=text)


async def test_one_visit_stays_within_its_statement_budget(bot, engine):
    dialect = engine.dialect.name
    counter = Counter(engine)
    await bot.dispatcher.handle(_visit(bot, "w1", "今天去高坡村马德忠家，缺大米一袋"))
    await bot.flush()
    counter.take()

    await bot.dispatcher.handle(_visit(bot, "m1", "今天去大坝村张桂英家，缺棉被两床"))
    visit_stmts = counter.take()
    out = await bot.flush()
    outbox_stmts = counter.take()

    assert len(out) == 1 and "已记录走访" in out[0].text and "张桂英" in out[0].text
    async with bot.sm() as s:
        assert len((await s.execute(select(Visit))).scalars().all()) == 2
    listing = "\n".join(visit_stmts)
    assert len(visit_stmts) <= BUDGET[dialect], f"{len(visit_stmts)} statements:\n{listing}"
    assert len(outbox_stmts) <= OUTBOX_BUDGET[dialect], "\n".join(outbox_stmts)


# ---- the caches behind the budget stay correct when another process changes the data ------------------


async def test_sender_cache_follows_changes_made_by_another_process(bot, sessionmaker):
    from storage.models import ChatIdentity, Pairing

    out = await bot.send("u1", "我是谁")
    assert "李明" in out[0].text
    # Another process (its own session, not this dispatcher's) rebinds the account to someone else.
    async with sessionmaker() as s, s.begin():
        ident = (await s.execute(select(ChatIdentity).where(ChatIdentity.external_id == "u1"))).scalar_one()
        ident.person_id = bot.world.people["赵芳"].id
    out = await bot.send("u1", "我是谁")
    assert "赵芳" in out[0].text and "李明" not in out[0].text
    # ... and unpairs a household: it drops out of the sender's scope at once (赵芳 is in 水井村).
    out = await bot.send("u1", "今天去水井村韦国祥家，缺化肥")
    assert "已记录走访" in out[0].text
    async with sessionmaker() as s, s.begin():
        await s.execute(Pairing.__table__.delete())
    out = await bot.send("u1", "今天去水井村韦国祥家，缺化肥")
    # No longer paired: in their own village still, but asked about instead of attached at once.
    assert "已记录走访" not in out[0].text and "韦国祥" in out[0].text and "没有找到" not in out[0].text
    out = await bot.send("u1", "今天去高坡村马德忠家，缺化肥")
    assert "已记录走访" not in out[0].text


async def test_registry_follows_a_household_added_by_another_process(bot, sessionmaker):
    from storage.models import Household

    out = await bot.send("u1", "今天去大坝村罗应奎家，缺化肥")
    assert "没有找到" in out[0].text
    v = bot.world.villages["大坝村"]
    async with sessionmaker() as s, s.begin():
        s.add(Household(natural_key=f"{v.id}||罗应奎", village_id=v.id, unit_id=v.id, head_name="罗应奎",
                        size=4, htype="一般户"))
    out = await bot.send("u1", "今天去大坝村罗应奎家，缺化肥")
    assert "没有找到" not in out[0].text and "罗应奎" in out[0].text and "4口" in out[0].text
