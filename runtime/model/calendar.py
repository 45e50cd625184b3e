"""The app's working calendar: which days are working days.

Deadlines measured in working days (`2wd`) and the expression functions on working days
count on it. By default Saturday and Sunday are off; `holidays` adds days off and
`workdays` makes days on (the weekend days worked in exchange for a long holiday, 调休).
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import Field as Spec
from pydantic import model_validator
from pydantic_core import PydanticCustomError

from runtime.model.common import Strict

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
DEFAULT_WEEKEND: tuple[Weekday, ...] = ("sat", "sun")
# The days the working-day functions of expressions know: outside them they give null.
CALENDAR_FIRST, CALENDAR_LAST = dt.date(1970, 1, 1), dt.date(2100, 12, 31)


class Calendar(Strict):
    """Days off each week, and dated exceptions both ways."""

    weekend: list[Weekday] = Spec(default_factory=lambda: list(DEFAULT_WEEKEND), max_length=6)
    holidays: list[dt.date] = Spec(default_factory=list)
    workdays: list[dt.date] = Spec(default_factory=list)

    @model_validator(mode="after")
    def _no_day_both_ways(self) -> Calendar:
        both = sorted(set(self.holidays) & set(self.workdays))
        if both:
            raise PydanticCustomError(
                "calendar", "{day} is both a holiday and a working day", {"day": both[0].isoformat()}
            )
        return self

    def is_workday(self, day: dt.date) -> bool:
        """True when `day` is a working day."""
        if day in self.workdays:
            return True
        if day in self.holidays:
            return False
        return WEEKDAYS[day.weekday()] not in self.weekend


MAX_SCAN = 3660  # days: ten years of holidays cannot hide every working day


def add_workdays(day: dt.date, count: int, calendar: Calendar) -> dt.date:
    """The date `count` working days after `day` (before it when `count` is negative)."""
    step = 1 if count >= 0 else -1
    left = abs(count)
    current = day
    for _ in range(MAX_SCAN * max(1, left)):
        if left == 0:
            return current
        current += dt.timedelta(days=step)
        if calendar.is_workday(current):
            left -= 1
    raise ValueError("the calendar has no working days")


def workdays_between(start: dt.date, end: dt.date, calendar: Calendar) -> int:
    """Working days after `start` up to and including `end` (negative when `end` is earlier)."""
    if end < start:
        return -workdays_between(end, start, calendar)
    return sum(
        1 for n in range(1, (end - start).days + 1) if calendar.is_workday(start + dt.timedelta(days=n))
    )
