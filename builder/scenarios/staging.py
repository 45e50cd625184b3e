"""A staging database's movable clock: `formloom worker --at TIME` and what allows it.

A consultant demoing "three days later" runs the due work of a staging database as of a
later time, as `formloom test` does on its own databases. Because that writes times
ahead of the real clock into the data, it is refused unless the database was published
with `--allow-clock` (a row in `formloom_clock`); production databases never have it.
The row also keeps where the clock was last moved to: it never goes back.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Connection, Engine, insert, select, update

from builder.scenarios.clock import ManualClock, move_to
from builder.scenarios.model import parse_moment
from runtime.db import write
from runtime.model.process import DURATION_RE, WORKDAY, parse_duration
from runtime.process.worker import Worker
from runtime.schema.migrate import upgrade_system_tables
from runtime.schema.system import clock as clock_table
from runtime.schema.types import utcnow

ROW = 1


class ClockRefused(Exception):
    """The clock may not be moved as asked."""


def allow_clock(engine: Engine, by: str | None) -> bool:
    """Mark the database as one whose clock `formloom worker --at` may move; answers
    whether it was not marked before."""
    upgrade_system_tables(engine)
    with write(engine) as conn:
        if conn.execute(select(clock_table.c.id)).first() is not None:
            return False
        conn.execute(insert(clock_table).values(id=ROW, allowed_at=utcnow(), allowed_by=by))
    return True


def moved_to(conn: Connection) -> tuple[bool, dt.datetime | None]:
    """Whether the database allows moving its clock, and where it was last moved to."""
    row = conn.execute(select(clock_table.c.moved_to)).first()
    return (row is not None, row[0] if row is not None else None)


def check_allowed(engine: Engine, shown_url: str) -> dt.datetime:
    """Where the staging clock starts (now, or later if it was moved there before);
    refused unless the database was published with --allow-clock."""
    upgrade_system_tables(engine)
    with engine.connect() as conn:
        allowed, last = moved_to(conn)
    if not allowed:
        raise ClockRefused(
            f"the database {shown_url} does not allow moving its clock: `--at` is for staging "
            "databases published with `formloom publish PATH --db URL --allow-clock` "
            "(see docs/processes.md, 'Moving the clock of a staging database'); nothing was run"
        )
    now = utcnow()
    return max(now, last) if last is not None else now


def target_of(text: str, start: dt.datetime, zone: dt.tzinfo) -> dt.datetime:
    """`--at`: a time (`2026-12-25T09:00+08:00`; without an offset in the app's zone; a date
    alone is its midnight) or a duration after where the clock starts (`+3d`, `20h`)."""
    amount = text.strip().removeprefix("+").strip()
    try:
        if DURATION_RE.match(amount):
            if WORKDAY in amount:
                raise ValueError(amount)
            return start + parse_duration(amount)
        return parse_moment(text, zone)
    except ValueError:
        raise ClockRefused(
            f"--at {text}: give a time such as 2026-12-25T09:00+08:00 or 2026-12-25, "
            "or a duration after the clock such as +3d or +20h"
        ) from None


def run_at(worker: Worker, clock: ManualClock, target: dt.datetime, zone: dt.tzinfo) -> int:
    """Move the clock to `target`, running each job at its due time on the way; record where
    the clock now is. Answers the jobs done."""
    if target < clock.now:
        raise ClockRefused(
            f"the clock cannot go back: it is at {_local(clock.now, zone)}, "
            f"later than {_local(target, zone)}; nothing was run"
        )
    done = move_to(worker, clock, target)
    with write(worker.db) as conn:
        conn.execute(update(clock_table).where(clock_table.c.id == ROW).values(moved_to=target))
    return done


def _local(moment: dt.datetime, zone: dt.tzinfo) -> str:
    return moment.astimezone(zone).isoformat(timespec="minutes")
