"""Form definitions become SQLAlchemy tables: one per form, one per child table."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)
from sqlalchemy.types import TypeEngine

from runtime.model import App, Form
from runtime.model.fields import DecimalField, LinkField, TableField
from runtime.schema.system import ID, NAMING, departments, files, users
from runtime.schema.types import ExactDecimal, UTCDateTime, json_type

MONEY = (18, 2)
PERCENT = (12, 6)


@dataclass
class FormTable:
    """A form's table, and the child table behind each of its table fields."""

    form: Form
    table: Table
    children: dict[str, ChildTable] = field(default_factory=dict)


@dataclass
class ChildTable:
    """The rows of one table field, shaped by the child form."""

    field: TableField
    form: Form
    table: Table


@dataclass
class AppTables:
    """All tables of one app, sharing one MetaData with copies of the system tables."""

    app: App
    metadata: MetaData
    forms: dict[str, FormTable]

    def of(self, form_key: str) -> FormTable:
        """The tables of a top-level form."""
        return self.forms[form_key]


def table_name(app: App, form: Form, table_field: TableField | None = None) -> str:
    """`app__form` for a form, `app__form__field` for the child rows of a table field."""
    base = f"{app.app}__{form.form}"
    return f"{base}__{table_field.key}" if table_field else base


def build_tables(app: App) -> AppTables:
    """Build the SQLAlchemy tables of an app (nothing is created in a database here)."""
    metadata = MetaData(naming_convention=NAMING)
    departments.to_metadata(metadata)
    users.to_metadata(metadata)
    files.to_metadata(metadata)
    result: dict[str, FormTable] = {}
    for form in app.top_forms():
        table = Table(
            table_name(app, form),
            metadata,
            *_system_columns(),
            *_columns(app, form),
            *_dedup_columns(app, form),
        )
        result[form.form] = FormTable(form, table)
    for form_table in result.values():
        for table_field in form_table.form.table_fields():
            child_form = app.form(table_field.form)
            assert child_form is not None
            name = table_name(app, form_table.form, table_field)
            parent = form_table.table
            child = Table(name, metadata, *_child_columns(parent), *_columns(app, child_form))
            form_table.children[table_field.key] = ChildTable(table_field, child_form, child)
    return AppTables(app, metadata, result)


def _system_columns() -> list[Column[Any]]:
    return [
        Column("id", ID, primary_key=True, autoincrement=True),
        Column("created_at", UTCDateTime(), nullable=False),
        Column("updated_at", UTCDateTime(), nullable=False),
        Column("created_by", ID, ForeignKey("formloom_users.id"), nullable=True),
        Column("version", Integer, nullable=False, default=1),
    ]


def _dedup_columns(app: App, form: Form) -> list[Column[Any]]:
    """Forms with duplicate groups keep a normalised key per group and a merge pointer."""
    if not form.duplicates:
        return []
    keys = [Column(f"_dup_{i}", String(40), index=True) for i in range(len(form.duplicates))]
    target = f"{table_name(app, form)}.id"
    merged = Column("_merged_into", ID, ForeignKey(target, ondelete="SET NULL"), nullable=True, index=True)
    return [*keys, merged]


def _child_columns(parent: Table) -> list[Column[Any]]:
    return [
        Column("id", ID, primary_key=True, autoincrement=True),
        Column(
            "parent_id",
            ID,
            ForeignKey(parent.c.id, ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        Column("position", Integer, nullable=False),
    ]


def _columns(app: App, form: Form) -> list[Column[Any]]:
    return [column_for(app, f) for f in form.stored_fields()]


def column_for(app: App, spec: Any) -> Column[Any]:
    """The column that stores one field."""
    args: list[Any] = [column_type(spec)]
    if isinstance(spec, LinkField):
        ondelete = "SET NULL" if spec.on_delete == "set_null" else "RESTRICT"
        # Forms may link to each other (or to themselves, or in a ring): a link's key is
        # added after every table exists (ALTER TABLE … ADD CONSTRAINT; SQLite, which has no
        # such statement, declares it in CREATE TABLE and resolves it lazily). So tables
        # need no order, and no cycle makes SQLAlchemy warn that it cannot sort them.
        args.append(ForeignKey(f"{app.app}__{spec.to}.id", ondelete=ondelete, use_alter=True))
    elif spec.type == "user":
        args.append(ForeignKey("formloom_users.id"))
    elif spec.type == "department":
        args.append(ForeignKey("formloom_departments.id"))
    elif spec.type == "attachment":
        args.append(ForeignKey("formloom_files.id"))
    unique = bool(getattr(spec, "unique", False)) or spec.type == "auto_number"
    indexed = spec.index or spec.type in ("link", "user", "department")
    return Column(
        spec.key,
        *args,
        nullable=not (spec.required or spec.type == "auto_number"),
        unique=unique or None,
        index=(indexed and not unique) or None,
    )


def column_type(spec: Any) -> TypeEngine[Any]:
    """The SQL type of a field, the same shape on SQLite and PostgreSQL."""
    kind = spec.type
    if kind in ("text", "email", "phone", "url"):
        return String(spec.max_length)
    if kind == "long_text":
        return Text()
    if kind == "integer":
        return BigInteger()
    if isinstance(spec, DecimalField):
        return ExactDecimal(spec.precision, spec.scale)
    if kind in ("money", "percent"):
        precision, scale = MONEY if kind == "money" else PERCENT
        return ExactDecimal(precision, scale)
    if kind == "boolean":
        return Boolean(create_constraint=False)
    if kind == "date":
        return Date()
    if kind == "datetime":
        return UTCDateTime()
    if kind == "select":
        return String(64)
    if kind == "multi_select":
        json: TypeEngine[Any] = json_type()
        return json
    if kind in ("link", "user", "department", "attachment"):
        return ID
    if kind == "auto_number":
        return String(64)
    raise ValueError(f"no column type for field type {kind!r}")
