"""Shared fixtures: every database test runs on SQLite and on PostgreSQL.

PostgreSQL is expected at 127.0.0.1:5432 (user postgres, database test); each test
gets a schema of its own. Where the server is unreachable the PostgreSQL variants
skip with the reason, except under CI=true, where they fail.
"""

from __future__ import annotations

import os
import uuid
import weakref
from collections.abc import Iterator
from typing import Any

import pytest
from argon2 import PasswordHasher
from hypothesis import settings
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

from runtime.identity import passwords

PG_URL = os.environ.get("FORMLOOM_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")

# Under CI the property tests replay a fixed set of examples, so a run's verdict never
# depends on luck; locally they explore new examples every run (and keep failing ones).
settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI") == "true":
    settings.load_profile("ci")
_pg_state: dict[str, str | None] = {}


def postgres_problem() -> str | None:
    """None when PostgreSQL answers, else why not (checked once per session)."""
    if "reason" not in _pg_state:
        try:
            engine = create_engine(PG_URL, connect_args={"connect_timeout": 3})
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            engine.dispose()
            _pg_state["reason"] = None
        except OperationalError as exc:
            _pg_state["reason"] = f"PostgreSQL at {PG_URL} is unreachable: {exc.orig}"
    return _pg_state["reason"]


def require_postgres() -> None:
    """Skip (or, under CI=true, fail) when PostgreSQL is unreachable."""
    reason = postgres_problem()
    if reason is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


# Every PostgreSQL engine a test opens (the runtime's pools hold up to 30 connections each) is
# disposed when the test ends, and a test's PostgreSQL sessions, tagged with its schema
# as application_name, are ended with it: two workers never exhaust max_connections.
_ENGINES: weakref.WeakSet[Engine] = weakref.WeakSet()


@event.listens_for(Engine, "engine_connect")
def _track_engine(conn: Any) -> None:
    _ENGINES.add(conn.engine)


@pytest.fixture(autouse=True)
def _quick_password_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Argon2 with its cheapest parameters in this process: tests create hundreds of users,
    and at the production cost (64 MiB, 3 passes) hashing alone took minutes of the suite.
    Servers the tests start as subprocesses keep the production parameters."""
    monkeypatch.setattr(
        passwords, "_HASHER", PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1)
    )
    monkeypatch.setattr(passwords, "_DUMMY", [])


@pytest.fixture(autouse=True)
def _dispose_engines() -> Iterator[None]:
    """Close the pooled PostgreSQL connections of every engine the test used (an
    in-memory SQLite database lives only as long as its connection, so those stay)."""
    yield
    for engine in list(_ENGINES):
        if engine.dialect.name == "postgresql":
            engine.dispose()


def _end_sessions(admin: Engine, schema: str) -> None:
    with admin.begin() as conn:
        conn.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = :name AND pid <> pg_backend_pid()"
            ),
            {"name": schema},
        )


@pytest.fixture
def pg_schema_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema, dropped afterwards."""
    require_postgres()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL, poolclass=NullPool)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{PG_URL}?options=-csearch_path%3D{schema}&application_name={schema}"
    finally:
        for engine in list(_ENGINES):
            if schema in str(engine.url):
                engine.dispose()
        _end_sessions(admin, schema)
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: object) -> Iterator[str]:
    """A database URL: a fresh SQLite file, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/test.db"
    else:
        yield request.getfixturevalue("pg_schema_url")
