"""List queries: filters (`field__op=value`), sort (`-field,other`) and paging, parsed and applied.

Every value is converted by the field's type before it reaches SQL, and only known
fields and operators are accepted, so nothing from the query string becomes SQL text.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    Select,
    String,
    and_,
    case,
    exists,
    func,
    literal_column,
    null,
    select,
    true,
    type_coerce,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.sql.elements import ColumnElement

from runtime.expressions.checker import Checked, check
from runtime.expressions.parser import parse
from runtime.expressions.syntax import ExpressionError
from runtime.expressions.to_sql import Guard, SqlScope, to_sql
from runtime.expressions.types import BOOLEAN, NULL, Scope, scope_for
from runtime.records.compiled import CompiledForm
from runtime.records.errors import FieldProblem, InvalidRecord
from runtime.records.reader import Reader
from runtime.records.values import ValueProblem, parse_datetime, parse_reference
from runtime.schema import calendar
from runtime.schema.types import utcnow

MAX_LIMIT = 500
DEFAULT_LIMIT = 50
PAGING = {"limit", "offset", "sort", "count"}
TEXT_TYPES = {"text", "long_text", "email", "phone", "url", "auto_number"}
ORDERED_TYPES = {"integer", "decimal", "money", "percent", "date", "datetime"}
OPERATORS: dict[str, set[str]] = {
    "eq": TEXT_TYPES | ORDERED_TYPES | {"boolean", "select", "link", "user", "department"},
    "ne": TEXT_TYPES | ORDERED_TYPES | {"boolean", "select", "link", "user", "department"},
    "lt": TEXT_TYPES | ORDERED_TYPES,
    "lte": TEXT_TYPES | ORDERED_TYPES,
    "gt": TEXT_TYPES | ORDERED_TYPES,
    "gte": TEXT_TYPES | ORDERED_TYPES,
    "in": TEXT_TYPES | ORDERED_TYPES | {"select", "link", "user", "department"},
    "contains": TEXT_TYPES | {"multi_select"},
    "startswith": TEXT_TYPES,
    "isnull": TEXT_TYPES
    | ORDERED_TYPES
    | {"boolean", "select", "multi_select", "link", "user", "department", "attachment"},
}
SYSTEM_TYPES = {
    "id": "integer",
    "created_at": "datetime",
    "updated_at": "datetime",
    "created_by": "user",
    "version": "integer",
}
MAX_IN = 500
DIGITS = re.compile(r"[0-9]{1,19}")


@dataclass
class Filter:
    """One condition: a field, an operator and the converted value."""

    key: str
    op: str
    value: Any


@dataclass
class Reading:
    """Who a list query reads for: what their conditions may name, which linked rows they see.

    Built by `runtime.records.access.reading_for`; the default reads as the system does
    (every field, every linked row).
    """

    hidden: frozenset[str] = frozenset()
    names: Callable[[], Scope] | None = None  # the scope of `where=`; None: every field
    user_id: int | None = None
    guard: Guard | None = None  # the reader's row scope on linked forms


@dataclass
class ListQuery:
    """A parsed list request."""

    filters: list[Filter] = field(default_factory=list)
    sort: list[tuple[str, bool]] = field(default_factory=list)
    limit: int = DEFAULT_LIMIT
    offset: int = 0
    count: bool = False
    where: Checked | None = None
    reading: Reading = field(default_factory=Reading)


def parse_list_query(
    form: CompiledForm, params: Iterable[tuple[str, str]], reading: Reading | None = None
) -> ListQuery:
    """Parse query-string pairs; every bad parameter is reported at once (422).

    Hidden fields are unknown here: no filter, sort or condition may probe them.
    """
    reading = reading or Reading()
    hidden = reading.hidden
    query = ListQuery(limit=form.form.list_view.page_size, reading=reading)
    query.sort = [(key, desc) for key, desc in _default_sort(form) if key not in hidden]
    problems: list[FieldProblem] = []
    for name, raw in params:
        try:
            if "\x00" in raw or "\x00" in name:
                raise ValueProblem("invalid", "must not contain NUL characters")
            _refuse_hidden(name, raw, hidden)
            _apply_param(form, query, name, raw, reading.names)
        except ValueProblem as exc:
            problems.append(FieldProblem(f"query.{name}", exc.code, str(exc)))
    if problems:
        raise InvalidRecord(problems)
    return query


def _default_sort(form: CompiledForm) -> list[tuple[str, bool]]:
    return [(key.lstrip("-"), key.startswith("-")) for key in form.form.list_view.sort]


def _refuse_hidden(name: str, raw: str, hidden: frozenset[str]) -> None:
    keys = (
        [part.strip().lstrip("-") for part in raw.split(",")] if name == "sort" else [name.partition("__")[0]]
    )
    for key in keys:
        if key in hidden:
            raise ValueProblem("unknown_field", f"'{key[:60]}' is not a field you can use here")


def _apply_param(
    form: CompiledForm, query: ListQuery, name: str, raw: str, where_scope: Callable[[], Scope] | None = None
) -> None:
    if name == "limit":
        query.limit = _bounded_int(raw, 1, MAX_LIMIT)
    elif name == "offset":
        query.offset = _bounded_int(raw, 0, 10**9)
    elif name == "count":
        query.count = _flag(raw)
    elif name == "sort":
        query.sort = [_sort_key(form, part) for part in raw.split(",") if part.strip()]
    elif name == "where":
        query.where = _where(form, raw, where_scope)
    else:
        key, _, op = name.partition("__")
        query.filters.append(_filter(form, key, op or "eq", raw))


def where_condition(form: CompiledForm, raw: str) -> Checked:
    """A true/false expression on `form`, checked with the definition's full scope."""
    return _where(form, raw, None)


def _where(form: CompiledForm, raw: str, where_scope: Callable[[], Scope] | None) -> Checked:
    try:
        scope = where_scope() if where_scope is not None else scope_for(form.app, form.form)
        checked = check(parse(raw), scope, raw)
    except ExpressionError as exc:
        raise ValueProblem(exc.code, str(exc)) from exc
    if checked.type not in (BOOLEAN, NULL):
        raise ValueProblem("expression", f"the condition gives a {checked.type} value, not true or false")
    return checked


def _bounded_int(raw: str, low: int, high: int) -> int:
    if not DIGITS.fullmatch(raw.strip()) or not low <= int(raw) <= high:
        raise ValueProblem("invalid", f"must be a whole number from {low} to {high}")
    return int(raw)


def _flag(raw: str) -> bool:
    if raw not in ("true", "false"):
        raise ValueProblem("invalid", "must be true or false")
    return raw == "true"


def field_type(form: CompiledForm, key: str) -> str:
    """The type of a filterable or sortable key, system columns included."""
    if key in form.fields:
        return form.fields[key].type
    if key in SYSTEM_TYPES and form.parent is None:
        return SYSTEM_TYPES[key]
    if key == "merged_into" and form.parent is None and form.form.duplicates:
        return "link"
    raise ValueProblem("unknown_field", f"'{key[:60]}' is not a field of {form.key}")


def _sort_key(form: CompiledForm, part: str) -> tuple[str, bool]:
    part = part.strip()
    key = part.lstrip("-")
    if field_type(form, key) == "multi_select":
        raise ValueProblem("invalid", f"cannot sort on the multi_select field '{key}'")
    return key, part.startswith("-")


def _filter(form: CompiledForm, key: str, op: str, raw: str) -> Filter:
    kind = field_type(form, key)
    allowed = OPERATORS.get(op)
    if allowed is None:
        raise ValueProblem("unknown_operator", f"unknown operator '{op[:20]}'; use {sorted(OPERATORS)}")
    if kind not in allowed:
        raise ValueProblem("invalid_operator", f"operator '{op}' does not apply to a {kind} field")
    if op == "isnull":
        return Filter(key, op, _flag(raw))
    if op in ("contains", "startswith"):
        if kind == "multi_select":
            return Filter(key, op, form.fields[key].convert([raw])[0])
        return Filter(key, op, raw)
    if op == "in":
        parts = [p for p in raw.split(",") if p != ""]
        if not parts or len(parts) > MAX_IN:
            raise ValueProblem("invalid", f"give 1 to {MAX_IN} comma-separated values")
        return Filter(key, op, [_value(form, key, kind, p) for p in parts])
    return Filter(key, op, _value(form, key, kind, raw))


def _value(form: CompiledForm, key: str, kind: str, raw: str) -> Any:
    if kind in ("link", "user", "department") or key == "id":
        if not DIGITS.fullmatch(raw):
            raise ValueProblem("type", "must be a record id")
        return parse_reference(int(raw))
    if kind == "boolean":
        return _flag(raw)
    if kind == "datetime":
        return parse_datetime(raw)
    if kind in ("email", "phone"):
        try:
            return form.fields[key].convert(raw)
        except ValueProblem:
            return raw
    if kind in TEXT_TYPES:
        return raw
    if key in form.fields:
        return form.fields[key].convert(raw)
    return _bounded_int(raw, 0, 2**31 - 1)  # `version`, a 32-bit column


def apply_list_query(
    form: CompiledForm,
    reader: Reader,
    stmt: Select[Any],
    query: ListQuery,
    dialect: str,
    scope: ColumnElement[bool] | None = None,
) -> Select[Any]:
    """The page: WHERE, ORDER BY (with `id` as the tie-breaker), LIMIT and OFFSET.

    The page's ids are chosen first, by the table alone (the database drops the link
    joins nothing reads there); the display values are then joined for those rows only.
    """
    order = list_order(form, reader, query, dialect)
    page = stmt.with_only_columns(form.table.c.id).where(filter_clause(form, query, dialect))
    if scope is not None:
        page = page.where(scope)
    page = page.order_by(*order).limit(query.limit + 1).offset(query.offset)
    return stmt.where(form.table.c.id.in_(page.scalar_subquery())).order_by(*order)


def list_order(
    form: CompiledForm, reader: Reader, query: ListQuery, dialect: str
) -> list[ColumnElement[Any]]:
    """ORDER BY of a list: the sort keys, empty values last, then `id` as the tie-breaker."""
    order: list[ColumnElement[Any]] = []
    for key, descending in query.sort:
        column = text_order(_guarded_sort(reader, key, query.reading.guard), dialect)
        order.append(column.desc().nulls_last() if descending else column.asc().nulls_last())
    order.append(form.table.c.id.desc() if query.sort[-1:] == [("id", True)] else form.table.c.id)
    return order


def _guarded_sort(reader: Reader, key: str, guard: Guard | None) -> ColumnElement[Any]:
    """A link sorts by the linked title only where the reader may read the linked record."""
    column = reader.sort_column(key)
    linked = reader.linked.get(key)
    condition = guard(*linked) if guard is not None and linked is not None else None
    return column if condition is None else case((condition, column), else_=null())


def filter_clause(form: CompiledForm, query: ListQuery, dialect: str) -> ColumnElement[bool]:
    """All filters, and the `where` expression, joined with AND."""
    conditions = [_condition(form, f, dialect) for f in query.filters]
    if form.form.duplicates and not any(f.key == "merged_into" for f in query.filters):
        conditions.append(form.table.c._merged_into.is_(None))  # merged records stay out of lists
    if query.where is not None:
        scope = sql_scope(form, dialect)
        scope.user_id = query.reading.user_id
        scope.guard = query.reading.guard
        conditions.append(to_sql(query.where, scope))
    return and_(*conditions) if conditions else true()


def sql_scope(form: CompiledForm, dialect: str, now: dt.datetime | None = None) -> SqlScope:
    """The tables an expression on `form` may read, for the SQL compiler."""
    tables = form.table.metadata.tables
    links = {
        key: tables[f"{form.app.app}__{field.spec.to}"]
        for key, field in form.fields.items()
        if field.type == "link"
    }
    children = {key: child.table for key, child in form.children.items()}
    singles = {f.form: tables[f"{form.app.app}__{f.form}"] for f in form.app.forms if f.single}
    scope = SqlScope(form.table, dialect, links, children, singles, now=now or utcnow(), zone=form.app.zone())
    scope.app = form.app.app
    for backlink in form.form.backlinks if form.parent is None else []:  # records linking here
        scope.backlinks[backlink.key] = (tables[f"{form.app.app}__{backlink.form}"], backlink.link)
    metadata = form.table.metadata
    scope.workdays_ready = lambda: calendar.rows_ready(metadata)
    for key, item in form.fields.items():  # the rows of linked records, for LOOKUP
        target = form.app.form(item.spec.to) if item.type == "link" else None
        if target is None:
            continue
        for table in target.table_fields():
            scope.link_children[(key, table.key)] = tables[f"{form.app.app}__{target.form}__{table.key}"]
    return scope


def _condition(form: CompiledForm, item: Filter, dialect: str) -> ColumnElement[bool]:
    column: Any = form.table.c["_merged_into" if item.key == "merged_into" else item.key]
    if item.op == "isnull":
        null_check: ColumnElement[bool] = column.is_(None) if item.value else column.is_not(None)
        return null_check
    if item.op == "contains" and field_type(form, item.key) == "multi_select":
        return _json_contains(column, item.value, dialect)
    if item.op in ("lt", "lte", "gt", "gte") and isinstance(column.type, String):
        column = column.collate(_BINARY[dialect == "postgresql"])
    build: Callable[[Any, Any], ColumnElement[bool]] = _BUILDERS[item.op]
    return build(column, item.value)


_BINARY = {True: "C", False: "BINARY"}


def text_order(column: ColumnElement[Any], dialect: str) -> ColumnElement[Any]:
    """Text sorts the same on every database: case-insensitive, then by code point."""
    if isinstance(column.type, String):
        return func.lower(column).collate(_BINARY[dialect == "postgresql"])
    return column


_BUILDERS: dict[str, Callable[[Any, Any], ColumnElement[bool]]] = {
    "eq": lambda c, v: c == v,
    "ne": lambda c, v: (c != v) | c.is_(None),
    "lt": lambda c, v: c < v,
    "lte": lambda c, v: c <= v,
    "gt": lambda c, v: c > v,
    "gte": lambda c, v: c >= v,
    "in": lambda c, v: c.in_(v),
    "contains": lambda c, v: c.icontains(v, autoescape=True),
    "startswith": lambda c, v: c.istartswith(v, autoescape=True),
}


def _json_contains(column: Any, value: str, dialect: str) -> ColumnElement[bool]:
    if dialect == "postgresql":
        contains: ColumnElement[bool] = type_coerce(column, JSONB).contains([value])
        return contains
    each = func.json_each(column).table_valued("value")
    return exists(select(literal_column("1")).select_from(each).where(each.c.value == value))
