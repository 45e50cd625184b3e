"""A published database made as good as new between scenario runs, without publishing again.

Publishing a pack (system tables migrated, form tables created, the version recorded) and
building its API take most of a scenario's time when done per run. `formloom test` does
both once per pack and database; before each run it empties every table the publish did
not fill and restarts their ids, so the run starts where a fresh publish would: no users,
no records, no jobs, autonumbers from 1. What the publish wrote stays — the version rows,
the Alembic revision — and so do the working-day rows, which only depend on the calendar.

Rows are deleted (children first), not truncated: on PostgreSQL a TRUNCATE of some forty
small tables takes over a second, a DELETE of each a few milliseconds. Should the tables'
links go round in a circle that deleting in order cannot untie, TRUNCATE … CASCADE does it.
"""

from __future__ import annotations

from sqlalchemy import Connection, Engine, inspect, text
from sqlalchemy.exc import IntegrityError

from runtime.db import write
from runtime.schema.system import ALEMBIC_VERSION_TABLE, apps, calendars, definition_versions, workdays

KEPT = frozenset({ALEMBIC_VERSION_TABLE, apps.name, definition_versions.name, workdays.name, calendars.name})

_OWNED_SEQUENCES = text(
    "SELECT s.relname FROM pg_class s "
    "JOIN pg_namespace n ON n.oid = s.relnamespace "
    "JOIN pg_depend d ON d.objid = s.oid AND d.classid = 'pg_class'::regclass "
    "JOIN pg_class t ON t.oid = d.refobjid "
    "WHERE s.relkind = 'S' AND n.nspname = current_schema() AND t.relname = ANY(:tables)"
)
_RESTART = text(
    "SELECT setval(format('%I.%I', schemaname, sequencename), start_value, false) "
    "FROM pg_sequences WHERE schemaname = current_schema() AND sequencename = ANY(:sequences)"
)


class Emptier:
    """Empties the tables of one database that a run may fill (found once, by reflection)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        with engine.connect() as conn:
            ordered = [name for name, _ in inspect(conn).get_sorted_table_and_fkc_names() if name]
            # children before the tables they link to
            self.tables = [name for name in reversed(ordered) if name not in KEPT]
            self.sequences: list[str] = []
            if conn.dialect.name == "postgresql" and self.tables:
                self.sequences = list(conn.execute(_OWNED_SEQUENCES, {"tables": self.tables}).scalars())

    def empty(self) -> None:
        """Delete every row of the tables and restart their ids, in one transaction."""
        if not self.tables:
            return
        postgres = self.engine.dialect.name == "postgresql"
        try:
            with write(self.engine) as conn:
                self._delete(conn)
                if postgres:
                    conn.execute(_RESTART, {"sequences": self.sequences})
                else:
                    self._restart_sqlite(conn)
        except IntegrityError:
            if not postgres:
                raise
            with write(self.engine) as conn:
                names = ", ".join(self._quoted(conn))
                conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))

    def _quoted(self, conn: Connection) -> list[str]:
        quote = conn.dialect.identifier_preparer.quote
        return [quote(name) for name in self.tables]

    def _delete(self, conn: Connection) -> None:
        if conn.dialect.name == "sqlite":
            conn.execute(text("PRAGMA defer_foreign_keys = ON"))  # checked at commit, when all are empty
        for name in self._quoted(conn):
            conn.execute(text(f"DELETE FROM {name}"))

    def _restart_sqlite(self, conn: Connection) -> None:
        has_sequences = conn.execute(
            text("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_sequence'")
        ).first()
        if has_sequences:
            marks = ", ".join(f":t{i}" for i in range(len(self.tables)))
            conn.execute(
                text(f"DELETE FROM sqlite_sequence WHERE name IN ({marks})"),
                {f"t{i}": name for i, name in enumerate(self.tables)},
            )
