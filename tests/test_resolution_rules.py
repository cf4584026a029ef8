"""The rules behind household resolution on the township fixture: the lookup area of each kind of person, one
area query for all candidates, and no way to add a household that already exists (not even after 都不是)."""

from __future__ import annotations

from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.resolver import get_registry, resolve_written
from storage.accounts import in_area, lookup_area
from storage.models import Household, OrgUnit, Person, Visit
from storage.registry import pair
from tests.resolution_world import seed_township
from tests.test_resolution_cases import add_offered, make_township_bot, picks


async def test_lookup_area_per_person(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    tw = await seed_township(sessionmaker)
    async with sessionmaker() as s:
        all_ids = list((await s.execute(select(Household.id))).scalars())
        town = tw.world.township

        async def area_of(name: str) -> set[int]:
            person = await s.get(Person, tw.world.people[name].id)
            assert person is not None
            return await in_area(s, await lookup_area(s, person), all_ids)

        shuangbao = set((await s.execute(select(Household.id).join(OrgUnit, OrgUnit.id == Household.village_id)
                                         .where(OrgUnit.path.startswith(town.path)))).scalars())
        assert len(shuangbao) == 160
        # a village cadre and a township cadre: their township, whatever their pairing
        assert await area_of("李明") == shuangbao
        assert await area_of("陈刚") == shuangbao
        # a county-bureau cadre: only the townships of their pairings, not the whole district
        assert await area_of("周局长") == shuangbao
        # the other township's cadre never sees 双堡镇
        zhao = await area_of("赵芳")
        assert zhao and not zhao & shuangbao
        admin = Person(natural_key="admin|t", name="管理员", role="admin", unit_id=tw.world.district.id)
        sup = Person(natural_key="sup|t", name="督查", role="supervisor", unit_id=tw.world.district.id)
        s.add_all([admin, sup])
        await s.flush()
        assert await in_area(s, await lookup_area(s, admin), all_ids) == set(all_ids)
        assert await in_area(s, await lookup_area(s, sup), all_ids) == set(all_ids)
        # pairing with one household of the other township brings that township in
        await pair(s, person_id=tw.world.people["李明"].id, household_id=tw.ids["赵永贵"])
        assert await area_of("李明") == shuangbao | zhao


async def test_one_area_query_for_all_candidates(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    tw = await seed_township(sessionmaker)
    async with sessionmaker() as s:
        person = await s.get(Person, tw.world.people["李明"].id)
        assert person is not None
        area = await lookup_area(s, person)
        reg = await get_registry(s)
        statements: list[str] = []

        def count(conn, cursor, statement, *args):  # type: ignore[no-untyped-def]
            statements.append(statement)

        engine = s.get_bind()
        event.listen(engine, "before_cursor_execute", count)
        try:
            # 老王: every 王 household of both townships is a candidate, one query sorts out the area
            res = await resolve_written(s, reg, "老王", area=area, paired={tw.ids["王德明@大坝"]}, village=None,
                                        home_village="大坝村", year=2026)
        finally:
            event.remove(engine, "before_cursor_execute", count)
        assert len(res.options) > 3 and res.options[0] == tw.ids["王德明@大坝"]
        assert len(statements) == 1, statements


async def test_none_of_these_never_offers_to_add_an_existing_name(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    bot, tw = await make_township_bot(sessionmaker)
    await bot.bind("u1", "李明")
    out = await bot.send("u1", "今天去张桂英家，缺化肥")
    ask = next(m for m in out if picks(m))
    assert {h for h, _ in picks(ask)} == {tw.ids["张桂英@新寨"], tw.ids["张桂英@鲍屯"]}
    out = await bot.press("u1", ask, "都不是")
    assert not add_offered(out) and "不能重复添加" in out[0].text
    # a forged add button for the same entry is refused too
    entry_id = int(ask.buttons[0][0].data.split(":")[1])
    out = await bot.send("u1", kind="callback", callback=f"add:{entry_id}:0")
    assert "不能重复添加" in out[0].text
    assert await bot.count(Household, Household.head_name == "张桂英") == 2
    out = await bot.press("u1", (await bot.send("u1", kind="callback", callback=f"pk:{entry_id}:0:0"))[0],
                          "不记这一户")
    assert "没有记成走访" in out[0].text and await bot.count(Visit) == 0


async def test_confirming_tap_records_a_colleagues_household(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    bot, tw = await make_township_bot(sessionmaker)
    await bot.bind("u1", "李明")
    out = await bot.send("u1", "今天去韦国祥家，缺棉被")
    ask = next(m for m in out if picks(m))
    assert "是这一户吗" in ask.text and "鲍屯村一组" in ask.text
    assert picks(ask)[0][0] == tw.ids["韦国祥"]
    assert "旧州镇" not in ask.text and "水井村" not in ask.text  # the other township's namesake stays hidden
    assert await bot.count(Visit) == 0
    out = await bot.press("u1", ask, "是 ")
    assert "已记录走访" in out[0].text
    async with sessionmaker() as s:
        assert (await s.execute(select(Visit.household_id))).scalar_one() == tw.ids["韦国祥"]


async def test_a_colleagues_household_gets_no_registry_proposal(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    from storage.models import RegistryChange

    bot, tw = await make_township_bot(sessionmaker)
    await bot.bind("u1", "李明")
    out = await bot.send("u1", "今天去潘志强家，6口人，缺化肥")  # 陈刚's household, registered with 3
    out = await bot.press("u1", next(m for m in out if picks(m)), "是 ")
    assert "已记录走访" in out[0].text
    assert await bot.count(RegistryChange) == 0
    out = await bot.send("u1", "今天去张国华家，6口人，缺米")  # his own, registered with 5: proposed
    assert "已记录走访" in out[0].text
    assert await bot.count(RegistryChange, RegistryChange.household_id == tw.ids["张国华"]) == 1


async def test_kin_words_are_never_new_households(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    tw = await seed_township(sessionmaker)
    async with sessionmaker() as s:
        person = await s.get(Person, tw.world.people["李明"].id)
        assert person is not None
        area, reg = await lookup_area(s, person), await get_registry(s)
        kw = {"area": area, "paired": set(), "village": None, "home_village": "大坝村", "year": 2026}
        assert (await resolve_written(s, reg, "何文祥他妈", **kw)).options == (tw.ids["何文祥"],)
        for written in ("吴小花他妈", "老蒙", "韦老师"):  # nobody of that name or surname in the area; a title
            res = await resolve_written(s, reg, written, **kw)
            assert res.outcome == "none" and res.exists, (written, res)
        assert (await resolve_written(s, reg, "吴小花", **kw)).outcome == "new"
