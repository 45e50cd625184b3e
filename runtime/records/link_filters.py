"""Link filters: which records a `link` field accepts on save and offers in the picker.

A filter is a condition on the linked form (`active == true`) that may read the record
being edited as `record.field` and, in a child row, the record holding the row as
`parent.field` (`account == record.account`). It is compiled to SQL on the linked
form's table, with those values as literal parameters.

On save a link is checked when it is set to another record (on create: whenever it is
set), or when a value its filter reads from the record changes; a link left as it was
stays valid even if the linked record no longer meets the filter. The records a
filter checks are read in one query per filter and set of values it reads.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, case, false, select, true
from sqlalchemy.sql.elements import ColumnElement

from runtime.expressions.checker import Checked, check
from runtime.expressions.parser import parse
from runtime.expressions.syntax import Binary, Call, ExpressionError, Membership, Name, Node, Unary
from runtime.expressions.to_python import CURRENT_USER
from runtime.expressions.to_sql import to_sql
from runtime.expressions.types import OUTER_PARENT, OUTER_RECORD, filter_scope
from runtime.records.compiled import CompiledApp, CompiledForm
from runtime.records.errors import FieldProblem
from runtime.records.query import sql_scope
from runtime.schema.types import utcnow

Record = dict[str, Any]
CODE = "link_filter"
_CACHE = "link_filters"


@dataclass
class LinkFilter:
    """One link field's filter, checked once against the linked form."""

    key: str
    target: str
    text: str
    checked: Checked

    def reads(self, outer: str) -> list[str]:
        """The fields the filter reads from `record` or `parent`."""
        return sorted(key for name, key in self.checked.outer if name == outer)


@functools.lru_cache(maxsize=512)
def filter_reads_record(text: str | None) -> bool:
    """True when a filter reads the record being entered (`record.x`, `parent.x`): a picker
    then needs the values on the form to offer the right records."""
    if not text:
        return False
    try:
        node = parse(text)
    except ExpressionError:
        return False
    return any(
        isinstance(part, Name) and len(part.parts) == 2 and part.parts[0] in (OUTER_RECORD, OUTER_PARENT)
        for part in walk(node)
    )


def walk(node: Node) -> Iterator[Node]:
    """Every node of a syntax tree."""
    yield node
    if isinstance(node, Unary):
        yield from walk(node.operand)
    elif isinstance(node, Binary):
        yield from walk(node.left)
        yield from walk(node.right)
    elif isinstance(node, Membership):
        for child in (node.operand, *node.items):
            yield from walk(child)
    elif isinstance(node, Call):
        for arg in node.args:
            yield from walk(arg)


def has_filters(form: CompiledForm) -> bool:
    """True when a link field of the form (or child form) has a filter."""
    return any(f.type == "link" and f.spec.filter is not None for f in form.fields.values())


def reads_parent(child: CompiledForm) -> bool:
    """True when a filter of a child form's links reads the record holding the row."""
    return any(flt.reads(OUTER_PARENT) for flt in filters_of(child).values())


def filters_of(form: CompiledForm) -> dict[str, LinkFilter]:
    """The filters of a form's link fields, by field key; compiled on first use."""
    found: dict[str, LinkFilter] | None = form.cache.get(_CACHE)
    if found is None:
        found = {}
        app = form.app
        for key, item in form.fields.items():
            text = getattr(item.spec, "filter", None) if item.type == "link" else None
            target = app.form(item.spec.to) if text is not None else None
            if text is None or target is None:
                continue
            parent = form.parent.form if form.parent is not None else None
            checked = check(parse(text), filter_scope(app, target, form.form, parent), text)
            found[key] = LinkFilter(key, target.form, text, checked)
        form.cache[_CACHE] = found
    return found


def filter_condition(
    app: CompiledApp,
    flt: LinkFilter,
    record: Record | None,
    parent: Record | None,
    dialect: str,
    now: dt.datetime | None = None,
) -> ColumnElement[bool]:
    """The filter as SQL on the linked form's table, reading `record` (and `parent`) values."""
    scope = sql_scope(app.form(flt.target), dialect, now or utcnow())
    scope.user_id = CURRENT_USER.get()
    scope.outer = {OUTER_RECORD: dict(record or {}), OUTER_PARENT: dict(parent or {})}
    condition: ColumnElement[bool] = to_sql(flt.checked, scope)
    return condition == true()


def link_filter_problems(
    conn: Connection,
    app: CompiledApp,
    form: CompiledForm,
    items: list[tuple[str, Any]],
    records: list[Record],
    befores: list[Record | None],
    before_rows: dict[str, dict[int, dict[int, Record]]],
) -> list[FieldProblem]:
    """A problem (code `link_filter`) for each link set in this write to a record its filter
    refuses. Links to records that do not exist are left to the reference checks."""
    wanted: list[tuple[LinkFilter, str, int, Record, Record | None]] = []
    for (prefix, item), record, before in zip(items, records, befores, strict=True):
        for flt in filters_of(form).values():
            if _changed(flt, record, before, None, None):
                wanted.append((flt, f"{prefix}{flt.key}", record[flt.key], record, None))
        for table, child in form.children.items():
            filters = filters_of(child)
            rows = record.get(table)
            if not filters or not isinstance(rows, list):
                continue
            stored = before_rows.get(table, {}).get(item.record_id or 0, {})
            for index, row in enumerate(rows):
                old = stored.get(row["id"]) if row.get("id") is not None else None
                for flt in filters.values():
                    if _changed(flt, row, old, record, before):
                        wanted.append((flt, f"{prefix}{table}[{index}].{flt.key}", row[flt.key], row, record))
    return _refused(conn, app, wanted)


def _changed(
    flt: LinkFilter, row: Record, before: Record | None, parent: Record | None, parent_before: Record | None
) -> bool:
    """True when the link is set and is new, or something its filter reads changed."""
    if row.get(flt.key) is None:
        return False
    if before is None or before.get(flt.key) != row.get(flt.key):
        return True
    if any(row.get(k) != before.get(k) for k in flt.reads(OUTER_RECORD)):
        return True
    if parent is not None:
        old = parent_before or {}
        return any(parent.get(k) != old.get(k) for k in flt.reads(OUTER_PARENT))
    return False


def _refused(
    conn: Connection, app: CompiledApp, wanted: list[tuple[LinkFilter, str, int, Record, Record | None]]
) -> list[FieldProblem]:
    """Check the wanted links: one query per filter and set of values it reads."""
    groups: dict[tuple[Any, ...], list[tuple[str, int]]] = defaultdict(list)
    values: dict[tuple[Any, ...], tuple[LinkFilter, Record, Record | None]] = {}
    for flt, path, ref, row, parent in wanted:
        inputs = _inputs(flt, row, parent)
        group = (flt.key, flt.target, flt.text, *inputs)
        groups[group].append((path, ref))
        values.setdefault(group, (flt, row, parent))
    problems: list[FieldProblem] = []
    dialect = conn.dialect.name
    for group, refs in groups.items():
        flt, row, parent = values[group]
        table = app.form(flt.target).table
        ok = case((filter_condition(app, flt, row, parent, dialect), true()), else_=false())
        stmt = select(table.c.id, ok).where(table.c.id.in_({ref for _, ref in refs}))
        meets = {found: bool(passed) for found, passed in conn.execute(stmt)}
        for path, ref in refs:
            if meets.get(ref) is False:
                message = f"{flt.target} {ref} is not one this field accepts (filter: {flt.text})"
                problems.append(FieldProblem(path, CODE, message))
    return problems


def _inputs(flt: LinkFilter, row: Record, parent: Record | None) -> Iterable[Any]:
    own = tuple(row.get(k) for k in flt.reads(OUTER_RECORD))
    above = tuple((parent or {}).get(k) for k in flt.reads(OUTER_PARENT))
    return (*own, None, *above)


def and_all(conditions: list[ColumnElement[bool] | None]) -> ColumnElement[bool] | None:
    """The conditions joined with AND, leaving out None; None when none is left."""
    present = [c for c in conditions if c is not None]
    return and_(*present) if present else None
