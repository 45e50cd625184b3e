"""Purge: the one command that drops data — retired columns and tables — after writing a backup."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, select

from builder.publishing import ddl
from builder.publishing.backup import Backup
from builder.publishing.data import current
from builder.publishing.inspect import Live
from builder.publishing.publish import _publishing
from runtime.model import App
from runtime.schema.tables import build_tables

KEEP = {"id", "created_at", "updated_at", "created_by", "version", "parent_id", "position", "_merged_into"}


@dataclass
class Retired:
    """What a purge would drop."""

    columns: list[tuple[str, str]] = field(default_factory=list)
    tables: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        """True when nothing is retired."""
        return not self.columns and not self.tables


def find_retired(engine: Engine, app: App) -> Retired:
    """Columns and tables of the app that the published definition no longer uses."""
    with engine.connect() as conn:
        return _retired(Live(conn), app)


def _retired(live: Live, app: App) -> Retired:
    target = build_tables(app).metadata.tables
    found = Retired()
    for name in sorted(live.names):
        if not name.startswith(f"{app.app}__"):
            continue
        if name not in target:
            found.tables.append(name)
            continue
        for column in live.table(name).columns:
            if column not in target[name].c and column not in KEEP and not column.startswith("_dup_"):
                found.columns.append((name, column))
    found.tables.sort(key=len, reverse=True)  # child tables before their parents
    return found


def _drop_column(operations: Operations, table: str, column: str) -> None:
    def drop(batch: Any) -> None:
        batch.drop_column(column)

    ddl.alter(operations, table, drop)


def purge(engine: Engine, app: App, backups: str | Path = "backups") -> tuple[Retired, Path | None]:
    """Back up, then drop every retired column and table of the app, in one transaction."""
    backup = Backup(backups, f"{app.app}-purge")
    with _publishing(engine) as conn:
        found = _retired(Live(conn), app)
        operations = Operations(MigrationContext.configure(connection=conn))
        for table, column in found.columns:
            live = current(conn, table)
            values = conn.execute(select(live.c.id, live.c[column]).where(live.c[column].is_not(None)))
            backup.write(table, column, [(r[0], r[1]) for r in values], "retired column purged")
            indexes = [str(i.name) for i in live.indexes if column in i.columns and i.name]
            ddl.drop_indexes(table, indexes)(operations)
            _drop_column(operations, table, column)
        for table in found.tables:
            live = current(conn, table)
            rows = [dict(r) for r in conn.execute(select(live)).mappings()]
            backup.write(table, "*", [(r["id"], r) for r in rows], "retired table purged")
            operations.drop_table(table)
    return found, backup.path if backup.count or not found.empty else None
