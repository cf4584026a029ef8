"""The FAQ matcher: patterns (phrases, or phrases joined by +) against a normalised question."""

from __future__ import annotations

import pytest

from handlers.faq import DEFAULT_FAQ, faq_from_file
from handlers.text.faq import FaqError, load_faq

SHIPPED = faq_from_file(str(DEFAULT_FAQ))


@pytest.mark.parametrize(("question", "topic"), [
    ("低保怎么申请？", "低保申请"),
    ("請問低保要什麼條件", "低保申请"),  # traditional characters
    ("医保今年什么时候交", "医保（城乡居民医疗保险）"),
    ("住院了怎么报销", "医保（城乡居民医疗保险）"),
    ("雨露计划今年还报不报？", "雨露计划"),
    ("请问小额信贷利息怎么算", "小额信贷（脱贫人口小额信贷）"),
    ("他家因病想申报监测户，怎么弄", "防返贫监测申报"),
])
def test_shipped_faq_answers_the_five_topics(question: str, topic: str) -> None:
    hit = SHIPPED.match(question)
    assert hit is not None and hit.entry.topic == topic


@pytest.mark.parametrize("question", ["化肥什么时候发？", "明天开会吗", "", "？？？"])
def test_no_answer_when_nothing_fits(question: str) -> None:
    assert SHIPPED.match(question) is None


def test_the_longest_matching_patterns_win() -> None:
    faq = load_faq('[[faq]]\ntopic="贷款"\npatterns=["贷款"]\nanswer="a"\n'
                   '[[faq]]\ntopic="贴息"\npatterns=["贷款+贴息"]\nanswer="b"\n')
    assert faq.match("贷款能贴息吗").entry.topic == "贴息"  # type: ignore[union-attr]
    assert faq.match("贷款多久批").entry.topic == "贷款"  # type: ignore[union-attr]
    assert faq.match("贴息是多少") is None  # "+" needs every part


@pytest.mark.parametrize(("text", "needle"), [
    ("not toml [", "TOML"),
    ("x = 1", "[[faq]]"),
    ('[[faq]]\ntopic="a"\npatterns=["p"]\n', "answer"),
    ('[[faq]]\ntopic="a"\npatterns=[]\nanswer="x"\n', "patterns"),
])
def test_a_bad_file_is_one_clear_error(text: str, needle: str) -> None:
    with pytest.raises(FaqError) as e:
        load_faq(text)
    assert needle in str(e.value) and "\n" not in str(e.value)
