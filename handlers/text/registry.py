"""Registry-aware name resolution: households and villages as plain data, indexed for exact/pinyin/typo/kin lookups.

Also owns the per-registry jieba user dictionary so that registered names segment as whole words.
"""

from __future__ import annotations

import re
import threading
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from ._lexicon import COMPOUND_SURNAMES, SURNAMES
from ._norm import normalize
from ._segment import clone_tokenizer, jieba

Reason = Literal["exact", "member", "homophone", "pinyin", "typo", "kinship"]
_SCORES: dict[str, float] = {"exact": 1.0, "member": 0.95, "homophone": 0.9, "pinyin": 0.85, "typo": 0.7,
                             "kinship": 0.5}
# Nudges, not overrides: a paired household with a near-match outranks a stranger with a slightly better one.
PREFER_ID_BONUS = 0.2
PREFER_VILLAGE_BONUS = 0.1
USER_WORD_FREQ = 2000
MAX_KIN_RESULTS = 50

_KIN = re.compile(
    r"^(?P<pre>老|小|阿)?(?P<s>[\u4e00-\u9fff]{1,2}?)(?P<suf>家|(?:大|二|三|四|五|幺|小)?(?:哥|姐|叔|婶|伯|嫂|爷|奶|妈|娘|婆|"
    r"公|伯伯|叔叔|大爷|大妈|大娘|大哥|大姐|老师|师傅|支书|主任|老汉|老太|老倌|妹|弟|家的|家里))?$"
)


@dataclass(frozen=True, slots=True)
class HouseholdRef:
    id: int
    head: str
    village: str
    size: int | None = None
    members: tuple[str, ...] = ()
    born: int | None = None  # the head's birth year, when the registry knows it
    female: bool | None = None  # the head's sex, when the registry knows it


@dataclass(frozen=True, slots=True)
class Candidate:
    household: HouseholdRef
    score: float
    reason: Reason


@lru_cache(maxsize=8192)
def _char_pinyin(ch: str) -> tuple[str, str]:
    """(toned, toneless) pinyin of one char; cached because names reuse a few thousand chars."""
    from pypinyin import Style, pinyin

    try:
        toned = pinyin(ch, style=Style.TONE3, heteronym=False)[0][0]
        plain = pinyin(ch, style=Style.NORMAL, heteronym=False)[0][0]
    except Exception:
        return ch, ch
    return toned, plain


_FUZZY = (("zh", "z"), ("ch", "c"), ("sh", "s"))


def _fuzzy_syllable(s: str) -> str:
    # South-western Mandarin merges these; cadres type names as they hear them.
    for a, b in _FUZZY:
        if s.startswith(a):
            s = b + s[len(a):]
            break
    if s.startswith("n"):
        s = "l" + s[1:]
    if s.endswith("ng") and s[-3:-2] in ("i", "e"):
        s = s[:-1]
    return s


def pinyin_keys(name: str) -> tuple[str, str]:
    """(toned key, fuzzy toneless key) for a name."""
    parts = [_char_pinyin(ch) for ch in name]
    return " ".join(p[0] for p in parts), " ".join(_fuzzy_syllable(p[1]) for p in parts)


def surname_of(name: str) -> str:
    if name[:2] in COMPOUND_SURNAMES:
        return name[:2]
    return name[:1]


def _masks(name: str) -> list[str]:
    return [name[:i] + "?" + name[i + 1:] for i in range(len(name))]


class Registry:
    """Households and villages known to the caller; cheap to query, rebuilt in place by `update`."""

    def __init__(self, households: Iterable[HouseholdRef] = (), villages: Iterable[str] = ()) -> None:
        self._lock = threading.RLock()
        self._tok: jieba.Tokenizer | None = None
        self._words: set[str] = set()
        self._build(households, villages)

    # --- indexing -------------------------------------------------------------------------------------
    def _build(self, households: Iterable[HouseholdRef], villages: Iterable[str]) -> None:
        hh = [h for h in households if isinstance(h, HouseholdRef) and h.head]
        vs = {normalize(v) for v in villages if v}
        vs |= {h.village for h in hh if h.village}
        by_head: dict[str, list[HouseholdRef]] = defaultdict(list)
        by_member: dict[str, list[HouseholdRef]] = defaultdict(list)
        by_tone: dict[str, list[HouseholdRef]] = defaultdict(list)
        by_fuzzy: dict[str, list[HouseholdRef]] = defaultdict(list)
        by_mask: dict[str, list[HouseholdRef]] = defaultdict(list)
        by_surname: dict[str, list[HouseholdRef]] = defaultdict(list)
        for h in hh:
            by_head[h.head].append(h)
            tone, fuzzy = pinyin_keys(h.head)
            by_tone[tone].append(h)
            by_fuzzy[fuzzy].append(h)
            for m in _masks(h.head):
                by_mask[m].append(h)
            by_surname[surname_of(h.head)].append(h)
            for mem in h.members:
                if mem and mem != h.head:
                    by_member[mem].append(h)
        with self._lock:
            self.households: tuple[HouseholdRef, ...] = tuple(hh)
            self.villages: frozenset[str] = frozenset(vs)
            self._by_id = {h.id: h for h in hh}
            self._by_head = dict(by_head)
            self._by_member = dict(by_member)
            self._by_tone = dict(by_tone)
            self._by_fuzzy = dict(by_fuzzy)
            self._by_mask = dict(by_mask)
            self._by_surname = dict(by_surname)
            self.names: frozenset[str] = frozenset(by_head) | frozenset(by_member)
            if self._tok is not None:
                self._sync_words()

    def update(self, households: Iterable[HouseholdRef] | None = None, villages: Iterable[str] | None = None) -> None:
        """Replace households and/or villages; the tokenizer's user words follow without a restart."""
        self._build(self.households if households is None else households,
                    self.villages if villages is None else villages)

    def add(self, household: HouseholdRef) -> None:
        """Index one more household in place (a household added in chat): O(1), not a rebuild."""
        if household.id in self._by_id or not household.head:
            self.update([*(h for h in self.households if h.id != household.id), household])
            return
        h = household
        tone, fuzzy = pinyin_keys(h.head)
        with self._lock:
            # Copy-on-write of the lists touched, so a resolve running in another thread sees either the
            # old or the new entry, never a half-built one.
            def put(index: dict[str, list[HouseholdRef]], key: str) -> None:
                index[key] = [*index.get(key, ()), h]

            put(self._by_head, h.head)
            put(self._by_tone, tone)
            put(self._by_fuzzy, fuzzy)
            for m in _masks(h.head):
                put(self._by_mask, m)
            put(self._by_surname, surname_of(h.head))
            for mem in h.members:
                if mem and mem != h.head:
                    put(self._by_member, mem)
            self._by_id[h.id] = h
            self.households = (*self.households, h)
            self.names = self.names | {h.head, *(m for m in h.members if m)}
            if h.village:
                self.villages = self.villages | {h.village}
            if self._tok is not None:
                self._sync_words()

    def remove(self, household_id: int) -> None:
        self.update([h for h in self.households if h.id != household_id])

    def _sync_words(self) -> None:
        assert self._tok is not None
        wanted = set(self.names) | set(self.villages)
        for w in self._words - wanted:
            self._tok.del_word(w)
        for w in wanted - self._words:
            if len(w) >= 2:
                self._tok.add_word(w, USER_WORD_FREQ)
        self._words = wanted

    @property
    def tokenizer(self) -> jieba.Tokenizer:
        """Private tokenizer carrying this registry's names and villages as user words."""
        with self._lock:
            if self._tok is None:
                self._tok = clone_tokenizer()
                self._words = set()
                self._sync_words()
            return self._tok

    def with_surname(self, surname: str) -> list[HouseholdRef]:
        return list(self._by_surname.get(surname, ()))

    def get(self, household_id: int) -> HouseholdRef | None:
        return self._by_id.get(household_id)

    def is_known_name(self, name: str) -> bool:
        return name in self.names

    # --- resolution -----------------------------------------------------------------------------------
    def resolve(self, name: str, village: str | None = None, prefer_ids: frozenset[int] = frozenset(),
                prefer_village: str | None = None) -> list[Candidate]:
        """Ranked households a written name may refer to (best first); [] when nothing plausible."""
        name = normalize(name).replace(" ", "")
        if not name:
            return []
        found: dict[int, tuple[HouseholdRef, Reason]] = {}

        def add(refs: Iterable[HouseholdRef], reason: Reason) -> None:
            for r in refs:
                if r.id not in found or _SCORES[found[r.id][1]] < _SCORES[reason]:
                    found[r.id] = (r, reason)

        add(self._by_head.get(name, ()), "exact")
        add(self._by_member.get(name, ()), "member")
        km = _KIN.match(name)
        kin = km is not None and (km.group("pre") or km.group("suf") or len(name) == 1) and (
            km.group("s") in SURNAMES or km.group("s") in COMPOUND_SURNAMES)
        if kin and not found and km is not None:
            # 老王家 / 罗二哥: a surname plus a kin or familiarity marker, never a typo of a full name
            add(self._by_surname.get(km.group("s"), ()), "kinship")
            return self._rank(found.values(), village, prefer_ids, prefer_village)
        if len(name) >= 2 and all("\u4e00" <= c <= "\u9fff" for c in name):
            tone, fuzzy = pinyin_keys(name)
            add((r for r in self._by_tone.get(tone, ()) if r.head != name), "homophone")
            add((r for r in self._by_fuzzy.get(fuzzy, ()) if r.head != name), "pinyin")
            if len(name) >= 3:
                for m in _masks(name):
                    add((r for r in self._by_mask.get(m, ()) if r.head != name), "typo")
        return self._rank(found.values(), village, prefer_ids, prefer_village)

    def _rank(self, found: Iterable[tuple[HouseholdRef, Reason]], village: str | None, prefer_ids: frozenset[int],
              prefer_village: str | None) -> list[Candidate]:
        items = list(found)
        if village:
            v = normalize(village)
            scoped = [x for x in items if x[0].village == v or x[0].village.startswith(v) or v.startswith(
                x[0].village)]
            if scoped:
                items = scoped
        out: list[tuple[float, float, int, Candidate]] = []
        for ref, reason in items:
            base = _SCORES[reason]
            rank = base + (PREFER_ID_BONUS if ref.id in prefer_ids else 0.0) + (
                PREFER_VILLAGE_BONUS if prefer_village and ref.village == prefer_village else 0.0)
            out.append((-rank, -base, ref.id, Candidate(ref, base, reason)))
        out.sort(key=lambda t: (t[0], t[1], t[2]))
        cands = [t[3] for t in out]
        if cands and cands[0].reason == "kinship":
            cands = cands[:MAX_KIN_RESULTS]
        return cands


# --- reading a written name: full name, a relative of a named person, or a surname with a kin word -------

NameKind = Literal["name", "relative", "surname", "title"]
ELDERLY_AGE = 60

# Kin words after a full name that point at that person's household: 何文祥他妈, 何文祥的儿子, 罗某家的老二.
_RELATIVE = re.compile(
    r"^(?P<x>[\u4e00-\u9fff]{2,4}?)(?:他|她)?(?:家)?(?:的)?(?P<kin>妈妈|妈|爸爸|爸|老爸|老妈|母亲|父亲|儿子|女儿|儿媳|"
    r"媳妇|老伴|老婆|老公|爱人|孙子|孙女|哥哥|哥|弟弟|弟|姐姐|姐|妹妹|妹|爷爷|奶奶|外婆|外公|女婿|大儿子|小儿子|"
    r"二儿子|大女儿|小女儿|家属|屋头的|家里人|老大|老二|老三)$"
)
# Surname kin words that say the head is old, and which sex they name (None: either).
_ELDERLY_KIN: dict[str, bool | None] = {
    "奶奶": True, "婆婆": True, "阿婆": True, "老太": True, "大娘": True, "老奶奶": True, "婆": True, "奶": True,
    "大妈": True, "嬢嬢": None,
    "爷爷": False, "大爷": False, "老汉": False, "老倌": False, "公公": False, "老爷子": False, "爷": False,
    "公": False, "伯伯": False, "老伯": False,
}
_SURNAME_KIN = re.compile(
    r"^(?P<pre>老|小|阿)?(?P<s>[\u4e00-\u9fff]{1,2}?)(?P<suf>家|(?:大|二|三|四|五|幺|小)?(?:哥|姐|叔|婶|伯|嫂|妹|弟|"
    r"嬢|孃|娘|妈|爸|家的|家里)|" + "|".join(sorted(_ELDERLY_KIN, key=len, reverse=True)) + r")?$"
)


@dataclass(frozen=True, slots=True)
class NameQuery:
    """What a written household reference asks for: a full name (possibly through a relative: 何文祥他妈 is
    何文祥's household), or a surname with a kin or familiarity word (老王, 杨奶奶), optionally of an old head."""

    kind: NameKind
    name: str  # the full name, or the surname
    elderly: bool = False
    female: bool | None = None


def _is_surname(s: str) -> bool:
    return s in SURNAMES or s in COMPOUND_SURNAMES


# A surname with a title is a person met on the job (韦老师, 王支书), not a household to record a visit to.
_TITLE = re.compile(r"^(?P<s>[\u4e00-\u9fff]{1,2}?)(?:老师|师傅|支书|书记|主任|村长|组长|会计|医生|局长|镇长|干部)$")


def read_name(written: str) -> NameQuery:
    """How to look up a household reference as the parser wrote it ("老王", "杨奶奶", "何文祥他妈", "王德明")."""
    w = normalize(written).replace(" ", "")
    t = _TITLE.match(w)
    if t and _is_surname(t.group("s")):
        return NameQuery("title", t.group("s"))
    m = _SURNAME_KIN.match(w)
    if m and _is_surname(m.group("s")) and (m.group("pre") or m.group("suf") or len(w) == 1):
        suf = m.group("suf") or ""
        if suf in _ELDERLY_KIN:
            return NameQuery("surname", m.group("s"), elderly=True, female=_ELDERLY_KIN[suf])
        return NameQuery("surname", m.group("s"))
    r = _RELATIVE.match(w)
    if r and _is_surname(surname_of(r.group("x"))) and len(r.group("x")) >= 2:
        return NameQuery("relative", r.group("x"))
    return NameQuery("name", w)


def age_fits(ref: HouseholdRef, query: NameQuery, year: int) -> bool:
    """Whether a household may be the one an "old" kin word (杨奶奶) means. A head whose age or sex the registry
    does not know is kept: the registry cannot rule it out."""
    if not query.elderly:
        return True
    if ref.born is not None and year - ref.born < ELDERLY_AGE:
        return False
    return not (query.female is not None and ref.female is not None and ref.female != query.female)


def village_stems(village: str) -> tuple[str, ...]:
    """A village as people write it: 鲍屯村 is also 鲍屯 (bare stems of one char are too common to count)."""
    stem = re.sub(r"(?:村委会|居委会|社区|村)$", "", village)
    return (village, stem) if stem != village and len(stem) >= 2 else (village,)


def villages_in_text(text: str, villages: Iterable[str]) -> list[str]:
    """The villages (of `villages`) a message names, with or without 村, in order of appearance."""
    t = normalize(text)
    hits: list[tuple[int, str]] = []
    for v in villages:
        pos = [t.find(x) for x in village_stems(v) if x in t]
        if pos:
            hits.append((min(pos), v))
    return [v for _, v in sorted(hits)]


_KIN_IN_TEXT = re.compile(
    r"(?:老(?P<a>[\u4e00-\u9fff])(?![\u4e00-\u9fff]{0,1}(?:师|板|人|家里|年|实|公|婆|伴|表|乡|总|大|二|三))"
    r"|(?P<b>[\u4e00-\u9fff])(?P<k>" + "|".join(sorted(_ELDERLY_KIN, key=len, reverse=True)) + r"))"
)


def kin_mentions(text: str) -> list[str]:
    """Surname-plus-kin references in a message whose parse found no household (看了老王, 去杨奶奶家)."""
    out = []
    for m in _KIN_IN_TEXT.finditer(normalize(text)):
        s = m.group("a") or m.group("b")
        if s and s in SURNAMES and s not in "大小老阿":
            out.append(m.group(0))
    return out
