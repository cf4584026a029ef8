"""Numeral reading and household-size rules."""

from __future__ import annotations

import pytest

from handlers.text import parse
from handlers.text._entities import find_sizes
from handlers.text._numbers import parse_number

from .conftest import NOW


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        ("3000", 3000), ("两", 2), ("三", 3), ("十二", 12), ("二十", 20), ("八十", 80), ("3万2", 32000),
        ("一万五", 15000), ("两万", 20000), ("一千五", 1500), ("三百二", 320), ("一百零五", 105), ("1.5", 1.5),
        ("半", 0.5), ("二〇二六", 2026),
    ],
)
def test_parse_number(raw: str, value: float) -> None:
    assert parse_number(raw) == value


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("韦国祥 3口 水窖漏了", 3), ("马德忠家，4口人", 4), ("一家五口", 5), ("三口人", 3), ("老两口都挺好", 2),
        ("独居，80岁", 1), ("5口人", 5), ("家里六口", 6), ("人口 5", 5),
    ],
)
def test_household_size(text: str, size: int) -> None:
    assert [s.value for s in find_sizes(text)][-1] == size


def test_size_correction_and_false_friends() -> None:
    assert [s.value for s in find_sizes("韦国祥家不是3口 是4口")] == [4]
    assert find_sizes("家里打了两口井") == []
    assert parse("刚才说错了 韦国祥家不是3口 是4口", NOW)["household_size"] == 4


def test_need_quantities_in_context() -> None:
    r = parse("今天去青山组杨光明家送了两床棉被、一袋大米", NOW)
    assert [(n["qty"], n["unit"], n["status"]) for n in r["needs"]] == [(2, "床", "met"), (1, "袋", "met")]
    r = parse("昨天去河边村冯玉梅家，医药费一万五还没报", NOW)
    assert r["needs"][0]["category"] == "医疗" and r["needs"][0]["qty"] == 15000
    r = parse("前天电话回访大坪村吴秀珍，住院花了3万2，医保还没报", NOW)
    assert any(n.get("qty") == 32000 for n in r["needs"])
