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
                    raise LookupError(f"no person named {person_name!r} (import the roster first)")
                if len(people) > 1:
                    raise LookupError(f"{len(people)} people are named {person_name!r}: add --phone")
                code = await create_invite(s, role=role, now=now, person_id=people[0].id, days=days)
                who = person_name
            else:
                units = list((await s.execute(select(OrgUnit).where(OrgUnit.name == unit_name))).scalars())
                if len(units) != 1:
                    raise LookupError(f"unit {unit_name!r} {'not found' if not units else 'is ambiguous'}")
                code = await create_invite(s, role=role, now=now, unit_id=units[0].id, days=days)
                who = f"a new member of {unit_name}"
            s.add(AuditLog(at=now, actor="cli", action="invite.create",
                           detail={"role": role, "person": person_name, "unit": unit_name, "days": days}))
        return code, who
    finally:
        await engine.dispose()
