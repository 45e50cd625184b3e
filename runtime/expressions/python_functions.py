"""The strict functions of the Python compiler: numbers, text and dates, each given non-null values.

`runtime.expressions.to_python` returns null for a null argument before calling them;
the rules (rounding half away from zero, ASCII-only case changes, dates in UTC, null
beyond the calendar) are those of docs/expressions.md, shared with the SQL compiler.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import ROUND_HALF_UP, Context, Decimal
from typing import Any

from runtime.expressions.syntax import MAX_DAYS
from runtime.model.calendar import CALENDAR_FIRST, CALENDAR_LAST, Calendar, add_workdays, workdays_between

ARITHMETIC = Context(prec=34)
STEPS = {digits: Decimal(1).scaleb(-digits) for digits in range(0, 11)}
ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
ASCII_UPPER = str.maketrans("abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ")


def _round(value: Any, digits: int = 0) -> Any:
    if isinstance(value, int) and digits >= 0:
        return value
    step = STEPS.get(digits) or Decimal(1).scaleb(-digits)
    return Decimal(value).quantize(step, rounding=ROUND_HALF_UP, context=ARITHMETIC)


def _as_date(value: dt.date) -> dt.date:
    return value.astimezone(dt.UTC).date() if isinstance(value, dt.datetime) else value


def _add_days(day: dt.date, count: int) -> dt.date | None:
    """A date `count` days later; null beyond the calendar (years 1 to 9999), as in SQL."""
    if abs(count) > MAX_DAYS:
        return None
    try:
        return day + dt.timedelta(days=count)
    except OverflowError:
        return None


def _contains(whole: Any, part: str) -> bool:
    return part in whole


def _whole(delta: dt.timedelta, unit: int) -> int:
    """Whole `unit`s (in microseconds) in `delta`, truncated toward zero."""
    micros = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    whole = abs(micros) // unit
    return whole if micros >= 0 else -whole


def _add_hours(moment: dt.datetime, hours: int) -> dt.datetime | None:
    """A datetime `hours` later; null beyond the calendar (years 1 to 9999), as in SQL."""
    if abs(hours) > MAX_DAYS * 24:
        return None
    try:
        return moment + dt.timedelta(hours=hours)
    except OverflowError:
        return None


def _in_range(day: dt.date | None) -> dt.date | None:
    return day if day is not None and CALENDAR_FIRST <= day <= CALENDAR_LAST else None


def _workdays_between(start: dt.date, end: dt.date, calendar: Calendar) -> int | None:
    if _in_range(start) is None or _in_range(end) is None:
        return None
    return workdays_between(start, end, calendar)


def _add_workdays(day: dt.date, count: int, calendar: Calendar) -> dt.date | None:
    if _in_range(day) is None or abs(count) > (CALENDAR_LAST - CALENDAR_FIRST).days:
        return None
    return _in_range(add_workdays(day, count, calendar)) if count else day


ON_CALENDAR: dict[str, Callable[[Any, Any, Calendar], Any]] = {
    "WORKDAYS_BETWEEN": _workdays_between,
    "ADD_WORKDAYS": _add_workdays,
}
STRICT: dict[str, Callable[..., Any]] = {
    "ROUND": _round,
    "ABS": abs,
    "LEN": len,
    "LOWER": lambda s: s.translate(ASCII_LOWER),
    "UPPER": lambda s: s.translate(ASCII_UPPER),
    "CONTAINS": _contains,
    "STARTS_WITH": lambda s, p: s.startswith(p),
    "DAYS_BETWEEN": lambda a, b: (_as_date(b) - _as_date(a)).days,
    "ADD_DAYS": lambda d, n: _add_days(d, n),
    "HOURS_BETWEEN": lambda a, b: _whole(b - a, 3_600_000_000),
    "MINUTES_BETWEEN": lambda a, b: _whole(b - a, 60_000_000),
    "ADD_HOURS": _add_hours,
    "YEAR": lambda d: _as_date(d).year,
    "MONTH": lambda d: _as_date(d).month,
}
