"""Sign-in throttling, counted in the database so that every server shares the counts.

Every sign-in attempt is counted *before* its password is checked, in one short
transaction that ends before the (slow) Argon2 check starts. The count is one row per
(scope, user name, address, window), bumped with `INSERT … ON CONFLICT DO UPDATE SET
failures = failures + 1 RETURNING failures`: each of many parallel attempts gets a
number of its own, so no more attempts than a limit allows can ever reach the
password check. An attempt over a limit is rolled back, so refused attempts count
nothing; an attempt whose password was right gives its count back (`succeeded`), so
what stays counted are failures (and attempts still being checked).

The limits, each a sliding window (the current window's count plus the part of the
previous window's count that still overlaps the last `window`):

- **user name and address**: 5 failures in 15 minutes. A guesser locks only their own
  address out of that user; the user signs in from anywhere else, and other users
  sign in from the guesser's address.
- **address**: 100 failures in 15 minutes, whatever the user names — generous, so that
  people behind one NAT or proxy are not locked out by one another.
- **user name, slower**: once a user name has 20 failures within an hour from any
  addresses (someone is guessing it from many), it is *guarded*: for as long as the
  failures keep coming, an address that has failed for that user within the hour is
  refused, and an address that has not gets one attempt (not five) per hour. A
  guesser with many addresses gets one guess per address per hour, and the real user
  still signs in from an address where they have not failed — a guess never locks a
  user out everywhere.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Connection, Engine, and_, delete, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from runtime.db import write
from runtime.schema.system import sign_in_counts
from runtime.schema.types import utcnow

MAX_NAME = 150
MAX_ADDRESS = 64
PURGE_ONE_IN = 50  # attempts; rows of windows over for two hours are deleted then
KEEP = dt.timedelta(hours=2)


@dataclass(frozen=True)
class Limit:
    """At most `most` counted attempts of a scope within a sliding `window`."""

    scope: str
    window: dt.timedelta
    most: int


PAIR = Limit("pair", dt.timedelta(minutes=15), 5)
ADDRESS = Limit("address", dt.timedelta(minutes=15), 100)
USER = Limit("user", dt.timedelta(hours=1), 20)  # beyond this the user name is guarded
PAIR_HOUR = Limit("pair_hour", dt.timedelta(hours=1), 1)  # what a guarded user allows an address
LIMITS = (PAIR, PAIR_HOUR, USER, ADDRESS)  # always counted in this order: no lock cycles


@dataclass(frozen=True)
class Verdict:
    """Whether the attempt may check its password; when not, seconds to wait."""

    allowed: bool
    retry_after: int = 0


class _Refused(Exception):
    def __init__(self, verdict: Verdict) -> None:
        super().__init__("refused")
        self.verdict = verdict


def reserve(engine: Engine, username: str, address: str, now: dt.datetime | None = None) -> Verdict:
    """Count an attempt for (user name, address) before its password is checked; may it go on?

    One transaction of its own, committed before the password check when the attempt
    may go on, rolled back when it may not.
    """
    moment = now or utcnow()
    name, place = username[:MAX_NAME], address[:MAX_ADDRESS]
    try:
        with write(engine) as conn:
            current = {limit: _bump(conn, limit, name, place, moment) for limit in LIMITS}
            previous = _previous(conn, name, place, moment)
            verdict = _judge(current, previous, moment)
            if not verdict.allowed:
                raise _Refused(verdict)
            if secrets.randbelow(PURGE_ONE_IN) == 0:
                conn.execute(  # only sign-in scopes: rate_limit.py keeps its own rows in this table
                    delete(sign_in_counts).where(
                        sign_in_counts.c.scope.in_([limit.scope for limit in LIMITS]),
                        sign_in_counts.c.window_start < moment - KEEP,
                    )
                )
    except _Refused as refused:
        return refused.verdict
    return verdict


def succeeded(conn: Connection, username: str, address: str, now: dt.datetime | None = None) -> None:
    """The password was right: forget this address's failures for the user; give the attempt back."""
    moment = now or utcnow()
    name, place = username[:MAX_NAME], address[:MAX_ADDRESS]
    table = sign_in_counts
    conn.execute(
        delete(table).where(
            table.c.scope.in_([PAIR.scope, PAIR_HOUR.scope]),
            table.c.username == name,
            table.c.address == place,
        )
    )
    for limit in (USER, ADDRESS):
        conn.execute(
            update(table)
            .where(_key(limit, name, place, _window_start(limit, moment)), table.c.failures > 0)
            .values(failures=table.c.failures - 1)
        )


def _judge(current: dict[Limit, int], previous: dict[Limit, int], now: dt.datetime) -> Verdict:
    def estimate(limit: Limit) -> float:
        start = _window_start(limit, now)
        overlap = 1 - (now - start) / limit.window
        return current[limit] + previous.get(limit, 0) * overlap

    waits = []
    for limit in (PAIR, ADDRESS):
        if estimate(limit) > limit.most:
            waits.append(_seconds_left(limit, now))
    guarded = estimate(USER) - 1 >= USER.most  # failures of others, this attempt left out
    if guarded and estimate(PAIR_HOUR) > PAIR_HOUR.most:
        waits.append(_seconds_left(PAIR_HOUR, now))
    if waits:
        return Verdict(False, max(waits))
    return Verdict(True)


def _bump(conn: Connection, limit: Limit, name: str, place: str, now: dt.datetime) -> int:
    """Add one to the limit's count in the current window, atomically; answers the new count."""
    table = sign_in_counts
    values = {
        "scope": limit.scope,
        "username": name if limit is not ADDRESS else "",
        "address": place if limit is not USER else "",
        "window_start": _window_start(limit, now),
        "failures": 1,
    }
    insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    upsert = insert(table).values(**values)
    stmt = upsert.on_conflict_do_update(
        index_elements=[table.c.scope, table.c.username, table.c.address, table.c.window_start],
        set_={"failures": table.c.failures + 1},
    ).returning(table.c.failures)
    return int(conn.execute(stmt).scalar_one())


def _previous(conn: Connection, name: str, place: str, now: dt.datetime) -> dict[Limit, int]:
    """The counts of the windows before the current ones (one query)."""
    table = sign_in_counts
    keys = {limit: _key(limit, name, place, _window_start(limit, now) - limit.window) for limit in LIMITS}
    rows = conn.execute(select(table.c.scope, table.c.failures).where(or_(*keys.values()))).all()
    by_scope = {limit.scope: limit for limit in LIMITS}
    return {by_scope[scope]: int(failures) for scope, failures in rows}


def _key(limit: Limit, name: str, place: str, start: dt.datetime) -> ColumnElement[bool]:
    table = sign_in_counts
    return and_(
        table.c.scope == limit.scope,
        table.c.username == (name if limit is not ADDRESS else ""),
        table.c.address == (place if limit is not USER else ""),
        table.c.window_start == start,
    )


def _window_start(limit: Limit, now: dt.datetime) -> dt.datetime:
    seconds = int(limit.window.total_seconds())
    epoch = int(now.timestamp())
    return dt.datetime.fromtimestamp(epoch - epoch % seconds, dt.UTC)


def _seconds_left(limit: Limit, now: dt.datetime) -> int:
    end = _window_start(limit, now) + limit.window
    return max(1, int((end - now).total_seconds()) + 1)
