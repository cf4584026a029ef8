"""Realistic cadre chat messages for the demo, generated from templates (never from the dev set).

Each generator takes a household (head, village, size) and a random source and returns the text a
cadre would type on a phone: relative dates, dialect, the odd typo, emoji codes.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

REL_DAYS = ["今天", "今天", "今天", "昨天", "前天", ""]
CN_NUM = {1: "一", 2: "两", 3: "三", 4: "四", 5: "五", 6: "六", 7: "七", 8: "八"}

# (template, category) — {n} is a small count written the way people write it.
NEEDS = [
    ("缺棉被{n}床", "生活物资"), ("天冷了家里缺煤，要{n}百斤", "生活物资"), ("缺大米{n}袋", "生活物资"),
    ("房子后墙有裂缝，下雨漏水", "住房"), ("厨房屋顶漏雨", "住房"), ("改厕的补助还没到", "住房"),
    ("自来水停了{n}天了", "饮水"), ("水管冻裂了", "饮水"), ("水窖漏水要补", "饮水"),
    ("孩子读高中生活费有困难", "教育"), ("雨露计划补助还没申请", "教育"),
    ("老人高血压，慢病卡还没办", "医疗"), ("住院的钱报销还没下来", "医疗"), ("要请签约医生上门看看", "医疗"),
    ("儿子想找个公益性岗位", "就业"), ("想学电工，问有没有培训", "就业"),
    ("缺化肥{n}袋", "产业"), ("想养鸡，缺鸡苗{n}百只", "产业"), ("{n}千斤洋芋没卖出去", "产业"),
    ("低保的事问一下进展", "兜底保障"), ("残疾证还没办下来", "兜底保障"),
]
MET = ["棉被已经送到了", "化肥送过去了", "慢病卡办好了", "水管修好了"]
FOLLOW = ["明天联系镇民政办", "下周一送过去", "回头找合作社问问销路", "我跟村医说一下", "月底前再去看看"]
TYPES = ["去{v}{h}家", "入户走访{v}{h}家", "到{v}{h}家看了看", "电话回访{v}{h}", "给{v}{h}打了电话"]
EMOJI = ["", "", "", "[抱拳]", "[强]", "👍"]
QUESTIONS = ["我的农户", "需求", "走访记录", "帮助", "这周还要去哪几户？", "收到", "好的谢谢"]
TYPO = {"明": "民", "德": "得", "英": "应", "华": "化", "兰": "蓝", "芳": "方", "忠": "中", "军": "均"}


@dataclass
class Msg:
    text: str
    kind: str  # visit | correction | question | signup | cancel


def _n(rng: random.Random) -> str:
    k = rng.randint(1, 5)
    return CN_NUM[k] if rng.random() < 0.6 else str(k)


def typo(name: str, rng: random.Random) -> str:
    """A homophone slip in the given name, as phone input methods make."""
    chars = list(name)
    spots = [i for i, c in enumerate(chars) if c in TYPO and i > 0]
    if not spots:
        return name
    i = rng.choice(spots)
    chars[i] = TYPO[chars[i]]
    return "".join(chars)


def visit_log(head: str, village: str, size: int | None, rng: random.Random) -> Msg:
    rel = rng.choice(REL_DAYS)
    name = typo(head, rng) if rng.random() < 0.08 else head
    where = rng.choice(TYPES).format(v=village if rng.random() < 0.7 else "", h=name)
    parts = [f"{rel}{where}"]
    if size and rng.random() < 0.5:
        parts.append(rng.choice([f"{size}口人", f"一家{CN_NUM.get(size, size)}口", f"{size}口"]))
    for _ in range(rng.choice([1, 1, 2])):
        t, _cat = rng.choice(NEEDS)
        parts.append(t.format(n=_n(rng)))
    if rng.random() < 0.2:
        parts.append(rng.choice(MET))
    if rng.random() < 0.4:
        parts.append(rng.choice(FOLLOW))
    sep = rng.choice(["，", "，", " ", "。"])
    return Msg(sep.join(parts) + rng.choice(EMOJI), "visit")


def correction(rng: random.Random) -> Msg:
    return Msg(rng.choice(["改成昨天", "改成前天", "改成电话回访", "删掉第1条需求", "棉被是3床"]), "correction")


def question(rng: random.Random) -> Msg:
    return Msg(rng.choice(QUESTIONS), "question")


def signup(course: str, village: str, names: list[str], rng: random.Random) -> Msg:
    forms = [
        "帮{v}{n}报个名 {c}",
        "报名 {c} {v} {ns} {k}人",
        "{v}报{c}的：{ns}",
    ]
    t = rng.choice(forms)
    return Msg(t.format(v=village, n=names[0], c=course, ns="、".join(names), k=len(names)), "signup")


def cancel(name: str, course: str, rng: random.Random) -> Msg:
    return Msg(rng.choice([f"{name}{course}不去了", f"{name}不去了，{course}帮忙取消一下"]), "cancel")
