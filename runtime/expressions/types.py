"""Value types of expressions, and the scope of names an expression may use."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from runtime.model import App, Form
from runtime.model.fields import SelectField


@dataclass(frozen=True)
class Type:
    """An expression type. `options` lists the allowed values of a select field."""

    kind: str
    options: tuple[str, ...] | None = None
    item: Type | None = None

    @property
    def numeric(self) -> bool:
        """True for integer and decimal."""
        return self.kind in ("integer", "decimal")

    def __str__(self) -> str:
        return f"list of {self.item}" if self.kind == "list" and self.item else self.kind


INTEGER = Type("integer")
DECIMAL = Type("decimal")
TEXT = Type("text")
BOOLEAN = Type("boolean")
DATE = Type("date")
DATETIME = Type("datetime")
NULL = Type("null")
REF = Type("ref")

FIELD_TYPES: dict[str, Type] = {
    "text": TEXT,
    "long_text": TEXT,
    "email": TEXT,
    "phone": TEXT,
    "url": TEXT,
    "auto_number": TEXT,
    "select": TEXT,
    "integer": INTEGER,
    "decimal": DECIMAL,
    "money": DECIMAL,
    "percent": DECIMAL,
    "boolean": BOOLEAN,
    "date": DATE,
    "datetime": DATETIME,
    "link": REF,
    "user": REF,
    "department": REF,
    "attachment": REF,
    "multi_select": Type("list", item=TEXT),
}
SYSTEM_NAMES: dict[str, Type] = {
    "id": INTEGER,
    "created_at": DATETIME,
    "updated_at": DATETIME,
    "created_by": REF,
    "version": INTEGER,
}


@dataclass
class Scope:
    """The names visible to an expression on one form."""

    form: str
    fields: dict[str, Type]
    links: dict[str, Callable[[], Scope]] = field(default_factory=dict)
    children: dict[str, Callable[[], Scope]] = field(default_factory=dict)
    singles: dict[str, Callable[[], Scope]] = field(default_factory=dict)
    # The records of other forms that link to this one (`backlinks:` of the form), by key:
    # aggregated like the rows of a table field (`COUNT(quotes)`).
    backlinks: dict[str, Callable[[], Scope]] = field(default_factory=dict)
    # Names whose definitions failed to load (a pack being checked): not judged here.
    stubs: set[str] = field(default_factory=set)
    # Outer records a condition may read as `record.field` and `parent.field`: the record being
    # edited (and, for a child row, the record holding it), apart from the form's own names.
    # Only a link's `filter` has them; they come first, before links of the same name.
    outer: dict[str, Callable[[], Scope]] = field(default_factory=dict)


OUTER_RECORD = "record"
OUTER_PARENT = "parent"


def field_type(spec: object) -> Type:
    """The expression type of a field definition."""
    kind = str(getattr(spec, "type", ""))
    if getattr(spec, "stub", False):  # a field that failed to load (runtime/loading/salvage.py)
        return NULL
    if isinstance(spec, SelectField):
        return Type("text", options=tuple(spec.option_keys()))
    if isinstance(spec, SelectField) is False and kind == "multi_select":
        keys = tuple(spec.option_keys())  # type: ignore[attr-defined]
        return Type("list", item=Type("text", options=keys))
    return FIELD_TYPES[kind]


def scope_for(app: App, form: Form) -> Scope:
    """The scope of `form`: its fields, the system columns, links and child tables."""
    fields = {f.key: field_type(f) for f in form.stored_fields()}
    if not form.child:
        fields = {**SYSTEM_NAMES, **fields}
    scope = Scope(form.form, fields)
    scope.stubs = {f.key for f in form.fields if getattr(f, "stub", False)}
    for spec in form.link_fields():
        target = app.form(spec.to)
        if target is not None:
            scope.links[spec.key] = _lazy(app, target)
        else:
            scope.stubs.add(spec.key)
    for table in form.table_fields():
        child = app.form(table.form)
        if child is not None:
            scope.children[table.key] = _lazy(app, child)
        else:
            scope.stubs.add(table.key)
    for backlink in form.backlinks:  # a key a field has already is reported where it is written
        source = app.form(backlink.form)
        if source is None:
            scope.stubs.add(backlink.key)
        elif backlink.key not in fields and backlink.key not in scope.children:
            scope.backlinks.setdefault(backlink.key, _lazy(app, source))
    for other in app.forms:
        if other.single and other.form not in fields and other.form not in scope.backlinks:
            scope.singles[other.form] = _lazy(app, other)
    return scope


def _lazy(app: App, form: Form) -> Callable[[], Scope]:
    return lambda: scope_for(app, form)


def filter_scope(app: App, target: Form, edited: Form, parent: Form | None = None) -> Scope:
    """The scope of a link's `filter`: the linked form `target`, plus `record.field` for the
    fields of the record (or child row) being edited and, for a child row, `parent.field`
    for the record holding it. Only fields with a column are outer names, not their links."""
    scope = scope_for(app, target)
    scope.outer[OUTER_RECORD] = lambda: _outer(app, edited)
    if parent is not None:
        scope.outer[OUTER_PARENT] = lambda: _outer(app, parent)
    return scope


def _outer(app: App, form: Form) -> Scope:
    return Scope(form.form, scope_for(app, form).fields)
