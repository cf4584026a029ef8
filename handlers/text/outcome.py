"""Whether a visit log reports meeting the household ("met") or only an attempt ("not_met": 未遇 — nobody
home, door locked, the call not answered). Attempts are kept but do not count as visits."""

from __future__ import annotations

import re
from typing import Any, Literal

Outcome = Literal["met", "not_met"]

# Cues that the visitor did not reach the household. Written as what cadres type: 家里没人 / 没人在 / 不在家 /
# 没见到人 / 锁门 / 电话没人接 / 打不通 / 关机 / 扑空 / 白跑一趟.
_NOT_MET = re.compile(
    r"(?:家|屋)(?:里|中|头)?(?:都)?(?:没|没有|无)(?:得)?人(?!照顾|管|带|帮|陪|种|干|做|住|养|看)"
    r"|(?:没|没有)人在(?:家)?(?!照顾|管|带)|无人在家|家中无人|都(?:没|没有)人(?!照顾|管|带|帮|陪|种|干|做|住|养|看|要)"
    r"|(?P<away>不在家)"
    r"|(?<![未])(?:没|没有)(?:能)?(?:见到|见着|碰到|遇到|遇见|碰上|找到|见)(?:人|户主|本人|他|她|他们|她们|老人)"
    r"|(?<![未])(?:没|没有)(?:见到|见着|碰到|遇到|碰上)(?=$|[，,。；;！!\s）)])"
    r"|未(?:遇|见到|见着|碰到|找到)|扑(?:了个?)?空|白跑(?:了)?一趟|(?:锁|关)(?:着)?门|门(?:是)?(?:锁|关)着|大门紧锁|铁将军把门"
    r"|(?:电话|手机|视频|微信|语音)?(?:都)?(?:没|没有|无)人接(?!送|孩|娃|小孩|学生|他|她|回|走)|无人接听|(?:打|拨)(?:了)?(?:几次|两次|三次|好几次|半天)?(?:都)?不通"
    r"|没(?:有)?(?:打|拨)通|未接通|没(?:有)?接(?:电话|听)?(?=$|[，,。；;！!\s）)])|(?:一直|手机|电话)(?:是)?关机|停机了|不接电话"
)
# A later success overrides an earlier miss: "上午去没人，下午再去见到了".
_MET_AFTER = re.compile(r"(?<![没未])(?:见到|见着|碰到|遇到|找到|接通|打通|联系上)了|(?:再去|又去|第二次去).{0,8}(?<![没未])(?:见到|碰到|遇到)")
# "不在家" about someone else in the family ("儿子不在家", "老伴不在家") says nothing about meeting the head.
_KIN_BEFORE = re.compile(r"(?:儿|女|子|孙|媳|婆|伴|爸|妈|爹|娘|哥|姐|弟|妹|爷|奶|公|孩|娃|崽|老婆|老公|丈夫|妻子|家属|娃娃|孩子|"
                         r"小孩|年轻人|劳动力|家人|其他人)[们都也还]*$")


def _one(text: str) -> Outcome:
    last_miss = -1
    for m in _NOT_MET.finditer(text):
        if m.group("away") is not None and _KIN_BEFORE.search(text[max(0, m.start() - 6):m.start()]):
            continue
        last_miss = m.end()
    if last_miss < 0:
        return "met"
    return "met" if _MET_AFTER.search(text, last_miss) else "not_met"


def visit_outcome(text: str, heads: Any = None) -> Outcome | list[Outcome]:
    """The outcome of a visit log. With several households (`heads`, the parse's `household_head` list) each
    gets the outcome of its own stretch of text, and a list parallel to the heads is returned when they differ."""
    names = [h for h in heads if isinstance(h, str)] if isinstance(heads, list) else []
    if len(names) < 2:
        return _one(text)
    starts = sorted((text.find(n), k) for k, n in enumerate(names) if text.find(n) >= 0)
    if len(starts) < len(names):
        return _one(text)
    out: list[Outcome] = ["met"] * len(names)
    lead = text[:starts[0][0]]  # "两户都没人：张三、李四" speaks for every household after it
    for j, (pos, k) in enumerate(starts):
        end = starts[j + 1][0] if j + 1 < len(starts) else len(text)
        out[k] = _one(lead + text[pos:end])
    return out[0] if len(set(out)) == 1 else out
