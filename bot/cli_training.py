"""CLI for trainings: `bangfu course add|list|reopen` and `bangfu roster SESSION_ID -o FILE`.

Each change is one transaction with an audit-log row; the work itself lives in storage/ and handlers/.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from bot.config import Settings

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

T = TypeVar("T")
SESSION_STATUS = {"open": "报名中", "draft": "草稿", "cancelled": "已取消", "closed": "已截止", "done": "已结束"}
# The group's context object (bot.cli.CliState); taken by duck type so that importing this module
# never imports bot.cli, which imports this module to register the commands.
pass_state = click.pass_obj
CliState = Any


def run(coro: Awaitable[T]) -> T:
    async def main() -> T:
        return await coro

    return asyncio.run(main())


async def _in_tx(settings: Settings, fn: Callable[[AsyncSession], Awaitable[T]]) -> T:
    from storage.engine import make_engine, make_sessionmaker, upgrade_async

    await upgrade_async(settings.database.url)
    engine = make_engine(settings.database.url)
    try:
        async with make_sessionmaker(engine)() as s, s.begin():
            return await fn(s)
    finally:
        await engine.dispose()


def _when(value: str | None, settings: Settings, *, end_of_day: bool = False) -> datetime | None:
    """"2026-12-05 09:00" or "2026-12-05" in the deployment's time zone."""
    if not value:
        return None
    try:
        dt = datetime.fromisoformat(value.strip())
    except ValueError:
        raise click.BadParameter(f"{value!r}: use YYYY-MM-DD HH:MM") from None
    if len(value.strip()) == 10 and end_of_day:
        dt = dt.replace(hour=23, minute=59)
    return dt.replace(tzinfo=settings.tz) if dt.tzinfo is None else dt


def _age(value: str | None) -> list[int] | None:
    if not value:
        return None
    try:
        lo, hi = (int(x) for x in value.split("-", 1))
    except ValueError:
        raise click.BadParameter(f"{value!r}: use MIN-MAX, e.g. 18-55") from None
    if lo > hi:
        raise click.BadParameter("age range is backwards")
    return [lo, hi]


@click.group()
def course() -> None:
    """Training courses and sessions (菜单式培训)."""


@course.command("add")
@click.argument("name")
@click.option("--start", required=True, help='"2026-12-05 09:00" (deployment time zone).')
@click.option("--end", default=None, help="Last day or end time, optional.")
@click.option("--place", default="", help="Where it is held.")
@click.option("--capacity", type=click.IntRange(1, 10_000), required=True)
@click.option("--quota-per-village", type=click.IntRange(1, 10_000), default=None)
@click.option("--deadline", default=None, help="Sign-up closes at this time (a bare date: end of that day).")
@click.option("--eligible", default=None, help="Household types, comma-separated: 脱贫户,监测户")
@click.option("--priority", is_flag=True, help="--eligible is a preference (优先), not a requirement.")
@click.option("--age", "age_range", default=None, help="Age range, e.g. 18-55.")
@click.option("--contact", default=None)
@click.option("--organiser", "organiser_name", default=None, help="Person name of the organiser.")
@pass_state
def course_add(state: CliState, name: str, start: str, end: str | None, place: str, capacity: int,
               quota_per_village: int | None, deadline: str | None, eligible: str | None, priority: bool,
               age_range: str | None, contact: str | None, organiser_name: str | None) -> None:
    """Create a session of course NAME (the course is created if new); prints its id and check-in code."""
    from sqlalchemy import select

    from storage.models import HOUSEHOLD_TYPES, AuditLog, Person
    from storage.trainings import create_session

    settings = state.settings
    starts = _when(start, settings)
    assert starts is not None
    if starts <= datetime.now(UTC):
        # A session in the past could never be signed up for and would not show in `course list`.
        click.echo(f"错误：开始时间 {starts:%Y-%m-%d %H:%M} 已经过去，培训只能排在以后", err=True)
        sys.exit(2)
    el: dict[str, Any] = {}
    if eligible:
        types = [t.strip() for t in eligible.replace("，", ",").split(",") if t.strip()]
        bad = [t for t in types if t not in HOUSEHOLD_TYPES]
        if bad:
            raise click.BadParameter(f"unknown household type(s) {bad}; known: {', '.join(HOUSEHOLD_TYPES)}")
        el = {"htypes": types, "priority": priority}
    if (age := _age(age_range)) is not None:
        el["age"] = age

    async def go(s: AsyncSession) -> tuple[int, str]:
        now = datetime.now(UTC)
        org_id = None
        if organiser_name:
            people = list((await s.execute(select(Person).where(Person.name == organiser_name))).scalars())
            if len(people) != 1:
                raise click.ClickException(f"organiser {organiser_name!r} {'not found' if not people else 'ambiguous'}")
            org_id = people[0].id
        ts = await create_session(
            s, course_name=name, starts_at=starts, ends_at=_when(end, settings, end_of_day=True), now=now,
            place=place, capacity=capacity, village_quota=quota_per_village,
            deadline=_when(deadline, settings, end_of_day=True), eligibility=el, organiser_id=org_id,
            contact=contact)
        s.add(AuditLog(at=now, actor="cli", action="training.session.create",
                       detail={"session": ts.id, "course": name, "capacity": capacity}))
        return ts.id, ts.checkin_code or ""

    sid, code = run(_in_tx(settings, go))
    click.echo(f"已创建培训场次 {sid}：{name}，{starts:%Y-%m-%d %H:%M}，名额 {capacity}；签到码 {code}")


@course.command("list")
@click.option("--all", "show_all", is_flag=True, help="Include past, draft and cancelled sessions.")
@pass_state
def course_list(state: CliState, show_all: bool) -> None:
    """Sessions with seats taken, waitlist and deadline."""
    from storage.trainings import list_sessions, seat_counts

    settings = state.settings

    async def go(s: AsyncSession) -> list[str]:
        now = datetime.now(UTC)
        out = []
        for ts in await list_sessions(s, now=None if show_all else now, status=None if show_all else "open"):
            c = await seat_counts(s, ts=ts)
            dl = f"，{ts.deadline.astimezone(settings.tz):%Y-%m-%d %H:%M} 截止报名" if ts.deadline else ""
            quota = f"，每村限 {ts.village_quota} 人" if ts.village_quota else ""
            closed = "，已停止报名" if ts.closed else ""
            status = SESSION_STATUS.get(ts.status, ts.status)
            out.append(f"{ts.id:>5}  {ts.starts_at.astimezone(settings.tz):%Y-%m-%d %H:%M}  {ts.course.name}  "
                       f"@{ts.place or '-'}  已报 {c.taken}/{c.capacity}，候补 {c.waitlisted}"
                       f"{quota}{dl}  [{status}{closed}] 签到码 {ts.checkin_code}")
        return out

    lines = run(_in_tx(settings, go))
    click.echo("\n".join(lines) if lines else "没有培训场次")


@course.command("reopen")
@click.argument("session_id", type=int)
@click.option("--until", default=None, help="New deadline (default: none, open until the start).")
@pass_state
def course_reopen(state: CliState, session_id: int, until: str | None) -> None:
    """Reopen sign-up of a session closed by hand or by its deadline."""
    from storage.models import AuditLog
    from storage.trainings import set_open

    settings = state.settings
    new_deadline = _when(until, settings, end_of_day=True)

    async def go(s: AsyncSession) -> str:
        try:
            ts = await set_open(s, ts_id=session_id, open_=True, until=new_deadline)
        except LookupError as e:
            raise click.ClickException(str(e)) from None
        s.add(AuditLog(at=datetime.now(UTC), actor="cli", action="training.session.reopen",
                       detail={"session": session_id, "until": until}))
        return ts.course.name

    name = run(_in_tx(settings, go))
    click.echo(f"session {session_id} ({name}) open for sign-up" + (f" until {new_deadline}" if new_deadline else ""))


@click.command("roster")
@click.argument("session_id", type=int)
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), required=True)
@click.option("--full-phones", is_flag=True, help="Write phone numbers unmasked (for the organiser).")
@pass_state
def roster(state: CliState, session_id: int, output: str, full_phones: bool) -> None:
    """Write a session's roster (姓名, 村, 户, 电话, 状态) to an .xlsx file. ID numbers are never exported."""
    from handlers.trainings import roster_xlsx
    from storage.models import AuditLog

    async def go(s: AsyncSession) -> tuple[bytes, int]:
        try:
            _, data, n = await roster_xlsx(s, session_id, full_phones=full_phones)
        except LookupError as e:
            raise click.ClickException(str(e)) from None
        s.add(AuditLog(at=datetime.now(UTC), actor="cli", action="training.roster.export",
                       detail={"session": session_id, "full_phones": full_phones, "rows": n}))
        return data, n

    data, n = run(_in_tx(state.settings, go))
    Path(output).write_bytes(data)
    click.echo(f"{n} rows written to {output}" + ("" if full_phones else " (phones masked)"))


COMMANDS: list[click.Command] = [course, roster]
