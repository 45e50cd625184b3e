"""Comparing what a scenario expects with what the app answers, the way a person reads it.

Numbers compare as decimals (`0.35` is the stored `"0.350000"`, `72` is `72`); a link or
user field matches its display text, a `{ref: name}`, or — for users — the username;
times compare as instants (`2026-12-02T09:00+08:00` is `2026-12-02T01:00:00Z`); a map
matches when every key it gives matches (the record may hold more); lists match item by
item, in order for rows and in any order for plain values.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

DECIMAL = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?")
T = TypeVar("T")
U = TypeVar("U")


@dataclass
class Names:
    """What names in expectations stand for: records, users (by id) and the app's time zone."""

    refs: dict[str, tuple[str, int]] = field(default_factory=dict)
    usernames: dict[int, str] = field(default_factory=dict)
    zone: dt.tzinfo = dt.UTC


def matches(expected: Any, actual: Any, names: Names) -> bool:
    """True when `actual` is what `expected` describes."""
    if expected is None:
        return actual is None
    if isinstance(expected, bool):
        return actual is expected or (isinstance(actual, str) and actual.lower() == str(expected).lower())
    if isinstance(expected, int | float):
        return _number(actual) == _number(expected) and _number(actual) is not None
    if isinstance(expected, str):
        return _text_matches(expected, actual, names)
    if isinstance(expected, dict):
        return _map_matches(expected, actual, names)
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(expected) != len(actual):
            return False
        if any(isinstance(item, dict | list) for item in expected):
            return all(matches(e, a, names) for e, a in zip(expected, actual, strict=True))
        pairs = pair_up(expected, actual, lambda e, a: matches(e, a, names))
        return len(pairs) == len(expected)
    return bool(expected == actual)


def _text_matches(expected: str, actual: Any, names: Names) -> bool:
    if isinstance(actual, dict):
        if expected == actual.get("display"):
            return True
        user = actual.get("id")
        return isinstance(user, int) and names.usernames.get(user) == expected
    if isinstance(actual, bool):
        return expected.lower() == str(actual).lower()
    if isinstance(actual, int | float | Decimal):
        return _number(expected) is not None and _number(expected) == _number(actual)
    if not isinstance(actual, str):
        return False
    if expected == actual:
        return True
    left, right = _number(expected), _number(actual)
    if left is not None and right is not None:
        return left == right
    first, second = _moment(expected, names.zone), _moment(actual, names.zone)
    return first is not None and first == second


def _map_matches(expected: dict[str, Any], actual: Any, names: Names) -> bool:
    if len(expected) == 1:
        ((key, item),) = expected.items()
        if key == "ref" and isinstance(item, str):
            wanted = names.refs.get(item, ("", -1))[1]
            return _id_of(actual) == wanted
        if key == "user" and isinstance(item, str):
            user = _id_of(actual)
            return user is not None and names.usernames.get(user) == item
    if not isinstance(actual, dict):
        return False
    return all(key in actual and matches(value, actual[key], names) for key, value in expected.items())


def _id_of(actual: Any) -> int | None:
    if isinstance(actual, dict):
        found = actual.get("id")
        return found if isinstance(found, int) else None
    return actual if isinstance(actual, int) and not isinstance(actual, bool) else None


def _number(value: Any) -> Decimal | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | Decimal):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, str) and value.strip() and value.strip()[0] in "+-.0123456789":
        try:
            number = Decimal(value.strip())
        except InvalidOperation:
            return None
        return number if number.is_finite() else None
    return None


def _moment(value: str, zone: dt.tzinfo) -> dt.datetime | None:
    text = value.strip()
    if len(text) < 16 or text[10] not in "T ":
        return None  # a date alone compares as text
    try:
        moment = dt.datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    except ValueError:
        return None
    return moment.replace(tzinfo=zone) if moment.tzinfo is None else moment


def pair_up(expected: Sequence[T], actual: Sequence[U], fits: Callable[[T, U], bool]) -> dict[int, int]:
    """The largest pairing of expected items with distinct actual items that fit them
    (expected index -> actual index): a small bipartite matching."""
    taken: dict[int, int] = {}  # actual index -> expected index

    def place(index: int, seen: set[int]) -> bool:
        for other, item in enumerate(actual):
            if other in seen or not fits(expected[index], item):
                continue
            seen.add(other)
            if other not in taken or place(taken[other], seen):
                taken[other] = index
                return True
        return False

    for index in range(len(expected)):
        place(index, set())
    return {e: a for a, e in taken.items()}


def show(value: Any, names: Names | None = None) -> str:
    """A value as a failure message shows it (a decimal the API sends as text, as a number)."""
    if isinstance(value, str) and DECIMAL.fullmatch(value):
        return value
    if isinstance(value, dict) and "display" in value:
        user = value.get("id")
        username = names.usernames.get(user) if names and isinstance(user, int) else None
        display = f"'{value['display']}'"
        return f"{display} ({username})" if username and username != value["display"] else display
    if isinstance(value, str):
        return f"'{value}'"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | Decimal):
        return str(value)
    return json.dumps(value, ensure_ascii=False, default=str)
