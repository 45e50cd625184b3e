"""Auto numbers such as `QT-2026-00042`: unique and gap-free, even under concurrent inserts.

The counter row is incremented inside the inserting transaction. Its row lock
(PostgreSQL) or the database write lock (SQLite) serialises concurrent inserts,
and a rolled-back insert rolls its number back too, so no number is skipped.
"""

from __future__ import annotations

import datetime as dt
import re

from sqlalchemy import Connection, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from runtime.schema.system import counters

TOKEN = re.compile(r"\{(YYYY|YY|MM|DD|#+)\}")


def render_period(pattern: str, today: dt.date) -> str:
    """The pattern with its date tokens filled in; the counter restarts when this changes."""
    parts = {
        "YYYY": f"{today.year:04d}",
        "YY": f"{today.year % 100:02d}",
        "MM": f"{today.month:02d}",
        "DD": f"{today.day:02d}",
    }
    return TOKEN.sub(lambda m: parts.get(m.group(1), m.group(0)), pattern)


def next_number(conn: Connection, app: str, form: str, field: str, pattern: str, today: dt.date) -> str:
    """Take the next number for this field and period, within `conn`'s transaction."""
    period = render_period(pattern, today)
    key = {"app": app, "form": form, "field": field, "period": period}
    insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    conn.execute(insert(counters).values(**key, value=0).on_conflict_do_nothing())
    stmt = (
        update(counters)
        .where(*(counters.c[name] == value for name, value in key.items()))
        .values(value=counters.c.value + 1)
        .returning(counters.c.value)
    )
    value = conn.execute(stmt).scalar_one()
    return TOKEN.sub(lambda m: f"{value:0{len(m.group(1))}d}", period)
