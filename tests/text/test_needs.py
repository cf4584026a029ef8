"""Need-category rules (one per README category), status, follow-ups and generalisation examples."""

from __future__ import annotations

from typing import Any

import pytest

from handlers.text import parse

from .conftest import NOW


def cats(r: dict[str, Any]) -> list[Any]:
    return [n["category"] for n in r["needs"]]


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("昨天去岩脚村罗德才家，房子后墙裂了条大缝，想申请危房改造", "住房"),
        ("今天去沙坝村谢长林家，自来水管冻裂了没水吃", "饮水"),
        ("今天去茶园村邓丽萍家，儿子的住宿费想问问能不能减免", "教育"),
        ("前天电话回访大坪村吴秀珍，她的慢病卡还没办下来", "医疗"),
        ("今天去白岩村张小平家，他想找个公益性岗位", "就业"),
        ("给红岩村苏文斌家送了三袋复合肥", "产业"),
        ("今天去高坡村孙光辉家，冬天烤火煤不够", "生活物资"),
        ("今天去田坝村赵明亮家，低保还没批下来", "兜底保障"),
        ("今天院坝会在联合村开的，有群众反映通组路垮了", "其他"),
    ],
)
def test_category_rules(text: str, category: str) -> None:
    assert cats(parse(text, NOW)) == [category]


def test_assistive_device_is_ambiguous() -> None:
    r = parse("礼拜三去看了何家坪村何文军，腿摔断了，要个拐杖", NOW)
    cat = r["needs"][0]["category"]
    assert cat["ambiguous"] is True and set(cat["candidates"]) == {"医疗", "生活物资"}
    assert r["needs"][0]["qty"] == 1


def test_condition_alone_is_not_a_need() -> None:
    assert parse("水井村姜德全 糖尿病 两个老人一个残疾", NOW)["needs"] == []
    assert parse("二十号那天去茶园村看了龚小红，屋顶刚翻修过，没啥问题", NOW)["needs"] == []


def test_status_met_and_resolved_later() -> None:
    assert parse("11.18 入户 龙潭村 陈德华 缺化肥5袋 已解决", NOW)["needs"][0]["status"] == "met"
    assert parse("上礼拜三到龙井村田光荣家，电线老化，已经叫电工换好了", NOW)["needs"][0]["status"] == "met"
    assert parse("大前天电话回访茶园村郑玉兰 厕所改造的钱还没拨下来", NOW)["needs"][0]["status"] == "open"


def test_needs_per_household() -> None:
    r = parse("高坡村孙光辉、马小琴两家都说冬天烤火煤不够，每家要半吨", NOW)
    assert [(n["household"], n["qty"], n["unit"]) for n in r["needs"]] == [("孙光辉", 0.5, "吨"), ("马小琴", 0.5, "吨")]
    r = parse("大前天去了坪上村，走了三户：周正华 5口 缺棉衣；罗小芳 独居 要低保；孙德兵 3口 正常", NOW)
    assert r["household_head"] == ["周正华", "罗小芳", "孙德兵"]
    assert r["household_size"] == [5, 1, 3]
    assert [(n["household"], n["category"]) for n in r["needs"]] == [("周正华", "生活物资"), ("罗小芳", "兜底保障")]


def test_follow_ups_and_due() -> None:
    r = parse("上周五到石门村看了刘国富，自来水管子冻裂了，明天我找村里水管员去修", NOW)
    assert [f["due"] for f in r["follow_ups"]] == ["2026-11-26"]
    r = parse("昨天入户走访新民村邹小燕家，房子屋顶漏水，我下周帮她联系住建局", NOW)
    assert r["follow_ups"][0]["due"] == {"raw": "下周", "range": ["2026-11-30", "2026-12-06"]}
    r = parse("二〇二六年十一月二十日 走访 田坝村 赵明亮家 低保还没批下来 月底前再去一趟", NOW)
    assert r["follow_ups"][0]["due"] == {"raw": "月底前", "by": "2026-11-30"}
    assert parse("水井村走了两户：韦国祥 3口 水窖漏了 要补", NOW)["follow_ups"] == []
