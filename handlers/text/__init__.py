"""Chinese text understanding for cadre chat: the only package in the project that imports jieba.

Public API: parse, parse_record, parse_jsonl, Registry (+HouseholdRef, Candidate), parse_correction,
parse_announcement, match_course.
"""

from __future__ import annotations

from .announcement import Announcement, parse_announcement
from .corrections import Correction, parse_correction
from .courses import match_course
from .parser import FIELDS, parse
from .records import parse_jsonl, parse_record
from .registry import Candidate, HouseholdRef, Registry

__all__ = [
    "FIELDS",
    "Announcement",
    "Candidate",
    "Correction",
    "HouseholdRef",
    "Registry",
    "match_course",
    "parse",
    "parse_announcement",
    "parse_correction",
    "parse_jsonl",
    "parse_record",
]
