"""Date buckets (day, week, month, quarter, year) in SQL, in the app's time zone, and back.

A bucket is named by text: `2026-11-28` (day), `2026-11-23` (the Monday of a week),
`2026-11` (month), `2026-Q4` (quarter), `2026` (year). Datetimes are cut in the app's
time zone — exactly on PostgreSQL; on SQLite with the zone's offset at the time of the
query (exact for zones without daylight saving time, such as Asia/Shanghai).
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Integer, String, cast, func, literal

SQL = Any


def bucket_sql(column: SQL, kind: str, bucket: str, dialect: str, zone: ZoneInfo, now: dt.datetime) -> SQL:
    """The bucket name of a date or datetime column."""
    if dialect == "postgresql":
        local = func.timezone(zone.key, column) if kind == "datetime" else column
        return _pg(local, bucket)
    offset = now.astimezone(zone).utcoffset() or dt.timedelta()
    shift = [f"{int(offset.total_seconds() // 60):+d} minutes"] if kind == "datetime" else []
    return _sqlite(column, shift, bucket)


def _pg(local: SQL, bucket: str) -> SQL:
    if bucket == "day":
        return func.to_char(local, "YYYY-MM-DD")
    if bucket == "week":
        return func.to_char(func.date_trunc("week", local), "YYYY-MM-DD")
    if bucket == "month":
        return func.to_char(local, "YYYY-MM")
    if bucket == "quarter":
        return func.to_char(local, 'YYYY-"Q"Q')
    return func.to_char(local, "YYYY")


def _sqlite(column: SQL, shift: list[str], bucket: str) -> SQL:
    if bucket == "day":
        return func.strftime("%Y-%m-%d", column, *shift)
    if bucket == "week":
        return func.date(column, *shift, "weekday 0", "-6 days")
    if bucket == "month":
        return func.strftime("%Y-%m", column, *shift)
    if bucket == "quarter":
        month = cast(func.strftime("%m", column, *shift), Integer())
        quarter = cast((month + 2) / 3, Integer())
        return (
            func.strftime("%Y", column, *shift)
            .op("||")(literal("-Q", String()))
            .op("||")(cast(quarter, String()))
        )
    return func.strftime("%Y", column, *shift)


def bucket_range(name: str, bucket: str) -> tuple[dt.date, dt.date]:
    """The first day of a bucket and the first day after it."""
    if bucket == "day":
        start = dt.date.fromisoformat(name)
        return start, start + dt.timedelta(days=1)
    if bucket == "week":
        start = dt.date.fromisoformat(name)
        return start, start + dt.timedelta(days=7)
    if bucket == "month":
        year, month = (int(p) for p in name.split("-"))
        return dt.date(year, month, 1), _next_month(year, month)
    if bucket == "quarter":
        year, quarter = int(name[:4]), int(name[-1])
        first = 3 * (quarter - 1) + 1
        return dt.date(year, first, 1), _next_month(year, first + 2)
    year = int(name)
    return dt.date(year, 1, 1), dt.date(year + 1, 1, 1)


def _next_month(year: int, month: int) -> dt.date:
    return dt.date(year + month // 12, month % 12 + 1, 1)
