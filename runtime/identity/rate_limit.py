"""Rates of anonymous requests per client address, counted in the database like sign-ins.

The counts share the table of sign-in throttling (`formloom_sign_in_counts`, see
runtime/identity/throttle.py) under scopes of their own: one row per (scope, name,
address, window), bumped with one atomic `INSERT … ON CONFLICT DO UPDATE … RETURNING`,
so every server counts the same attempts and parallel requests each get a number of
their own. The limit is a sliding window: the current window's count plus the part of
the previous window's count that still overlaps. Every request is counted, whatever
its fate, and an attempt over the limit is counted too (a client that keeps trying
stays refused).
"""

from __future__ import annotations

import datetime as dt
import secrets

from sqlalchemy import Engine, and_, delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from runtime.db import write
from runtime.identity.throttle import MAX_ADDRESS, MAX_NAME, Verdict
from runtime.schema.system import sign_in_counts
from runtime.schema.types import utcnow

PURGE_ONE_IN = 50  # requests; then rows of this scope whose windows ended long ago are deleted


def hit(
    engine: Engine,
    scope: str,
    name: str,
    address: str,
    most: int,
    window: dt.timedelta,
    now: dt.datetime | None = None,
) -> Verdict:
    """Count one request of `address` to `name` (an intake, say); is it within `most` per `window`?"""
    moment = now or utcnow()
    start = window_start(window, moment)
    table = sign_in_counts
    key = {"scope": scope[:10], "username": name[:MAX_NAME], "address": address[:MAX_ADDRESS]}
    with write(engine) as conn:
        insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
        stmt = (
            insert(table)
            .values(**key, window_start=start, failures=1)
            .on_conflict_do_update(
                index_elements=[table.c.scope, table.c.username, table.c.address, table.c.window_start],
                set_={"failures": table.c.failures + 1},
            )
            .returning(table.c.failures)
        )
        current = int(conn.execute(stmt).scalar_one())
        previous = conn.execute(
            select(table.c.failures).where(
                and_(*(table.c[column] == value for column, value in key.items())),
                table.c.window_start == start - window,
            )
        ).scalar_one_or_none()
        if secrets.randbelow(PURGE_ONE_IN) == 0:
            conn.execute(
                delete(table).where(table.c.scope == key["scope"], table.c.window_start < start - window)
            )
    overlap = 1 - (moment - start) / window
    if current + int(previous or 0) * overlap > most:
        end = start + window
        return Verdict(False, max(1, int((end - moment).total_seconds()) + 1))
    return Verdict(True)


def window_start(window: dt.timedelta, now: dt.datetime) -> dt.datetime:
    """The start of the window of length `window` that holds `now` (windows start at the epoch)."""
    seconds = max(1, int(window.total_seconds()))
    epoch = int(now.timestamp())
    return dt.datetime.fromtimestamp(epoch - epoch % seconds, dt.UTC)
