"""The interface language: Chinese or English, following each user's choice.

Interface strings live in `locales/en.json` and `locales/zh.json` (the same keys in
both; a test checks). Definition labels pick their language through `Label.text`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

LANGUAGES = ("zh", "en")
LOCALES = Path(__file__).resolve().parent / "locales"
Translate = Callable[..., str]


@cache
def catalog(language: str) -> dict[str, str]:
    """Every interface string of one language."""
    data: dict[str, str] = json.loads((LOCALES / f"{language}.json").read_text(encoding="utf-8"))
    return data


def language_of(value: str | None) -> str:
    """A supported language: the user's own, else Chinese (the sales pack's home language)."""
    return value if value in LANGUAGES else "zh"


def translator(language: str) -> Translate:
    """`t("key", name=value)`: the string in `language`, with `{name}` filled in."""
    strings = catalog(language_of(language))

    def t(key: str, /, **values: Any) -> str:
        text = strings.get(key, key)
        return text.format(**values) if values else text

    return t
