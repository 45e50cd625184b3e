"""Data actions of a publish: fill, convert, cut, clear, recompute — each backs up what it changes.

They run inside the publish transaction, between the DDL steps, and read the table
as it is at that moment (after the steps before them).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from alembic.operations import Operations
from sqlalchemy import Column, Connection, MetaData, Table, bindparam, func, select, update

from builder.publishing.backup import Backup
from builder.publishing.convert import convert
from builder.publishing.ddl import alter, drop_constraint
from builder.publishing.inspect import LiveTable
from builder.publishing.steps import Action
from runtime.records.compiled import CompiledApp, CompiledForm
from runtime.records.dedup import group_keys
from runtime.records.recompute import recompute_fields
from runtime.records.values import Converter
from runtime.schema.types import utcnow

BATCH = 1000
DataAction = Callable[[Connection], None]


def current(conn: Connection, name: str) -> Table:
    """The table as it is now, reflected."""
    return Table(name, MetaData(), autoload_with=conn)


def _update_by_id(conn: Connection, table: Table, key: str, pairs: list[tuple[Any, Any]]) -> None:
    stmt = update(table).where(table.c.id == bindparam("_id")).values({key: bindparam("_value")})
    for start in range(0, len(pairs), BATCH):
        conn.execute(stmt, [{"_id": i, "_value": v} for i, v in pairs[start : start + BATCH]])


def fill(name: str, key: str, value: Any) -> DataAction:
    """Set the column to `value` wherever it is empty."""

    def run(conn: Connection) -> None:
        table = current(conn, name)
        conn.execute(update(table).where(table.c[key].is_(None)).values({key: value}))

    return run


def truncate(name: str, key: str, length: int, backup: Backup) -> DataAction:
    """Back up, then cut values longer than `length` characters."""

    def run(conn: Connection) -> None:
        table = current(conn, name)
        size = func.char_length if conn.dialect.name == "postgresql" else func.length
        rows = list(conn.execute(select(table.c.id, table.c[key]).where(size(table.c[key]) > length)))
        backup.write(name, key, rows, f"longer than {length} characters")
        _update_by_id(conn, table, key, [(i, v[:length]) for i, v in rows])

    return run


def clear_options(
    name: str, key: str, kind: str, removed: set[str], backup: Backup, instead: Any = None
) -> DataAction:
    """Back up, then take removed options out of the rows that use them; a row left without
    an option gets `instead` (a required field's default)."""

    def run(conn: Connection) -> None:
        table = current(conn, name)
        rows = list(conn.execute(select(table.c.id, table.c[key]).where(table.c[key].is_not(None))))
        if kind == "select":
            hit = [(i, v) for i, v in rows if v in removed]
            changed: list[tuple[Any, Any]] = [(i, instead) for i, _ in hit]
        else:
            hit = [(i, v) for i, v in rows if set(v) & removed]
            changed = [(i, [o for o in v if o not in removed] or instead) for i, v in hit]
        backup.write(name, key, hit, f"options {sorted(removed)} removed")
        _update_by_id(conn, table, key, changed)

    return run


def keep_first(name: str, key: str, backup: Backup) -> DataAction:
    """Back up, then clear a repeated value in every row but the first (lowest id) holding it."""

    def run(conn: Connection) -> None:
        table = current(conn, name)
        rows = conn.execute(
            select(table.c.id, table.c[key]).where(table.c[key].is_not(None)).order_by(table.c.id)
        )
        seen: set[Any] = set()
        repeats: list[tuple[Any, Any]] = []
        for record_id, value in rows:
            if value in seen:
                repeats.append((record_id, value))
            seen.add(value)
        backup.write(name, key, repeats, "held by an earlier row; the field became unique")
        _update_by_id(conn, table, key, [(i, None) for i, _ in repeats])

    return run


def retype_actions(
    name: str, key: str, column: Column[Any], kind: str, converter: Converter, backup: Backup
) -> list[Action]:
    """Convert a column to a new type through a new column: add, fill, drop the old, rename."""
    temporary = f"_new_{key}"[:60]

    def add(ops: Operations) -> None:
        alter(ops, name, lambda t: t.add_column(Column(temporary, column.type, nullable=True)))

    def fill_converted(conn: Connection) -> None:
        table = current(conn, name)
        rows = list(conn.execute(select(table.c.id, table.c[key]).where(table.c[key].is_not(None))))
        converted: list[tuple[Any, Any]] = []
        lost: list[tuple[Any, Any]] = []
        for record_id, value in rows:
            ok, result = convert(value, kind, converter)
            (converted if ok else lost).append((record_id, result if ok else value))
        backup.write(name, key, lost, f"does not convert to {kind}")
        _update_by_id(conn, table, temporary, converted)

    def swap(ops: Operations) -> None:
        bind = None if ops.migration_context.as_sql else ops.get_bind()
        if bind is not None:
            live = current(bind, name)
            for index in list(live.indexes):
                if key in index.columns and index.name:
                    ops.drop_index(index.name, table_name=name)

        def change(batch: Any) -> None:
            batch.drop_column(key)
            batch.alter_column(temporary, new_column_name=key)

        alter(ops, name, change)

    return [
        Action("ddl", add),
        Action(
            "data",
            fill_converted,
            f"convert every value of {key} to {kind}, backing up those that do not fit",
        ),
        Action("ddl", swap),
    ]


def drop_column_ddl(name: str, live: LiveTable, column: str) -> Callable[[Operations], None]:
    """Drop a derived column and its indexes."""

    def run(ops: Operations) -> None:
        for index in live.index_names(column):
            ops.drop_index(index, table_name=name)
        alter(ops, name, lambda t: t.drop_column(column))

    return run


def drop_unique_ddl(name: str, live: LiveTable, key: str) -> Callable[[Operations], None]:
    """Drop the unique constraints (or unique indexes) of a column, by their real names."""
    constraints = [u["name"] for u in live.uniques if u.get("column_names") == [key] and u.get("name")]
    indexes = [
        i["name"]
        for i in live.indexes
        if i.get("unique") and i.get("column_names") == [key] and i["name"] not in constraints
    ]

    def run(ops: Operations) -> None:
        for index in indexes:
            ops.drop_index(index, table_name=name)
        for constraint in constraints:
            drop_constraint(name, constraint, "unique")(ops)

    return run


def recompute(form: CompiledForm, changed: dict[str, set[str]], app: CompiledApp | None = None) -> DataAction:
    """Compute changed formula fields (by table name) of a form and its children, in SQL (with
    `app`, the rollups of other forms over them follow)."""

    def run(conn: Connection) -> None:
        recompute_fields(conn, form, changed, utcnow(), app)

    return run


def recompute_duplicate_keys(conn: Connection, form: CompiledForm) -> None:
    """Rebuild the duplicate-group keys of every row from its stored values."""
    table = current(conn, form.table.name)
    columns = [table.c[k] for k in form.fields if k in table.c]
    rows = list(conn.execute(select(table.c.id, *columns)).mappings())
    if not rows:
        return
    stmt = update(table).where(table.c.id == bindparam("_id"))
    payload = [{"_id": row["id"], **group_keys(form, dict(row))} for row in rows]
    for start in range(0, len(payload), BATCH):
        conn.execute(stmt, payload[start : start + BATCH])
