"""Matching a cadre's question against the county FAQ (faq.toml: topics, question patterns, answers).

A pattern is a phrase, or phrases joined by "+" that must all occur ("小额信贷+利息"). The entry whose
matched patterns cover the most characters wins, so a specific pattern beats a bare topic word.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass

from ._norm import normalize

_DROP = re.compile(r"[\s，。？！、,.?!：:；;“”\"'（）()]+")


class FaqError(ValueError):
    """The FAQ file is not usable; the message names the entry."""


@dataclass(frozen=True)
class FaqEntry:
    topic: str
    patterns: tuple[tuple[str, ...], ...]  # each pattern: parts that must all occur
    answer: str


@dataclass(frozen=True)
class FaqMatch:
    entry: FaqEntry
    score: int  # characters of the question the matched patterns cover


def _clean(text: str) -> str:
    return _DROP.sub("", normalize(text)).lower()


@dataclass(frozen=True)
class Faq:
    entries: tuple[FaqEntry, ...]

    def match(self, question: str) -> FaqMatch | None:
        q = _clean(question)
        if not q:
            return None
        best: FaqMatch | None = None
        for e in self.entries:
            score = sum(sum(len(p) for p in parts) for parts in e.patterns if all(p in q for p in parts))
            if score and (best is None or score > best.score):
                best = FaqMatch(e, score)
        return best


def load_faq(text: str) -> Faq:
    """Parse faq.toml: `[[faq]]` tables with `topic`, `patterns` (a list of strings) and `answer`."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise FaqError(f"不是合法的 TOML（{e}）") from None
    items = data.get("faq")
    if not isinstance(items, list) or not items:
        raise FaqError("没有 [[faq]] 条目")
    entries = []
    for i, item in enumerate(items, 1):
        if not isinstance(item, dict):
            raise FaqError(f"第{i}条不是表")
        topic, answer, patterns = item.get("topic"), item.get("answer"), item.get("patterns")
        if not isinstance(topic, str) or not topic.strip():
            raise FaqError(f"第{i}条缺少 topic")
        if not isinstance(answer, str) or not answer.strip():
            raise FaqError(f"第{i}条（{topic}）缺少 answer")
        if not isinstance(patterns, list) or not patterns or not all(isinstance(p, str) and p.strip()
                                                                      for p in patterns):
            raise FaqError(f"第{i}条（{topic}）的 patterns 必须是非空的文字列表")
        parsed = tuple(tuple(_clean(part) for part in p.split("+") if _clean(part)) for p in patterns)
        entries.append(FaqEntry(topic.strip(), tuple(p for p in parsed if p), answer.strip()))
    return Faq(tuple(entries))
