"""Read records: one SELECT with joins for link display values, one batched query per child table."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Select, select
from sqlalchemy.sql.elements import ColumnElement

from runtime.records.compiled import CompiledApp, CompiledForm
from runtime.records.files import file_url

Row = dict[str, Any]
SYSTEM_READ = ("created_at", "updated_at", "version")


class Reader:
    """Builds the record SELECT of a form and turns its rows into API JSON."""

    def __init__(self, app: CompiledApp, form: CompiledForm) -> None:
        self.app = app
        self.form = form
        self.columns: list[ColumnElement[Any]] = []
        self.display: dict[str, ColumnElement[Any]] = {}
        self.linked: dict[str, tuple[Any, Any]] = {}  # link key -> (form table, its alias here)
        self.joins: list[tuple[Any, ColumnElement[bool]]] = []
        self._writers: list[Callable[[Any, Row], None]] = []
        self._plan()

    def select(self) -> Select[Any]:
        """SELECT of every column and display value, joins included, no WHERE yet."""
        source: Any = self.form.table
        for target, condition in self.joins:
            source = source.outerjoin(target, condition)
        return select(*self.columns).select_from(source)

    def sort_column(self, key: str) -> ColumnElement[Any]:
        """What sorting on `key` orders by: a link's display value, else the column."""
        return self.display.get(key, self.form.table.c[key])

    def to_json(self, row: Any) -> Row:
        """One result row as the API's record JSON (children not included)."""
        record: Row = {}
        for write in self._writers:
            write(row, record)
        return record

    def _plan(self) -> None:
        table = self.form.table
        self._add_plain("id", table.c.id, int)
        if self.form.parent is not None:
            self._add_plain("position", table.c.position, int)
        for field in self.form.fields.values():
            kind = field.type
            if kind == "link":
                self._add_link(field.key, field.spec.to)
            elif kind == "user":
                self._add_user(field.key)
            elif kind == "department":
                self._add_department(field.key)
            elif kind == "attachment":
                self._add_attachment(field.key)
            else:
                self._add_plain(field.key, table.c[field.key], _plain_encoder(kind))
        if self.form.parent is None and self.form.form.duplicates:
            alias = table.alias(f"m_{self.form.key}")
            self.linked["merged_into"] = (table, alias)
            self._add_reference("merged_into", alias, alias.c[self.form.title_field], column="_merged_into")
        if self.form.parent is None:
            self._add_user("created_by")
            for key in SYSTEM_READ:
                self._add_plain(
                    key, table.c[key], _plain_encoder("datetime" if key != "version" else "integer")
                )

    def _add_plain(self, key: str, column: ColumnElement[Any], encode: Callable[[Any], Any]) -> None:
        index = len(self.columns)
        label = f"c_{index}"
        self.columns.append(column.label(label))

        def write(row: Any, record: Row) -> None:
            value = row[index]  # by position: much cheaper than by name
            record[key] = None if value is None else encode(value)

        self._writers.append(write)

    def _add_reference(
        self, key: str, target: Any, display: ColumnElement[Any], column: str | None = None
    ) -> None:
        source = self.form.table.c[column or key]
        at = len(self.columns)
        self.columns.extend([source.label(f"c_{at}"), display.label(f"c_{at + 1}")])
        self.joins.append((target, source == target.c.id))
        self.display[key] = display

        def write(row: Any, record: Row) -> None:
            ref = row[at]
            shown = row[at + 1]
            record[key] = None if ref is None else {"id": ref, "display": _display(shown, ref)}

        self._writers.append(write)

    def _add_link(self, key: str, target_form: str) -> None:
        target = self.app.form(target_form)
        alias = target.table.alias(f"l_{self.form.key}_{key}")
        self.linked[key] = (target.table, alias)
        self._add_reference(key, alias, alias.c[target.title_field])

    def _add_user(self, key: str) -> None:
        alias = self.app.tables.metadata.tables["formloom_users"].alias(f"u_{key}")
        self._add_reference(key, alias, alias.c.display_name)

    def _add_department(self, key: str) -> None:
        alias = self.app.tables.metadata.tables["formloom_departments"].alias(f"d_{key}")
        self._add_reference(key, alias, alias.c.name)

    def _add_attachment(self, key: str) -> None:
        table = self.form.table
        files = self.app.tables.metadata.tables["formloom_files"].alias(f"f_{key}")
        # the file is named by its public id; its sequential id never leaves the service
        parts = [files.c.public_id, files.c.name, files.c.size, files.c.content_type, files.c.checksum]
        at = len(self.columns)
        labels = [f"c_{at + i}" for i in range(len(parts))]
        self.columns.extend(p.label(n) for p, n in zip(parts, labels, strict=True))
        self.joins.append((files, table.c[key] == files.c.id))

        def write(row: Any, record: Row) -> None:
            ref, name, size, kind, checksum = row[at : at + 5]
            record[key] = (
                None
                if ref is None
                else {
                    "id": ref,
                    "name": name,
                    "size": size,
                    "type": kind,
                    "checksum": checksum,
                    "url": file_url(ref),
                }
            )

        self._writers.append(write)


def load_children(conn: Connection, app: CompiledApp, form: CompiledForm, records: Sequence[Row]) -> None:
    """Nest each table field's rows into `records`, one query per table field."""
    if not records or not form.children:
        return
    ids = [r["id"] for r in records]
    for key, child in form.children.items():
        rows_by_parent: dict[int, list[Row]] = defaultdict(list)
        reader = reader_for(app, child)
        table = child.table
        stmt = reader.select().add_columns(table.c.parent_id.label("parent_id_"))
        stmt = stmt.where(table.c.parent_id.in_(ids)).order_by(table.c.parent_id, table.c.position)
        for row in conn.execute(stmt).all():  # fetch first: converting while fetching stalls threads
            rows_by_parent[row[-1]].append(reader.to_json(row))  # parent_id_ comes last
        for record in records:
            record[key] = rows_by_parent.get(record["id"], [])


def reader_for(app: CompiledApp, form: CompiledForm) -> Reader:
    """The reader of a compiled form, built once."""
    cached = form.cache.get("reader")
    if not isinstance(cached, Reader):
        cached = form.cache["reader"] = Reader(app, form)
    return cached


def read_records(conn: Connection, app: CompiledApp, form: CompiledForm, stmt: Select[Any]) -> list[Row]:
    """Run a record SELECT and return the records with their child rows."""
    reader = reader_for(app, form)
    rows = conn.execute(stmt).all()  # fetch all, then convert: SQLite hands the GIL over per fetch
    records = [reader.to_json(row) for row in rows]
    load_children(conn, app, form, records)
    return records


def _display(shown: Any, ref: Any) -> str:
    if shown is None:
        return f"#{ref}"
    return str(_plain_encoder("any")(shown))


def _plain_encoder(kind: str) -> Callable[[Any], Any]:
    if kind == "datetime":
        return iso_datetime
    if kind in ("decimal", "money", "percent"):
        return _decimal_text
    if kind == "date":
        return _iso
    if kind == "multi_select":
        return list
    if kind == "any":
        return _any
    return _same


def _same(value: Any) -> Any:
    return value


def _iso(value: dt.date) -> str:
    return value.isoformat()


def iso_or_none(value: dt.datetime | None) -> str | None:
    """`iso_datetime`, keeping None."""
    return None if value is None else iso_datetime(value)


def iso_datetime(value: dt.datetime) -> str:
    """A datetime as the API writes it: UTC, ISO 8601, with a Z."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _decimal_text(value: Any) -> str:
    return str(value if isinstance(value, Decimal) else Decimal(str(value)))


def _any(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return iso_datetime(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def ids_of(records: Iterable[Row]) -> list[int]:
    """The ids of some records."""
    return [int(r["id"]) for r in records]
