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
BUDGET = {"sqlite": 31, "postgresql": 30}
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
