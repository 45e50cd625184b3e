"""Per-form facts the records service needs on every request, worked out once at start."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Table

from runtime.model import App, Form
from runtime.model.fields import TITLE_TYPES, TableField
from runtime.records.logic import Clock, FormLogic, compile_logic
from runtime.records.values import SQLITE_EXACT_DIGITS, Converter, converter_for
from runtime.schema.tables import AppTables, FormTable
from runtime.schema.types import utcnow

DISPLAY_TYPES = TITLE_TYPES


@dataclass
class CompiledField:
    """A stored field with its converter."""

    spec: Any
    convert: Converter

    @property
    def key(self) -> str:
        """The field key (also its column name)."""
        return str(self.spec.key)

    @property
    def type(self) -> str:
        """The field type."""
        return str(self.spec.type)


@dataclass
class CompiledForm:
    """A form (or a child form under one table field) ready for reads and writes."""

    app: App
    form: Form
    table: Table
    fields: dict[str, CompiledField]
    children: dict[str, CompiledForm] = field(default_factory=dict)
    parent: CompiledForm | None = None
    title_field: str = "id"
    logic: FormLogic = field(default_factory=FormLogic)
    cache: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """The form key."""
        return self.form.form

    def writable(self, *, read_only_too: bool = False) -> dict[str, CompiledField]:
        """Fields the API may set (the process engine also sets read-only ones)."""
        return {
            k: f
            for k, f in self.fields.items()
            if (read_only_too or not f.spec.read_only) and f.type != "auto_number" and f.spec.formula is None
        }


@dataclass
class CompiledApp:
    """Every top-level form of an app, compiled; link targets resolve through `forms`."""

    app: App
    tables: AppTables
    forms: dict[str, CompiledForm]

    def form(self, key: str) -> CompiledForm:
        """A top-level form; KeyError when unknown."""
        return self.forms[key]


def compile_app(
    app: App, tables: AppTables, dialect: str = "postgresql", clock: Clock = utcnow
) -> CompiledApp:
    """Compile every top-level form of `app` against its tables, for one database dialect."""
    exact = SQLITE_EXACT_DIGITS if dialect == "sqlite" else None
    forms = {key: _compile_form(app, ft, exact, clock) for key, ft in tables.forms.items()}
    return CompiledApp(app, tables, forms)


def title_field_of(form: Form) -> str:
    """The field shown as a record's name: `title_field`, else the first text-like field."""
    if form.title_field:
        spec = form.field(form.title_field)
        if spec is not None and spec.type in DISPLAY_TYPES:
            return form.title_field
        return "id"
    for spec in form.stored_fields():
        if spec.type in ("text", "auto_number", "email"):
            return spec.key
    return "id"


def _compile_form(app: App, form_table: FormTable, exact: int | None, clock: Clock) -> CompiledForm:
    compiled = _compiled(app, form_table.form, form_table.table, exact, clock)
    for key, child in form_table.children.items():
        sub = _compiled(app, child.form, child.table, exact, clock)
        sub.parent = compiled
        compiled.children[key] = sub
    return compiled


def _compiled(app: App, form: Form, table: Table, exact: int | None, clock: Clock) -> CompiledForm:
    fields = {f.key: CompiledField(f, converter_for(app, f, exact)) for f in form.stored_fields()}
    converters = {key: f.convert for key, f in fields.items()}
    logic = compile_logic(app, form, converters, clock)
    return CompiledForm(app, form, table, fields, title_field=title_field_of(form), logic=logic)


def child_field(form: CompiledForm, key: str) -> TableField:
    """The table field `key` of a form."""
    spec = form.form.field(key)
    assert isinstance(spec, TableField)
    return spec
