"""Risk signals (防返贫): one case per type and per non-risk rule, on sentences written for these tests."""

from __future__ import annotations

import pytest

from handlers.text import parse
from handlers.text.risks import Risk, RiskType, find_risks

from .conftest import NOW


def types(text: str) -> set[str]:
    return {str(r.type) for r in find_risks(text)}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # 因病: serious diagnosis, hospital stay or big bill
        ("今天去看了坝子村刘成富 他上礼拜查出肺癌晚期 在市医院住着 每天要好几百", {"因病"}),
        ("吴老三家媳妇得了尿毒症 一个礼拜透析两次 钱都是借的", {"因病"}),
        ("电话问了下罗兴旺 他老汉前几天脑溢血送县医院抢救 现在还在ICU", {"因病"}),
        ("他老婆住院半个月了 医药费花了两万多 报销还没下来", {"因病"}),
        # 因残 (and 因意外 + 因残: a lasting consequence is a second type)
        ("李国富今年眼睛突然失明了 看不见东西 想办个残疾证", {"因残"}),
        ("韦小军在工地上从架子上摔下来 腰椎骨折 医生说以后可能瘫痪", {"因意外", "因残"}),
        # 因学
        ("黄家女儿读高一 说不想读了 要跟同学去广州打工", {"因学"}),
        ("大儿子考上大学了 学费凑不齐 还差七八千", {"因学"}),
        # 因灾: hazard plus damage; crop or livestock loss from a disaster is typed by its cause
        ("前天晚上刮大风 把潘德贵家的房顶掀了一半 瓦全部落了", {"因灾"}),
        ("上个月干旱 沙坝村几户的包谷基本绝收", {"因灾"}),
        ("昨晚山洪把赵家的牛圈冲走了 淹死两头牛", {"因灾"}),
        ("凌晨发生山体滑坡 压垮了龙家的房子 一家人现在借住在亲戚家", {"因灾", "住房饮水"}),
        # 因意外: serious only (a fracture, a stay, a cost)
        ("蒙德才开三轮车翻到沟里 肋骨断了三根 住了一个礼拜院", {"因意外"}),
        ("他孙子被狗咬了 打了狂犬疫苗 花了一千多", {"因意外"}),
        # 务工就业不稳
        ("杨光荣在温州的厂子倒闭了 工资还欠着两个月 现在回来了", {"务工就业不稳"}),
        ("他女儿在深圳被裁员了 还没找到新的工作", {"务工就业不稳"}),
        # 产业失败
        ("王家的鱼塘今年缺氧 鱼死了一大半 投了五六万进去", {"产业失败"}),
        ("合作社的羊得了病 死了十几只 剩下的在打针", {"产业失败"}),
        # 收入骤减 / 支出骤增 only where no cause type fits
        ("今年辣椒价钱垮了 一斤才卖一块 罗家十亩地白忙了", {"收入骤减"}),
        ("她男人今年春天病故了 家里断了收入", {"收入骤减"}),
        ("石家老人过世 办丧事又借了四万 还欠着", {"支出骤增"}),
        ("二儿子娶媳妇 彩礼给了十八万 全是借的", {"支出骤增"}),
        ("他儿子网上赌博欠了十几万 跑了联系不上", {"其他"}),
        # 缺劳力
        ("两个老人都七十多了 儿子在外地不管 地里的活做不动了 就他们两个在家", {"缺劳力"}),
        # 住房饮水
        ("付家的土墙房子后墙开裂 雨天漏得厉害 一家人还住着", {"住房饮水"}),
        ("组里的水池坏了 这半个月都是去井里挑水吃", {"住房饮水"}),
        ("雷家儿子在工地上被钢管砸到头 现在还昏迷 在重症监护室", {"因意外"}),
        ("他爸从房顶上摔下来 腰摔断了 以后下不了床了 家里就靠他妈一个人", {"因意外", "因残", "缺劳力"}),
        ("儿子在广州送快递 这几个月单子少 工资只有以前一半", {"务工就业不稳"}),
        ("今年种的三十亩辣椒得了病 烂了一大半", {"产业失败"}),
        ("她男人今年病死了 现在一个人带三个娃娃 莫得收入", {"收入骤减", "缺劳力"}),
        ("她男人在工地上出了事 现在还在县医院", {"因意外"}),
        ("龙老二上个月被马踢伤了腰 住了半个月院 现在还不能下地 家里的田都种不下去", {"因意外", "缺劳力"}),
        ("他家的包谷被野猪糟蹋了一大块", {"产业失败"}),
        ("今年蜂糖李行情差 三块钱一斤都卖不掉", {"收入骤减"}),
        ("两个多月没下雨 天干 寨子里的水窖都干了", {"因灾", "住房饮水"}),
        ("他爸上个月查出肝癌 没几天就走了 办后事借了三万", {"收入骤减"}),
        ("他右眼被树枝戳伤 现在看不见了", {"因意外", "因残"}),
        ("两个娃娃开学要交住宿费 家里拿不出来", {"因学"}),
        # 其他
        ("他儿子在外面欠了网贷 催债的天天打电话", {"其他"}),
        ("老伴被骗了八千块 说是买保健品", {"其他"}),
        ("两口子闹离婚 女的带娃娃回娘家了", {"其他"}),
    ],
)
def test_signal_types(text: str, expected: set[str]) -> None:
    assert types(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "走访了陈大妈 有糖尿病 办了慢病卡 按时吃药 身体还可以",  # chronic and covered
        "老人高血压多年 签约医生每月来一次",  # long-standing, covered
        "张德发去年住院的事 现在已经好了 能下地干活了",  # resolved
        "王光明感冒了两天 在卫生室拿了点药",  # minor illness
        "他儿子从小残疾 残疾证早就办了 每月有补贴",  # long-standing disability
        "老人昨天在院子里滑了一跤 膝盖擦破点皮 没啥大事",  # minor injury, no cost
        "谢大哥上山砍柴被蜂子蜇了 肿了几天 现在好了",
        "这几天下大雨 大家注意安全 没啥损失",  # hazard without damage
        "昨天冰雹 还好郭家的烤烟已经收完了 没受影响",
        "上次说的漏雨 已经修好了 房子没问题了",  # fixed within the message
        "停水的问题已解决 现在正常供水",
        "儿子在昆明跑货车 收入稳定 家里都好",
        "都好 没啥困难 娃娃在读书 大人在附近打零工",
        "今年养了二十头猪 长势不错 年底出栏",
        "帮他家申请了小额信贷三万 已经批了",
        "小孙子读三年级 成绩还可以 营养餐有的",
        "家里五口人 两个老人一个残疾 儿子在家种烤烟",  # a disability as household context
        "她丈夫前年因车祸去世 现在在茶厂做临工",  # an old event
        "杨光友去年做了心脏支架 现在恢复得很好 能干活了",
        "老人眼睛看不清了 想去做个白内障手术",  # elective, no cost stated
        "她上个月做了个小手术 恢复得还行",
    ],
)
def test_not_a_signal(text: str) -> None:
    assert find_risks(text) == []


def test_one_event_one_cause_type() -> None:
    # a hospital stay after an accident is the accident's, not 因病; the bill does not add 支出骤增
    got = types("向家老二骑车摔了 小腿骨折 住院十几天 自付八千多")
    assert got == {"因意外"}
    # medical debt is typed 因病, not 支出骤增
    assert types("查出胃癌 做了手术 借了亲戚五万") == {"因病"}


def test_evidence_quotes_the_callers_text() -> None:
    raw = "（补记）水窖干了，吃水要去半里外挑；他家老大　辍学了"  # full-width brackets and an ideographic space
    risks = find_risks(raw)
    assert {str(r.type) for r in risks} == {"住房饮水", "因学"}
    for r in risks:
        assert r.evidence and r.evidence in raw
    trad = "他家房子牆裂了好寬一條縫"  # traditional characters are matched, quoted as written
    got = find_risks(trad)
    assert [str(r.type) for r in got] == ["住房饮水"] and got[0].evidence in trad


def test_risk_value() -> None:
    r = Risk(RiskType.DISASTER, "冰雹打烂了")
    assert r.as_dict() == {"type": "因灾", "evidence": "冰雹打烂了"}
    with pytest.raises(AttributeError):
        r.evidence = "x"  # type: ignore[misc]


def test_parser_reports_risks_for_visits_not_for_questions_or_notices() -> None:
    visit = parse("今天去了新田村罗德兵家 他上个月查出肝癌 花了六万多", NOW)
    assert visit["intent"] == "visit_log"
    assert [r["type"] for r in visit["risks"]] == ["因病"]
    assert parse("得了大病住院的能申请临时救助吗？", NOW)["risks"] == []
    notice = parse("【通知】请各村摸排因灾房屋倒塌、因病住院的困难户，周五前上报。", NOW)
    assert notice["intent"] == "other" and notice["risks"] == []
    assert parse("今天去了新田村罗德兵家 一切正常", NOW)["risks"] == []


def test_fast_fail_lookahead_keeps_every_match() -> None:
    import re

    from handlers.text import risks as R

    corpus = "。".join([
        "上个月脑梗住院 花了3万 自付1万", "家里就剩她和两个娃娃 莫得收入", "厂子搬走了 工资只发了一半",
        "3天没得水 水窖干了 暂时住他兄弟家", "暴雨冲垮了堡坎 猪瘟死了7头", "借了5万 彩礼酒席借了八万多",
        "（就靠她一个人）", "没有订单 跌价", "查出来是肺癌",
    ])
    lexicons = [v for k, v in vars(R).items() if k.isupper() and isinstance(v, str) and k.startswith("_")]
    guarded = [p for p in lexicons if p.startswith("(?=[")]
    assert len(guarded) >= 15
    for p in guarded:
        bare = p[p.index("])") + 2:]
        assert [m.span() for m in re.finditer(p, corpus)] == [m.span() for m in re.finditer(bare, corpus)], p[:40]
