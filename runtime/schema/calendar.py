"""Each app's working days as rows, so that working-day functions run inside the database.

`formloom_workdays` numbers the working days of an app's calendar from CALENDAR_FIRST to
CALENDAR_LAST. `WORKDAYS_BETWEEN(a, b)` is then the difference of two numbers and
`ADD_WORKDAYS(d, n)` a lookup by number, on SQLite and PostgreSQL alike. The rows are
made (in one statement) the first time a runtime compiles such a function to SQL, when
they are missing or were made from another calendar — not at every start, since most
apps never ask (a quarter of a second on SQLite).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import threading
import weakref

from sqlalchemy import Connection, Engine, MetaData, delete, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from runtime.db import write
from runtime.model import App
from runtime.model.calendar import CALENDAR_FIRST, CALENDAR_LAST, WEEKDAYS, Calendar
from runtime.schema.system import calendars, workdays

_RUNTIMES: weakref.WeakKeyDictionary[MetaData, tuple[Engine, App]] = weakref.WeakKeyDictionary()
# per engine (kept weakly: an id() may be reused by a later engine), the (app, calendar
# digest) pairs whose rows are made
_READY: weakref.WeakKeyDictionary[Engine, set[tuple[str, str]]] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def register(metadata: MetaData, engine: Engine, app: App) -> None:
    """The compiled tables `metadata` of `app` are served from `engine`."""
    _RUNTIMES[metadata] = (engine, app)


def rows_ready(metadata: MetaData) -> None:
    """Make sure the working-day rows of the app whose tables are `metadata` exist (once per process)."""
    found = _RUNTIMES.get(metadata)
    if found is None:
        return  # tables compiled outside a runtime (the designer, a plan): nothing to prepare
    engine, app = found
    key = (app.app, calendar_digest(app.calendar))
    if key in _READY.get(engine, ()):
        return
    with _LOCK, write(engine) as conn:
        ensure_calendar(conn, app.app, app.calendar)
    _READY.setdefault(engine, set()).add(key)


def ensure_calendar(conn: Connection, app: str, calendar: Calendar) -> None:
    """Make an app's working-day rows when missing or made from another calendar."""
    digest = calendar_digest(calendar)
    builder = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    conn.execute(builder(calendars).values(app=app, digest="").on_conflict_do_nothing())
    held = select(calendars.c.digest).where(calendars.c.app == app)
    if conn.dialect.name == "postgresql":
        held = held.with_for_update()  # servers starting together make the rows once
    if conn.execute(held).scalar() == digest:
        return
    conn.execute(delete(workdays).where(workdays.c.app == app))
    if conn.dialect.name == "postgresql":
        _fill_in_postgres(conn, app, calendar)
    else:
        _fill_in_sqlite(conn, app, calendar)
    conn.execute(update(calendars).where(calendars.c.app == app).values(digest=digest))


def working_days(calendar: Calendar) -> list[dt.date]:
    """Every working day from CALENDAR_FIRST to CALENDAR_LAST, in order."""
    days = (CALENDAR_LAST - CALENDAR_FIRST).days + 1
    every = (CALENDAR_FIRST + dt.timedelta(days=n) for n in range(days))
    return [day for day in every if calendar.is_workday(day)]


def calendar_digest(calendar: Calendar) -> str:
    """What identifies a calendar's rows: its weekend, holidays and working days, and the range."""
    shown = {
        **calendar.model_dump(mode="json"),
        "range": [CALENDAR_FIRST.isoformat(), CALENDAR_LAST.isoformat()],
    }
    return hashlib.sha256(json.dumps(shown, sort_keys=True).encode()).hexdigest()


def _fill_in_postgres(conn: Connection, app: str, calendar: Calendar) -> None:
    weekend = [WEEKDAYS.index(day) + 1 for day in calendar.weekend]  # ISO: Monday is 1
    conn.execute(
        text(
            "INSERT INTO formloom_workdays (app, day, n) "
            "SELECT :app, d, row_number() OVER (ORDER BY d) FROM ("
            "  SELECT day::date AS d FROM generate_series(CAST(:first AS date), CAST(:last AS date), "
            "    interval '1 day') AS day"
            ") AS days "
            "WHERE d = ANY(CAST(:workdays AS date[])) "
            "   OR (NOT extract(isodow FROM d) = ANY(CAST(:weekend AS int[])) "
            "       AND NOT d = ANY(CAST(:holidays AS date[])))"
        ),
        {
            "app": app,
            "first": CALENDAR_FIRST,
            "last": CALENDAR_LAST,
            "workdays": list(calendar.workdays),
            "weekend": weekend,
            "holidays": list(calendar.holidays),
        },
    )


def _fill_in_sqlite(conn: Connection, app: str, calendar: Calendar) -> None:
    weekend = [(WEEKDAYS.index(day) + 1) % 7 for day in calendar.weekend]  # strftime('%w'): Sunday is 0
    conn.execute(
        text(
            "INSERT INTO formloom_workdays (app, day, n) "
            "WITH RECURSIVE days(d) AS ("
            "  SELECT :first UNION ALL SELECT date(d, '+1 day') FROM days WHERE d < :last"
            ") "
            "SELECT :app, d, row_number() OVER (ORDER BY d) FROM days "
            "WHERE d IN (SELECT value FROM json_each(:workdays)) "
            "   OR (CAST(strftime('%w', d) AS INTEGER) NOT IN (SELECT value FROM json_each(:weekend)) "
            "       AND d NOT IN (SELECT value FROM json_each(:holidays)))"
        ),
        {
            "app": app,
            "first": CALENDAR_FIRST.isoformat(),
            "last": CALENDAR_LAST.isoformat(),
            "workdays": json.dumps([day.isoformat() for day in calendar.workdays]),
            "weekend": json.dumps(weekend),
            "holidays": json.dumps([day.isoformat() for day in calendar.holidays]),
        },
    )
