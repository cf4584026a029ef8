"""Input hygiene: make any object a bounded, simplified-Chinese, half-width string before parsing.

Everything downstream assumes ASCII digits/punctuation and simplified characters, so this runs first.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

# Messages are chat lines; anything past this is pasted documents. Bounding it keeps worst-case latency sane.
MAX_CHARS = 20_000

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff\ud800-\udfff]")
# WeChat-style emoji codes ("[抱拳]", "[微笑]", "[OK]") carry no content but contain Han chars that confuse name rules;
# pictographic emoji (👍😭✅❤️, flags, skin tones, joiners) would otherwise stick to follow-up and need text.
_EMOJI_CODE = re.compile(r"\[[\u4e00-\u9fffA-Za-z]{1,6}\]")
_EMOJI = re.compile(
    "[\U0001f000-\U0001faff\U0001fc00-\U0001ffff\u2600-\u27bf\u2b00-\u2bff\u2194-\u2199\u21a9\u21aa\u2300-\u23ff"
    "\u25aa\u25ab\u25b6\u25c0\u25fb-\u25fe\u3030\u303d\u3297\u3299\ufe0e\ufe0f\u20e3\U000e0020-\U000e007f]+"
)
_SPACES = re.compile(r"[ \t\u3000\xa0]+")

_to_simplified: Any = None


def _simplify(text: str) -> str:
    global _to_simplified
    try:
        # GB2312 only holds simplified characters: a cheap test that spares zhconv's 0.2 s load on normal input.
        text.encode("gb2312")
        return text
    except UnicodeEncodeError:
        pass
    if _to_simplified is None:
        from zhconv import convert

        _to_simplified = convert
    try:
        return str(_to_simplified(text, "zh-cn"))
    except Exception:  # zhconv is table-driven; never let a table quirk crash parsing
        return text


def normalize(raw: Any) -> str:
    """Return a cleaned single-spaced string; never raises."""
    if raw is None:
        return ""
    text: str
    if isinstance(raw, str):
        text = raw
    else:
        try:
            text = str(raw)
        except Exception:
            return ""
    text = text[:MAX_CHARS]
    if not text.isascii():
        text = _CONTROL.sub(" ", text)
        # NFKC folds full-width digits/letters/punctuation; it leaves 、。【】 alone, which the rules rely on.
        text = unicodedata.normalize("NFKC", text)
        text = _EMOJI_CODE.sub(" ", text)
        text = _EMOJI.sub(" ", text)  # before _simplify: an emoji alone would fail its GB2312 test and load zhconv
        text = _simplify(text)
    else:
        text = _CONTROL.sub(" ", text)
    text = _SPACES.sub(" ", text)
    return text.strip()
