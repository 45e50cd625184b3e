"""Database engines: URL resolution, SQLite tuning and write transactions."""

from __future__ import annotations

import datetime as dt
import os
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url

DEFAULT_URL = "sqlite:///formloom.db"
_OPEN_WRITE: ContextVar[Connection | None] = ContextVar("formloom_open_write", default=None)
_CLOCKS: weakref.WeakKeyDictionary[Engine, Callable[[], dt.datetime]] = weakref.WeakKeyDictionary()


def set_clock(engine: Engine, clock: Callable[[], dt.datetime]) -> None:
    """The clock the runtime serving `engine` keeps time by (tests and scenarios move it)."""
    _CLOCKS[engine] = clock


def now_of(conn: Connection) -> dt.datetime:
    """The current time of the runtime whose database `conn` belongs to (UTC)."""
    clock = _CLOCKS.get(conn.engine)
    return clock() if clock is not None else dt.datetime.now(dt.UTC)


def resolve_url(url: str | None = None) -> str:
    """`--db URL`, else `FORMLOOM_DB`, else a SQLite file in the current folder."""
    chosen = url or os.environ.get("FORMLOOM_DB") or DEFAULT_URL
    parsed = make_url(chosen)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def make_engine(url: str | None = None, **options: Any) -> Engine:
    """An engine for `url`; SQLite gets foreign keys, WAL and immediate write locks."""
    resolved = resolve_url(url)
    if resolved.startswith("sqlite"):
        engine = create_engine(resolved, connect_args={"timeout": 30}, **options)
        _tune_sqlite(engine)
        return engine
    engine = create_engine(resolved, pool_size=10, max_overflow=20, pool_pre_ping=True, **options)
    _utc_sessions(engine)
    return engine


def is_sqlite(engine: Engine | Connection) -> bool:
    """True when the engine speaks to SQLite."""
    return engine.dialect.name == "sqlite"


@contextmanager
def write(engine: Engine) -> Iterator[Connection]:
    """A write transaction; on SQLite it takes the write lock at BEGIN, avoiding deadlocks.

    Inside another `write` on the same engine it joins that transaction: the process
    engine's effects (records created, fields set) commit or roll back with their cause.
    """
    joined = _OPEN_WRITE.get()
    if joined is not None and joined.engine is engine and joined.in_transaction():
        yield joined
        return
    with engine.connect() as conn:
        conn = conn.execution_options(formloom_write=True)
        token = _OPEN_WRITE.set(conn)
        try:
            with conn.begin():
                yield conn
        finally:
            _OPEN_WRITE.reset(token)


def _utc_sessions(engine: Engine) -> None:
    """PostgreSQL sessions run in UTC (casts of timestamps to dates agree with SQLite), without JIT."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("SET TIME ZONE 'UTC'")
        # Report queries over large tables are costed high enough to switch JIT compilation on,
        # which then takes longer than running them (see docs/performance.md, Reports).
        cursor.execute("SET jit = off")
        cursor.close()
        dbapi_connection.commit()


def _tune_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        if engine.url.database not in (None, "", ":memory:"):
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get("formloom_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
