"""Field keys made from labels: English words, or the pinyin of Chinese ones.

`key_from_label("Industry segment")` is `industry_segment`; `key_from_label("所属行业")`
is `suo_shu_hang_ye`. A key is unique within its form (`_2`, `_3` … are added) and fits
the definition language's identifier rules. Once a key is published it never changes:
renaming a published field in the designer writes `renamed_from`, so its data follows.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

from pypinyin import lazy_pinyin

MAX_KEY = 40


def key_from_label(label: str, taken: Iterable[str] = ()) -> str:
    """A new field key for `label`, not among `taken`."""
    words: list[str] = []
    for part in lazy_pinyin(label.strip()):
        ascii_text = unicodedata.normalize("NFKD", part).encode("ascii", "ignore").decode()
        words.extend(re.findall(r"[a-z0-9]+", ascii_text.lower()))
    base = "_".join(words)[:MAX_KEY].strip("_") or "field"
    if base[0].isdigit():
        base = f"f_{base}"[:MAX_KEY]
    used = set(taken)
    key, number = base, 2
    while key in used:
        suffix = f"_{number}"
        key, number = base[: MAX_KEY - len(suffix)] + suffix, number + 1
    return key
