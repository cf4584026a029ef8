"""A whole bot on a test database: dispatcher + outbox + transcript transport, with a small registry.

Handlers are driven with neutral `Incoming`s; replies are read from the transcript.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.dispatch import Dispatcher
from bot.outbox import Outbox
from bot.transports.base import OutMessage
from handlers.context import Prefs
from handlers.types import Attachment, ChatRef, Incoming
from storage.accounts import create_invite
from storage.models import ChatIdentity, Household, OrgUnit, Pairing, Person
from tests.conftest import TZ, FixedClock
from tests.fakes.transcript import TranscriptTransport


async def add_unit(s: AsyncSession, name: str, level: str, parent: OrgUnit | None) -> OrgUnit:
    u = OrgUnit(name=name, level=level, parent_id=parent.id if parent else None, path="")
    s.add(u)
    await s.flush()
    u.path = (parent.path if parent else "/") + f"{u.id}/"
    await s.flush()
    return u


@dataclass
class World:
    district: OrgUnit
    township: OrgUnit
    villages: dict[str, OrgUnit]
    people: dict[str, Person]
    households: dict[str, Household]


async def seed_world(sm: async_sessionmaker[AsyncSession]) -> World:
    """西秀区 › 双堡镇 › 大坝村 / 高坡村, two cadres, a supervisor, an admin, and a few households
    (two 王德明 in different villages, to force a choice)."""
    async with sm() as s, s.begin():
        d = await add_unit(s, "西秀区", "district", None)
        t = await add_unit(s, "双堡镇", "township", d)
        t2 = await add_unit(s, "旧州镇", "township", d)
        dab = await add_unit(s, "大坝村", "village", t)
        gp = await add_unit(s, "高坡村", "village", t)
        sj = await add_unit(s, "水井村", "village", t2)
        people = {
            "李明": Person(natural_key="李明|13800000001", name="李明", phone="13800000001", role="cadre", unit_id=dab.id),
            "赵芳": Person(natural_key="赵芳|13800000002", name="赵芳", phone="13800000002", role="cadre", unit_id=sj.id),
            "周督查": Person(natural_key="周督查|x", name="周督查", role="supervisor", unit_id=t.id),
            "管理员": Person(natural_key="管理员|x", name="管理员", role="admin", unit_id=d.id),
        }
        s.add_all(people.values())
        await s.flush()

        def hh(name: str, v: OrgUnit, size: int, htype: str = "脱贫户", phone: str | None = None) -> Household:
            return Household(natural_key=f"{v.id}||{name}", village_id=v.id, unit_id=v.id, head_name=name,
                             size=size, htype=htype, phone=phone, id_number="520402198001011234")

        hs = {
            "王德明@大坝村": hh("王德明", dab, 5, phone="13912345678"),
            "王德明@高坡村": hh("王德明", gp, 3),
            "马德忠": hh("马德忠", gp, 4, "监测户"),
            "张桂英": hh("张桂英", dab, 2),
            "韦国祥": hh("韦国祥", sj, 3),
        }
        s.add_all(hs.values())
        await s.flush()
        for key in ("王德明@大坝村", "王德明@高坡村", "马德忠", "张桂英"):
            s.add(Pairing(person_id=people["李明"].id, household_id=hs[key].id))
        s.add(Pairing(person_id=people["赵芳"].id, household_id=hs["韦国祥"].id))
        return World(d, t, {"大坝村": dab, "高坡村": gp, "水井村": sj}, people, hs)


@dataclass
class Bot:
    sm: async_sessionmaker[AsyncSession]
    clock: FixedClock
    transport: TranscriptTransport
    dispatcher: Dispatcher
    outbox: Outbox
    world: World
    _ids: Any = field(default_factory=lambda: itertools.count(1))
    sent_index: int = 0

    def chat(self, user: str) -> ChatRef:
        return ChatRef(self.transport.name, f"chat-{user}")

    async def bind(self, user: str, person: str) -> None:
        async with self.sm() as s, s.begin():
            s.add(ChatIdentity(person_id=self.world.people[person].id, channel=self.transport.name,
                               external_id=user, chat_id=f"chat-{user}", display_name=person,
                               bound_at=self.clock.now()))

    async def invite(self, person: str, role: str = "cadre") -> str:
        async with self.sm() as s, s.begin():
            return await create_invite(s, role=role, now=self.clock.now(), person_id=self.world.people[person].id)

    async def send(self, user: str, text: str = "", *, reply_to: str | None = None, kind: str = "message",
                   callback: str | None = None, message_id: str | None = None,
                   attachments: tuple[Attachment, ...] = (), dedup_key: str | None = None) -> list[OutMessage]:
        mid = message_id or str(next(self._ids))
        inc = Incoming(chat=self.chat(user), sender_id=user, sender_name=user, message_id=mid, kind=kind,  # type: ignore[arg-type]
                       text=text, callback_data=callback, reply_to_message_id=reply_to,
                       attachments=attachments, dedup_key=dedup_key or (f"cb:{mid}" if callback else None))
        await self.dispatcher.handle(inc)
        return await self.flush()

    async def press(self, user: str, msg: OutMessage, label_part: str) -> list[OutMessage]:
        btn = next(b for row in msg.buttons for b in row if label_part in b.text)
        return await self.send(user, kind="callback", callback=btn.data, reply_to=self.message_id_of(msg))

    def message_id_of(self, msg: OutMessage) -> str:
        idx = next(i for i, m in enumerate(self.transport.sent) if m is msg)
        return str(1000 + idx)

    async def flush(self) -> list[OutMessage]:
        await self.outbox.drain(timeout=10)
        new = self.transport.sent[self.sent_index:]
        self.sent_index = len(self.transport.sent)
        return new

    async def count(self, model: Any, *where: Any) -> int:
        async with self.sm() as s:
            return int((await s.execute(select(func.count()).select_from(model).where(*where))).scalar_one())


async def make_bot(sm: async_sessionmaker[AsyncSession], *, transport: TranscriptTransport | None = None,
                   now: datetime | None = None, per_minute: int = 1000) -> Bot:
    clock = FixedClock(now or datetime(2026, 11, 25, 10, 0, tzinfo=TZ))
    transport = transport or TranscriptTransport()
    world = await seed_world(sm)
    outbox = Outbox(sm, {transport.name: transport})
    dispatcher = Dispatcher(sm, Prefs(tz=TZ), clock=clock,
                            inline_buttons={transport.name: transport.capabilities.inline_buttons},
                            user_messages_per_minute=per_minute, on_outbox=outbox.notify)
    return Bot(sm, clock, transport, dispatcher, outbox, world)
