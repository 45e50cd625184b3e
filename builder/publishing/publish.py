"""Plan and publish: the one transaction that takes a database to a new definition.

`make_plan` only reads. `publish` plans again inside its transaction, refuses (and
changes nothing) while a step is refused, otherwise runs every step and records
the new version. On SQLite, foreign-key enforcement is paused for the
transaction, as SQLite's own procedure for table changes asks, and every key is
checked before commit.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError

from builder.publishing.backup import Backup
from builder.publishing.diff import Planner
from builder.publishing.steps import Plan
from runtime.model import App
from runtime.schema import published
from runtime.schema.migrate import upgrade_system_tables


class PublishRefused(Exception):
    """A publish stopped by refused steps or broken references; nothing was changed."""

    def __init__(self, plan: Plan, reason: str) -> None:
        self.plan = plan
        super().__init__(reason)


@dataclass
class Outcome:
    """What a publish did."""

    plan: Plan
    version_id: int | None
    backup: Path | None


def make_plan(engine: Engine, app: App, coerce: bool = False, backups: str | Path = "backups") -> Plan:
    """The steps a publish of `app` would take now (nothing is changed)."""
    upgrade_system_tables(engine)
    with engine.connect() as conn:
        return _plan(conn, app, coerce, Backup(backups, app.app))


def _plan(conn: Connection, app: App, coerce: bool, backup: Backup) -> Plan:
    versions = published.history(conn, app.app)
    plan = Plan(app.app, app.version, coerce=coerce)
    if versions and versions[0].content_hash == published.content_hash(app):
        return plan
    old = versions[0].model() if versions else None
    history = (v.model() for v in versions)  # older definitions are read only if a retired field needs one
    planner = Planner(conn, old, app, history, coerce, backup)
    plan.steps = planner.plan()
    return plan


def publish(
    engine: Engine,
    app: App,
    *,
    coerce: bool = False,
    author: str | None = None,
    backups: str | Path = "backups",
) -> Outcome:
    """Apply the plan atomically and record the version; raise PublishRefused when refused."""
    upgrade_system_tables(engine)
    backup = Backup(backups, app.app)
    with _publishing(engine) as conn:
        plan = _plan(conn, app, coerce, backup)
        if plan.refusals:
            raise PublishRefused(plan, f"{len(plan.refusals)} step(s) refused")
        versions = published.history(conn, app.app, limit=1)
        unchanged = bool(versions) and versions[0].content_hash == published.content_hash(app)
        if unchanged:
            return Outcome(plan, None, None)
        operations = Operations(MigrationContext.configure(connection=conn))
        for step in plan.steps:
            try:
                for action in step.actions:
                    action.run(operations if action.kind == "ddl" else conn)
            except DBAPIError as exc:  # a constraint the plan did not foresee: nothing is kept
                reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
                raise PublishRefused(
                    plan, f"step '{step.words}' was refused by the database: {reason}"
                ) from exc
        _check_references(conn, plan)
        version_id = published.record(conn, app, {"steps": plan.as_json()}, author)
    return Outcome(plan, version_id, backup.path if backup.count else None)


@contextmanager
def _publishing(engine: Engine) -> Iterator[Connection]:
    with engine.connect() as conn:
        sqlite = conn.dialect.name == "sqlite"
        if sqlite:
            conn.connection.driver_connection.execute("PRAGMA foreign_keys=OFF")  # type: ignore[union-attr]
        try:
            with conn.execution_options(formloom_write=True).begin():
                yield conn
        finally:
            if sqlite:
                conn.connection.driver_connection.execute("PRAGMA foreign_keys=ON")  # type: ignore[union-attr]


def _check_references(conn: Connection, plan: Plan) -> None:
    if conn.dialect.name != "sqlite":
        return  # PostgreSQL checked every key as the statements ran
    broken = conn.execute(text("PRAGMA foreign_key_check")).fetchall()
    if broken:
        tables = sorted({row[0] for row in broken})
        raise PublishRefused(
            plan, f"{len(broken)} row(s) would point at missing records ({', '.join(tables)})"
        )
