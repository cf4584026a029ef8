"""Administrative actions run from the CLI (invites), each recorded in the audit log."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from bot.config import Settings
from storage.accounts import create_invite
from storage.engine import make_engine, make_sessionmaker, upgrade_async
from storage.models import AuditLog, OrgUnit, Person


async def make_invite(settings: Settings, *, role: str, person_name: str | None, phone: str | None,
                      unit_name: str | None, days: int = 7) -> tuple[str, str]:
    await upgrade_async(settings.database.url)
    engine = make_engine(settings.database.url)
    try:
        async with make_sessionmaker(engine)() as s, s.begin():
            now = datetime.now(UTC)
            if person_name:
                q = select(Person).where(Person.name == person_name)
                if phone:
                    q = q.where(Person.phone == phone)
                people = list((await s.execute(q)).scalars())
                if not people:
                    raise LookupError(f"找不到名叫 {person_name} 的人（请先导入花名册）")
                if len(people) > 1:
                    raise LookupError(f"有 {len(people)} 个人叫 {person_name}：请加 --phone 区分")
                code = await create_invite(s, role=role, now=now, person_id=people[0].id, days=days)
                who = person_name
            else:
                units = list((await s.execute(select(OrgUnit).where(OrgUnit.name == unit_name))).scalars())
                if len(units) != 1:
                    raise LookupError(f"单位 {unit_name} {'不存在' if not units else '有重名，请写全（例如 旧州镇/大坝村）'}")
                code = await create_invite(s, role=role, now=now, unit_id=units[0].id, days=days)
                who = f"a new member of {unit_name}"
            s.add(AuditLog(at=now, actor="cli", action="invite.create",
                           detail={"role": role, "person": person_name, "unit": unit_name, "days": days}))
        return code, who
    finally:
        await engine.dispose()
