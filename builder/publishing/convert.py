"""Convert stored values from one field type to another, with the target field's own converter.

A type change is allowed when every stored value converts; the planner counts the
values that do not, and a forced change (`--coerce`) backs them up before clearing
them. The rules are those of the API: a value converts when the new field would
accept it as input.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from runtime.records.values import Converter, ValueProblem

TEXT_TYPES = {"text", "long_text", "email", "phone", "url", "select", "auto_number"}
REFERENCE_TYPES = {"link", "user", "department", "attachment"}
BOOL_WORDS = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}


def as_input(value: Any, new_kind: str) -> Any:
    """The stored value as the new field's converter expects it."""
    if value is None:
        return None
    if new_kind in TEXT_TYPES or new_kind == "long_text":
        return _as_text(value)
    if new_kind == "boolean":
        if isinstance(value, str):
            return BOOL_WORDS.get(value.strip().lower(), value)
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        return value
    if new_kind == "date":
        if isinstance(value, dt.datetime):
            return value.astimezone(dt.UTC).date()
        return value.strip() if isinstance(value, str) else value
    if new_kind == "datetime":
        if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
            return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
        return value.strip() if isinstance(value, str) else value
    if new_kind == "multi_select":
        if isinstance(value, list):
            return value
        return [value] if isinstance(value, str) else value
    if new_kind in ("integer", "decimal", "money", "percent"):
        return str(value) if isinstance(value, Decimal) else value
    return value


def _as_text(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if isinstance(value, int | Decimal):
        return str(value)
    return value


def convert(value: Any, new_kind: str, converter: Converter) -> tuple[bool, Any]:
    """(True, converted) when the value converts, else (False, reason)."""
    try:
        return True, converter(as_input(value, new_kind))
    except ValueProblem as exc:
        return False, str(exc)


def convertible_kinds(old_kind: str, new_kind: str) -> bool:
    """Type pairs a publish may attempt; references never change kind."""
    if old_kind == new_kind:
        return True
    return old_kind not in REFERENCE_TYPES and new_kind not in REFERENCE_TYPES | {"table"}
