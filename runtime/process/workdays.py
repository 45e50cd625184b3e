"""Due times of durations on the app's working calendar (the days themselves: runtime/model/calendar.py).

A duration such as `1wd 4h` is working days (`wd`) then clock time: a deadline of one
working day set on Friday 10:00 falls on Monday 10:00; set on Saturday, also on Monday
10:00 (the count starts from the day it is set, whatever that day is).
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from runtime.model.calendar import Calendar, add_workdays
from runtime.model.process import split_duration


def shifted(
    start: dt.datetime, duration: str, calendar: Calendar, zone: ZoneInfo, *, sign: int = 1
) -> dt.datetime:
    """`start` plus (`sign` −1: minus) a duration: working days on the calendar, in the app's
    zone, keeping the time of day; then clock time."""
    workdays, clock = split_duration(duration)
    local = start.astimezone(zone)
    if workdays:
        day = add_workdays(local.date(), sign * workdays, calendar)
        local = dt.datetime.combine(day, local.time(), tzinfo=zone)
    return local.astimezone(dt.UTC) + sign * clock
