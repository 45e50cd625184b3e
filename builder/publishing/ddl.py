"""DDL actions of a publish, as small typed factories over Alembic's operation API.

Each returns a function of `Operations`, so the same action can run against the
database or render its SQL in Alembic's offline mode for the plan.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from alembic.operations import Operations
from sqlalchemy import Column, Connection, Table, inspect, text
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


def follow_names(table: str) -> DdlAction:
    """Rename the indexes and constraints of a table after the naming convention
    (`pk_<table>`, `uq_/ix_/fk_<table>_<column>`), as they are when the step runs.

    A renamed table or column keeps the names of its indexes and constraints; they follow
    it here, so that a table or field taking the old name again can create its own. On
    PostgreSQL they are renamed in place; SQLite names only indexes database-wide, and those
    are made again under the new name. A name held elsewhere is left as it is.
    """

    def run(ops: Operations) -> None:
        context = ops.migration_context
        if context.as_sql:
            context.impl.static_output(f"-- names read as the step runs; they become pk_/uq_/ix_/fk_{table}…")
            return
        bind = ops.get_bind()
        found = inspect(bind)
        pg = bind.dialect.name == "postgresql"
        quote = bind.dialect.identifier_preparer.quote

        def rename_constraint(old: str, new: str) -> None:
            if _name_free(bind, table, new):
                ops.execute(f"ALTER TABLE {quote(table)} RENAME CONSTRAINT {quote(old)} TO {quote(new)}")

        if pg:
            primary = found.get_pk_constraint(table).get("name")
            if primary and primary != f"pk_{table}":
                rename_constraint(primary, f"pk_{table}")
            named = [("uq", u.get("name"), u["column_names"]) for u in found.get_unique_constraints(table)]
            named += [("fk", f.get("name"), f["constrained_columns"]) for f in found.get_foreign_keys(table)]
            for prefix, old, columns in named:
                if len(columns) == 1 and old and old != f"{prefix}_{table}_{columns[0]}":
                    rename_constraint(old, f"{prefix}_{table}_{columns[0]}")
        for index in found.get_indexes(table):
            name, column = index.get("name"), index.get("column_names") or []
            if len(column) != 1 or not name or not column[0] or index.get("duplicates_constraint"):
                continue
            unique = bool(index.get("unique"))
            wanted = f"{'uq' if unique else 'ix'}_{table}_{column[0]}"
            if name == wanted or not _name_free(bind, table, wanted):
                continue
            if pg:
                ops.execute(f"ALTER INDEX {quote(name)} RENAME TO {quote(wanted)}")
            else:
                ops.drop_index(name, table_name=table)
                ops.create_index(wanted, table, [column[0]], unique=unique)

    return run


def _name_free(bind: Connection, table: str, name: str) -> bool:
    """True when no index, table or constraint of the schema (of the table, for constraints
    that are not relations) holds `name`."""
    if bind.dialect.name == "postgresql":
        query = text(
            "SELECT 1 FROM pg_class WHERE relname = :name AND relnamespace = current_schema()::regnamespace "
            "UNION ALL SELECT 1 FROM pg_constraint WHERE conname = :name "
            "AND conrelid = to_regclass(quote_ident(current_schema()) || '.' || quote_ident(:table))"
        )
    else:
        query = text("SELECT 1 FROM sqlite_master WHERE name = :name")
    return bind.execute(query, {"name": name, "table": table}).first() is None
