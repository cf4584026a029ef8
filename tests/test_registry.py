"""storage.registry: org paths and subtree queries, bulk upserts by natural key, pairing sync, masking."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from storage import registry
from storage.models import Household, OrgUnit, Pairing, Person


async def _tree(session):
    d = await registry.get_or_create_unit(session, name="西秀区", level="district", parent=None)
    t1 = await registry.get_or_create_unit(session, name="双堡镇", level="township", parent=d)
    t2 = await registry.get_or_create_unit(session, name="旧州镇", level="township", parent=d)
    v1 = await registry.get_or_create_unit(session, name="大坝村", level="village", parent=t1)
    v2 = await registry.get_or_create_unit(session, name="大坝村", level="village", parent=t2)
    g1 = await registry.get_or_create_unit(session, name="一组", level="group", parent=v1)
    return d, t1, t2, v1, v2, g1


async def test_paths_and_subtree(session):
    d, t1, t2, v1, v2, g1 = await _tree(session)
    assert d.path == f"/{d.id}/"
    assert g1.path == f"/{d.id}/{t1.id}/{v1.id}/{g1.id}/"
    assert await registry.subtree_unit_ids(session, t1.id) == sorted([t1.id, v1.id, g1.id])
    assert await registry.subtree_unit_ids(session, d.id) == sorted(u.id for u in (d, t1, t2, v1, v2, g1))
    assert await registry.subtree_unit_ids(session, v2.id) == [v2.id]
    assert await registry.subtree_unit_ids(session, 999_999) == []
    # Same name, same parent: the same row, not a second one.
    again = await registry.get_or_create_unit(session, name="一组", level="group", parent=v1)
    assert again.id == g1.id
    assert await session.scalar(select(func.count()).select_from(OrgUnit)) == 6


async def test_prefix_does_not_match_longer_ids(session):
    # "/1/5/" must not select "/1/50/": the boundary is the slash, whatever ids the database hands out.
    session.add_all([
        OrgUnit(name="a", level="township", path="/1/5/"),
        OrgUnit(name="b", level="village", path="/1/5/7/"),
        OrgUnit(name="c", level="township", path="/1/50/"),
        OrgUnit(name="d", level="township", path="/1/"),
    ])
    await session.flush()
    names = (await session.scalars(
        select(OrgUnit.name).where(registry.path_prefix(OrgUnit.path, "/1/5/")).order_by(OrgUnit.name)
    )).all()
    assert names == ["a", "b"]
    with pytest.raises(ValueError):
        registry.path_prefix(OrgUnit.path, "/1/5")


async def test_in_subtree_filters_households(session):
    d, t1, t2, v1, v2, g1 = await _tree(session)
    session.add_all([
        Household(natural_key="k1", village_id=v1.id, unit_id=g1.id, head_name="王德明"),
        Household(natural_key="k2", village_id=v2.id, unit_id=v2.id, head_name="李秀英"),
    ])
    await session.flush()
    assert [h.head_name for h in await registry.households_in_unit(session, t1)] == ["王德明"]
    assert [h.head_name for h in await registry.households_in_unit(session, t2)] == ["李秀英"]
    assert len(await registry.households_in_unit(session, d)) == 2
    assert [h.head_name for h in await registry.households_by_village(session, v1.id)] == ["王德明"]
    hits = await registry.find_households_by_head(session, "李秀英", within=t1)
    assert hits == []


async def test_find_units_by_name_and_path(session):
    _d, _t1, _t2, v1, v2, _g1 = await _tree(session)
    both = await registry.find_units_by_name(session, "大坝村")
    assert {u.id for u in both} == {v1.id, v2.id}
    assert [u.id for u in await registry.find_units_by_name(session, "旧州镇/大坝村")] == [v2.id]
    assert [u.id for u in await registry.find_units_by_name(session, "西秀区/双堡镇/大坝村")] == [v1.id]
    assert await registry.find_units_by_name(session, "旧州镇/一组") == []
    assert await registry.find_units_by_name(session, "没有这个村") == []
    assert registry.unit_label(v2, await registry.unit_ancestors(session, v2)) == "旧州镇/大坝村"


async def test_ensure_units_bulk_matches_single(session):
    d, t1, *_ = await _tree(session)
    res = await registry.ensure_units(session, [
        ("西秀区", "双堡镇", "大坝村", "一组"),  # exists
        ("西秀区", "双堡镇", "大坝村", "二组"),
        ("西秀区", "宁谷镇", "水井村"),
    ])
    assert res.created == 3  # 二组, 宁谷镇, 水井村
    units = {u.id: u for u in (await session.scalars(select(OrgUnit))).all()}
    g2 = units[res.ids[("西秀区", "双堡镇", "大坝村", "二组")]]
    v1 = units[res.ids[("西秀区", "双堡镇", "大坝村")]]
    assert g2.parent_id == v1.id and g2.level == "group" and g2.path == f"{v1.path}{g2.id}/"
    sj = units[res.ids[("西秀区", "宁谷镇", "水井村")]]
    assert sj.level == "village" and sj.path.startswith(d.path) and sj.path.endswith(f"/{sj.id}/")
    again = await registry.ensure_units(session, [("西秀区", "宁谷镇", "水井村")])
    assert again.created == 0 and again.ids[("西秀区", "宁谷镇", "水井村")] == sj.id
    assert t1.id in await registry.subtree_unit_ids(session, d.id)


async def test_upsert_households_compares_values(session):
    _d, _t1, _t2, v1, _v2, g1 = await _tree(session)
    rows = [
        {"natural_key": registry.household_key(v1.id, "一组", "王德明"), "village_id": v1.id, "unit_id": g1.id,
         "head_name": "王德明", "size": 4, "htype": "脱贫户", "phone": "13812345678"},
        {"natural_key": registry.household_key(v1.id, None, "李秀英"), "village_id": v1.id, "unit_id": v1.id,
         "head_name": "李秀英", "size": 2},
    ]
    first = await registry.upsert_households(session, rows)
    assert (first.counts.created, first.counts.updated, first.counts.unchanged) == (2, 0, 0)
    assert set(first.ids) == {f"{v1.id}|一组|王德明", f"{v1.id}||李秀英"}
    stamp = datetime(2020, 1, 1, tzinfo=UTC)
    for h in (await session.scalars(select(Household))).all():
        h.updated_at = stamp
    await session.flush()

    same = await registry.upsert_households(session, rows)
    assert (same.counts.created, same.counts.updated, same.counts.unchanged) == (0, 0, 2)
    assert same.ids == first.ids

    changed = [dict(rows[0], size=5), {k: v for k, v in rows[1].items() if k != "size"}]
    res = await registry.upsert_households(session, changed)
    assert (res.counts.updated, res.counts.unchanged) == (1, 1)
    session.expire_all()
    by_name = {h.head_name: h for h in (await session.scalars(select(Household))).all()}
    assert by_name["王德明"].size == 5 and by_name["王德明"].updated_at > stamp
    assert by_name["李秀英"].size == 2  # absent key: left alone
    assert by_name["李秀英"].updated_at == stamp and by_name["李秀英"].htype == "一般户"


async def test_upsert_people_keeps_granted_roles(session):
    _d, _t1, _t2, v1, *_ = await _tree(session)
    session.add(Person(natural_key="赵强|13900001111", name="赵强", phone="13900001111", role="admin"))
    await session.flush()
    res = await registry.upsert_people(session, [
        {"natural_key": "赵强|13900001111", "name": "赵强", "phone": "13900001111", "role": "cadre",
         "title": "科员"},
        {"natural_key": "钱华|区财政局", "name": "钱华", "phone": None, "role": "secretary", "unit_id": v1.id,
         "level": "department"},
    ])
    assert (res.counts.created, res.counts.updated) == (1, 1)
    people = {p.name: p for p in (await session.scalars(select(Person))).all()}
    assert people["赵强"].role == "admin" and people["赵强"].title == "科员"
    assert people["钱华"].role == "secretary" and people["钱华"].unit_id == v1.id
    assert [p.id for p in await registry.find_people_by_name(session, "钱华")] == [res.ids["钱华|区财政局"]]


async def test_sync_pairings_replaces_only_listed_households(session):
    _d, _t1, _t2, v1, _v2, _g1 = await _tree(session)
    hs = [Household(natural_key=f"h{i}", village_id=v1.id, unit_id=v1.id, head_name=f"户{i}") for i in range(3)]
    ps = [Person(natural_key=f"p{i}", name=f"干部{i}") for i in range(3)]
    session.add_all(hs + ps)
    await session.flush()
    c = await registry.sync_pairings(session, {hs[0].id: [ps[0].id], hs[1].id: [ps[0].id, ps[1].id],
                                               hs[2].id: [ps[2].id]})
    assert (c.created, c.removed, c.unchanged) == (4, 0, 0)
    # hs[1] moves to ps[2] only; hs[2] is not in this call and keeps ps[2].
    c = await registry.sync_pairings(session, {hs[0].id: [ps[0].id], hs[1].id: [ps[2].id]})
    assert (c.created, c.removed, c.unchanged) == (1, 2, 1)
    pairs = set((await session.execute(select(Pairing.person_id, Pairing.household_id))).all())
    assert pairs == {(ps[0].id, hs[0].id), (ps[2].id, hs[1].id), (ps[2].id, hs[2].id)}
    assert {h.id for h in await registry.households_by_cadre(session, ps[2].id)} == {hs[1].id, hs[2].id}
    assert await registry.pair(session, person_id=ps[1].id, household_id=hs[0].id) is True
    assert await registry.pair(session, person_id=ps[1].id, household_id=hs[0].id) is False


def test_natural_keys():
    assert registry.person_key("张三", "13812345678", "区财政局") == "张三|13812345678"
    assert registry.person_key("张三", None, "区财政局") == "张三|区财政局"
    assert registry.person_key("张三") == "张三|"
    assert registry.household_key(7, None, "王德明") == "7||王德明"
    assert registry.household_key(7, "一组", "王德明") == "7|一组|王德明"


def test_masking():
    assert registry.mask_phone("13812345678") == "138****5678"
    assert registry.mask_phone("+86 138-1234-5678") == "138****5678"
    assert registry.mask_phone("0851-3312345") == "0851-***2345"
    assert registry.mask_phone(None) == "" and registry.mask_phone("110") == "****"
    assert registry.mask_id_number("52040219900101123X") == "520***********123X"
    assert registry.mask_id_number("") == ""
    text = registry.mask_personal_text("王德明电话13812345678，身份证52040219900101123X，家有5口人")
    assert "13812345678" not in text and "52040219900101123X" not in text
    assert "138****5678" in text and "520***********123X" in text and "5口人" in text


def test_id_checksum():
    assert registry.is_valid_id_number("11010519491231002X")
    assert registry.is_valid_id_number("11010519491231002x")
    assert not registry.is_valid_id_number("110105194912310021")
    assert not registry.is_valid_id_number("1101051949123100")
    first17 = "52049919800101123"
    assert registry.is_valid_id_number(first17 + registry.id_check_char(first17))
