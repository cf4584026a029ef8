"""The schema migrates on both databases and round-trips aware datetimes and JSON."""

from datetime import UTC, date, datetime

from sqlalchemy import select

from storage.models import Entry, Household, OrgUnit, Person


async def test_roundtrip(session):
    d = OrgUnit(name="西秀区", level="district", path="")
    session.add(d)
    await session.flush()
    v = OrgUnit(name="大坝村", level="village", parent_id=d.id, path="")
    session.add(v)
    await session.flush()
    p = Person(natural_key="张三|138", name="张三", role="cadre", unit_id=v.id)
    h = Household(natural_key="x", village_id=v.id, unit_id=v.id, head_name="王德明", size=5)
    session.add_all([p, h])
    await session.flush()
    e = Entry(source_key="k1", person_id=p.id, channel="console", chat_id="c", raw_text="今天",
              parse={"needs": [{"item": "棉被", "qty": 2}]})
    session.add(e)
    await session.commit()
    got = (await session.execute(select(Entry))).scalar_one()
    assert got.parse["needs"][0]["item"] == "棉被"
    assert got.created_at.tzinfo is not None
    assert abs((datetime.now(UTC) - got.created_at).total_seconds()) < 60
    _ = date
