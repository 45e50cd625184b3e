"""DDL actions of a publish, as small typed factories over Alembic's operation API.

Each returns a function of `Operations`, so the same action can run against the
database or render its SQL in Alembic's offline mode for the plan.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from alembic.operations import Operations
from sqlalchemy import Column, Table
from sqlalchemy.schema import CreateIndex, CreateTable

DdlAction = Callable[[Operations], None]


def alter(ops: Operations, table: str, change: Callable[[Any], None]) -> None:
    """Change a table through Alembic's batch mode: copy-and-move on SQLite, ALTER elsewhere.

    In preview (offline) mode the statements are only rendered, never recreated.
    """
    recreate: Any = "never" if ops.migration_context.as_sql else "auto"
    with ops.batch_alter_table(table, recreate=recreate) as batch:
        change(batch)


def create_table(table: Table) -> DdlAction:
    """CREATE TABLE with its indexes, as the definition builds it."""

    def run(ops: Operations) -> None:
        context = ops.migration_context
        if context.as_sql:
            context.impl.static_output(f"{str(CreateTable(table).compile(dialect=context.dialect)).strip()};")
            for index in table.indexes:
                context.impl.static_output(f"{CreateIndex(index).compile(dialect=context.dialect)};")
            return
        table.create(ops.get_bind())

    return run


def rename_table(old: str, new: str) -> DdlAction:
    """ALTER TABLE … RENAME TO …"""
    return lambda ops: ops.rename_table(old, new)


def alter_column(table: str, column: str, **changes: Any) -> DdlAction:
    """ALTER COLUMN: rename, nullability or type."""

    def run(ops: Operations) -> None:
        alter(ops, table, lambda batch: batch.alter_column(column, **changes))

    return run


def add_column(table: str, column: Column[Any], with_index: bool) -> DdlAction:
    """ADD COLUMN, always nullable (constraints follow as their own actions)."""

    def run(ops: Operations) -> None:
        plain: Column[Any] = Column(column.name, column.type, nullable=True)
        alter(ops, table, lambda batch: batch.add_column(plain))
        if with_index:
            ops.create_index(f"ix_{table}_{column.name}", table, [column.name])

    return run


def create_unique(table: str, column: str) -> DdlAction:
    """ADD CONSTRAINT uq_… UNIQUE (column)."""

    def run(ops: Operations) -> None:
        alter(ops, table, lambda batch: batch.create_unique_constraint(f"uq_{table}_{column}", [column]))

    return run


def create_index(table: str, column: str) -> DdlAction:
    """CREATE INDEX ix_… ON table (column)."""
    return lambda ops: ops.create_index(f"ix_{table}_{column}", table, [column])


def drop_indexes(table: str, names: list[str]) -> DdlAction:
    """DROP INDEX for each name."""

    def run(ops: Operations) -> None:
        for name in names:
            ops.drop_index(name, table_name=table)

    return run


def drop_constraint(table: str, name: str, kind: str) -> DdlAction:
    """DROP CONSTRAINT (foreign key or unique) by its real name."""

    def run(ops: Operations) -> None:
        alter(ops, table, lambda batch: batch.drop_constraint(name, type_=kind))

    return run


def create_foreign_key(table: str, column: str, target: str, ondelete: str | None) -> DdlAction:
    """ADD CONSTRAINT fk_… FOREIGN KEY (column) REFERENCES target (id)."""

    def run(ops: Operations) -> None:
        alter(
            ops,
            table,
            lambda batch: batch.create_foreign_key(
                f"fk_{table}_{column}", target, [column], ["id"], ondelete=ondelete
            ),
        )

    return run
