"""The module's private jieba tokenizer: lazily loaded, disk-cached, never the global `jieba.dt`.

Registries clone its frequency table instead of reloading the dictionary, so adding names costs milliseconds.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import threading
from pathlib import Path


def _import_jieba() -> None:
    # jieba._compat imports pkg_resources only to open its bundled files (~0.1 s of cold start); hiding it for the
    # duration of this one import makes jieba fall back to plain open(). Other importers are unaffected.
    if "pkg_resources" in sys.modules:
        import jieba  # noqa: F401
        return
    sys.modules["pkg_resources"] = None  # type: ignore[assignment]
    try:
        import jieba  # noqa: F401
    finally:
        sys.modules.pop("pkg_resources", None)


_import_jieba()
import jieba as jieba  # noqa: E402  (explicit re-export: other modules import it from here)

logging.getLogger("jieba").setLevel(logging.WARNING)

_lock = threading.Lock()
_base: jieba.Tokenizer | None = None


def cache_dir() -> str:
    """A writable directory for jieba's marshalled prefix dict (BANGFU_CACHE_DIR overrides)."""
    env = os.environ.get("BANGFU_CACHE_DIR")
    candidates = [env] if env else []
    candidates += [os.path.join(os.path.expanduser("~"), ".cache", "bangfu"), os.path.join(tempfile.gettempdir(),
                                                                                            "bangfu")]
    for c in candidates:
        if not c:
            continue
        try:
            Path(c).mkdir(parents=True, exist_ok=True)
            if os.access(c, os.W_OK):
                return c
        except OSError:
            continue
    return tempfile.gettempdir()


# Words rarer than this are dropped from our private dictionary: the rules never need them (unknown strings fall
# back to single chars, which the name rules expect) and the marshalled cache loads in half the time.
MIN_WORD_FREQ = 5
_DICT_NAME = f"bangfu-dict-f{MIN_WORD_FREQ}.txt"


def _dict_path(directory: str) -> str | None:
    """Path of the trimmed dictionary, writing it once from jieba's own dict.txt; None if that fails."""
    target = os.path.join(directory, _DICT_NAME)
    if os.path.isfile(target):
        return target
    src = os.path.join(os.path.dirname(jieba.__file__), "dict.txt")
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".dict-")
        with open(src, encoding="utf-8") as f, os.fdopen(fd, "w", encoding="utf-8") as out:
            for line in f:
                parts = line.split()
                if len(parts) >= 2 and (len(parts[0]) == 1 or int(parts[1]) >= MIN_WORD_FREQ):
                    out.write(f"{parts[0]} {parts[1]}\n")
        os.replace(tmp, target)
        return target
    except (OSError, ValueError):
        return None


def _new_tokenizer() -> jieba.Tokenizer:
    d = cache_dir()
    path = _dict_path(d)
    tok = jieba.Tokenizer(path) if path else jieba.Tokenizer()
    tok.tmp_dir = d
    tok.cache_file = f"bangfu-jieba-f{MIN_WORD_FREQ}.cache" if path else "bangfu-jieba.cache"
    return tok


def base_tokenizer() -> jieba.Tokenizer:
    """The shared read-only tokenizer used when no registry is given."""
    global _base
    if _base is None:
        with _lock:
            if _base is None:
                tok = _new_tokenizer()
                tok.initialize()
                _base = tok
    return _base


def clone_tokenizer() -> jieba.Tokenizer:
    """A tokenizer with its own copy of the frequency table, so user words stay private to its owner."""
    base = base_tokenizer()
    tok = _new_tokenizer()
    tok.FREQ = dict(base.FREQ)
    tok.total = base.total
    tok.initialized = True
    return tok


def word_freq(tok: jieba.Tokenizer, word: str) -> int:
    return int(tok.FREQ.get(word, 0) or 0)
