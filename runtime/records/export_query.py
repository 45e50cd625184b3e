"""What a record export holds: its columns (the list's, or `fields=`), its query and typed values.

An export takes the list's query parameters (filters, `where`, `sort`); the paging
ones (`limit`, `offset`, `count`) are accepted and ignored, so a list URL exports as
it is, every page at once. `fields=a,b` chooses the columns; a hidden field is an
unknown one, as in filters. Values come out typed for a spreadsheet: numbers as
Decimal, dates as dates, datetimes in the app's time zone; links stay `{id, display}`
for the table writers (runtime/records/export.py) to show as text.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Generator, Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from runtime.model.common import Labels
from runtime.records.compiled import CompiledForm
from runtime.records.errors import FieldProblem, InvalidRecord, invalid
from runtime.records.query import ListQuery, Reading, field_type, parse_list_query
from runtime.records.reader import Row
from runtime.records.values import ValueProblem

MAX_EXPORT_ROWS = 100_000
EXPORT_BATCH = 1000  # rows fetched, and link scopes checked, per round trip
PAGING = frozenset({"limit", "offset", "count"})
SYSTEM_LABELS = {
    "id": Labels(zh="编号", en="ID"),
    "created_at": Labels(zh="创建时间", en="Created at"),
    "updated_at": Labels(zh="更新时间", en="Updated at"),
    "created_by": Labels(zh="创建人", en="Created by"),
    "version": Labels(zh="版本", en="Version"),
    "merged_into": Labels(zh="合并到", en="Merged into"),
}
NUMBER_TYPES = frozenset({"decimal", "money", "percent"})


@dataclass(frozen=True)
class ExportColumn:
    """One column of an export: the field key, its label in the reader's language, its type."""

    key: str
    label: str
    kind: str


@dataclass
class ExportRequest:
    """A parsed export request: the list query and the columns."""

    query: ListQuery
    columns: list[ExportColumn]


@dataclass
class Export:
    """An export ready to write: a title (the form's label), `(key, label)` columns and the rows.

    `rows` reads the database while it is iterated, batch by batch; iterate it once.
    """

    title: str
    columns: list[tuple[str, str]]
    rows: Generator[list[Any], None, None]
    total: int


def parse_export(
    form: CompiledForm, params: Iterable[tuple[str, str]], reading: Reading, language: str
) -> ExportRequest:
    """Parse the query string of an export; every bad parameter is reported at once (422)."""
    problems: list[FieldProblem] = []
    chosen: list[str] | None = None
    rest: list[tuple[str, str]] = []
    for name, raw in params:
        if name == "fields":
            chosen = [*(chosen or []), *(part.strip() for part in raw.split(",") if part.strip())]
        elif name not in PAGING:
            rest.append((name, raw))
    query = ListQuery()
    try:
        query = parse_list_query(form, rest, reading)
    except InvalidRecord as exc:
        problems.extend(exc.problems)
    columns, found = export_columns(form, chosen, reading.hidden, language)
    problems.extend(found)
    if problems:
        raise InvalidRecord(problems)
    return ExportRequest(query, columns)


def export_columns(
    form: CompiledForm, chosen: list[str] | None, hidden: frozenset[str], language: str
) -> tuple[list[ExportColumn], list[FieldProblem]]:
    """The columns: `chosen` keys, else the form's list columns, else every field with a column."""
    if chosen is None:
        listed = [k for k in form.form.list_view.columns if k in form.fields and k not in hidden]
        keys = listed or [k for k in form.fields if k not in hidden] or ["id"]
        return [_column(form, key, field_type(form, key), language) for key in keys], []
    if not chosen:
        return [], [FieldProblem("query.fields", "invalid", "give one or more comma-separated field keys")]
    columns: list[ExportColumn] = []
    problems: list[FieldProblem] = []
    for key in dict.fromkeys(chosen):
        try:
            if key in form.children:
                raise ValueProblem("invalid", f"'{key}' holds child rows and cannot be a column")
            if key in hidden:
                raise ValueProblem("unknown_field", f"'{key[:60]}' is not a field of {form.key}")
            columns.append(_column(form, key, field_type(form, key), language))
        except ValueProblem as exc:
            problems.append(FieldProblem("query.fields", exc.code, str(exc)))
    return columns, problems


def _column(form: CompiledForm, key: str, kind: str, language: str) -> ExportColumn:
    field = form.fields.get(key)
    label = field.spec.title(language) if field is not None else SYSTEM_LABELS[key].text(language)
    return ExportColumn(key, label, kind)


def export_row(columns: list[ExportColumn], record: Row, zone: ZoneInfo) -> list[Any]:
    """A record (as the API shows it) as table values aligned with `columns`."""
    return [table_value(c.kind, record.get(c.key), zone) for c in columns]


def table_value(kind: str, value: Any, zone: ZoneInfo) -> Any:
    """An API value back in its own type: decimals, dates, datetimes in `zone`; the rest as is."""
    if value is None:
        return None
    if kind in NUMBER_TYPES:
        return Decimal(value)
    if kind == "date":
        return dt.date.fromisoformat(value)
    if kind == "datetime":
        return dt.datetime.fromisoformat(value).astimezone(zone)
    return value


def too_many(total: int) -> InvalidRecord:
    """The 422 of an export over the limit."""
    return invalid(
        None,
        "max_rows",
        f"the export would hold {total} records; at most {MAX_EXPORT_ROWS} can be exported at once: "
        "narrow it with filters",
    )
