"""`bangfu chat`: the real pipeline (dispatch, handlers, storage, outbox) with a terminal as the channel."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select

from bot.app import App
from bot.config import Settings
from bot.transports.console import ConsoleTransport
from storage.accounts import find_identity
from storage.models import ChatIdentity, Pairing, Person


async def _bind_console(app: App, as_name: str | None) -> Person | None:
    """The terminal user is whoever runs it: they have the database already, so no invite is needed."""
    assert app.sessionmaker is not None
    async with app.sessionmaker() as s, s.begin():
        person: Person | None = None
        if as_name:
            person = (await s.execute(select(Person).where(Person.name == as_name).limit(1))).scalar_one_or_none()
            if person is None:
                return None
        else:
            ident = await find_identity(s, "console", "local")
            if ident is not None:
                return await s.get(Person, ident.person_id)
            q = (select(Person).join(Pairing, Pairing.person_id == Person.id).where(Person.role == "cadre")
                 .group_by(Person.id).order_by(func.count().desc(), Person.id).limit(1))
            person = (await s.execute(q)).scalar_one_or_none()
            if person is None:
                return None
        ident = await find_identity(s, "console", "local")
        if ident is None:
            s.add(ChatIdentity(person_id=person.id, channel="console", external_id="local", chat_id="local",
                               display_name=person.name, bound_at=datetime.now(UTC)))
        else:
            ident.person_id = person.id
        return person


async def chat_main(settings: Settings, as_name: str | None) -> int:
    console = ConsoleTransport(files_dir=__import__("pathlib").Path(settings.app.data_dir) / "console")
    app = App(settings, transports=[console], with_scheduler=False)
    await app.build()
    person = await _bind_console(app, as_name)
    if person is None:
        print("没有可以扮演的干部：数据库里没有这个人。先运行 `bangfu demo`，再用 `bangfu --demo chat` 和演示数据对话；"
              "或先 `bangfu import examples/households_sample.xlsx`，或用 --as 姓名 指定。")
        await app.stop()
        return 2
    print(f"bangfu 终端对话 — 你现在是：{person.name}。输入“帮助”看用法，输入“退出”结束。")
    await app.start()
    try:
        await console.closed.wait()
    finally:
        await app.stop()
    return 0
