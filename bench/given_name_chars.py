"""Regenerate handlers/text/data/given_name_chars.tsv from jieba's bundled dictionary.

    python bench/given_name_chars.py

The table says how plausible a char is inside a given name; the name finder rejects would-be names whose given
part holds a char that never appears in a name (串户路塌了: 塌), instead of listing such words one by one.
"""

from __future__ import annotations

import collections
import os
from pathlib import Path

import jieba

from handlers.text._lexicon import SURNAMES

OUT = Path(__file__).resolve().parents[1] / "handlers" / "text" / "data" / "given_name_chars.tsv"


def main() -> None:
    counts: collections.Counter[str] = collections.Counter()
    with open(os.path.join(os.path.dirname(jieba.__file__), "dict.txt"), encoding="utf-8") as fh:
        for line in fh:
            word, _freq, tag = line.split()
            if tag == "nr" and len(word) in (2, 3) and word[0] in SURNAMES:
                counts.update(word[1:])
    with open(OUT, "w", encoding="utf-8") as fh:
        fh.write("# char\tcount: how often a char stands in the given-name part of jieba 0.42.1's dict.txt entries tagged nr\n")
        fh.write("# that start with a surname of _lexicon.SURNAMES (2-3 chars). Regenerate with bench/given_name_chars.py.\n")
        for ch, n in sorted(counts.items(), key=lambda x: (-x[1], x[0])):
            fh.write(f"{ch}\t{n}\n")
    print(f"{len(counts)} chars → {OUT}")


if __name__ == "__main__":
    main()
