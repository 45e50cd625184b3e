"""Recompute stored formulas in bulk, inside the database, when a single form they read changes.

When an admin edits a settings record (a `single: true` form, such as scoring
weights), every formula that reads it — directly or through another formula — is
recomputed for all rows with one `UPDATE … SET field = <compiled SQL>` per
formula, in dependency order. The SQL follows the same rules as the Python
compiler, with the same rounding to the field's scale. If a new value breaks a
field's min or max, the whole change is refused and nothing is kept. Rollups over the
records recomputed (formulas of other forms aggregating them through a backlink) follow,
in SQL too (runtime/records/rollups.py keeps them right on ordinary writes).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import BigInteger, Connection, Numeric, cast, func, select, update
from sqlalchemy.sql.elements import ColumnElement

from runtime.expressions.to_sql import nudge, to_sql
from runtime.records.compiled import CompiledApp, CompiledForm
from runtime.records.errors import FieldProblem, InvalidRecord
from runtime.records.logic import Computed
from runtime.records.query import sql_scope
from runtime.records.rollups import dependents

SCALES = {"money": 2, "percent": 6}


def recompute_for_single(conn: Connection, app: CompiledApp, single: str, now: dt.datetime) -> int:
    """Recompute every formula that depends on the single form `single`; answers rows touched.

    Child rows come first, so that a parent total over them (`SUM(lines.total)`) follows.
    """
    touched = 0
    changed: dict[str, set[str]] = {}
    for form in app.forms.values():
        changed_children: dict[str, set[str]] = {}
        for key, child in form.children.items():
            changed_children[key] = _affected(child, single, {})
            touched += _recompute(conn, child, changed_children[key], now)
        changed[form.key] = _affected(form, single, changed_children)
        touched += _recompute(conn, form, changed[form.key], now)
    return touched + rollups_follow(conn, app, changed, now)


def rollups_follow(conn: Connection, app: CompiledApp, changed: dict[str, set[str]], now: dt.datetime) -> int:
    """Rollups over records whose formula columns were recomputed (`changed`: form -> fields)
    are recomputed in turn, for every record, and the rollups over those (loading refuses
    circles, so this ends); answers rows touched."""
    touched = 0
    pending = {key: set(fields) for key, fields in changed.items() if fields}
    while pending:
        source = min(pending)
        columns = pending.pop(source)
        for dependent in dependents(app, app.form(source)):
            if dependent.columns & columns:
                parent = app.form(dependent.parent)
                keys = _closure(parent, set(dependent.formulas), {})
                touched += _recompute(conn, parent, keys, now)
                pending.setdefault(parent.key, set()).update(keys)
    return touched


def _recompute(conn: Connection, form: CompiledForm, affected: set[str], now: dt.datetime) -> int:
    touched = 0
    for item in form.logic.formulas:
        if item.key in affected and item.checked is not None:
            touched += _update_column(conn, form, item, now)
    _refuse_out_of_range(conn, form, affected)
    return touched


def recompute_fields(
    conn: Connection,
    form: CompiledForm,
    changed: dict[str, set[str]],
    now: dt.datetime,
    app: CompiledApp | None = None,
) -> int:
    """Recompute changed formula fields of a top form and its child tables (keyed by table name),
    and every formula that reads them, children first — with `app`, also the rollups over the
    form's records that read them; answers rows touched."""
    touched = 0
    changed_children: dict[str, set[str]] = {}
    for key, child in form.children.items():
        changed_children[key] = _closure(child, changed.get(child.table.name, set()), {})
        touched += _recompute(conn, child, changed_children[key], now)
    own = _closure(form, changed.get(form.table.name, set()), changed_children)
    touched += _recompute(conn, form, own, now)
    return touched + (rollups_follow(conn, app, {form.key: own}, now) if app is not None else 0)


def _closure(form: CompiledForm, keys: set[str], changed_children: dict[str, set[str]]) -> set[str]:
    affected: set[str] = set()
    for item in form.logic.formulas:  # dependency order
        checked = item.checked
        reads = checked is not None and (
            bool(checked.fields & affected)
            or any(column in changed_children.get(table, set()) for table, column in checked.children)
        )
        if item.key in keys or reads:
            affected.add(item.key)
    return affected


def _affected(form: CompiledForm, single: str, changed_children: dict[str, set[str]]) -> set[str]:
    """Formula fields reading `single`, changed child columns, or those formulas, transitively."""
    affected: set[str] = set()
    for item in form.logic.formulas:  # already in dependency order
        checked = item.checked
        if checked is None:
            continue
        reads_single = any(name == single for name, _ in checked.singles)
        reads_child = any(column in changed_children.get(table, set()) for table, column in checked.children)
        if reads_single or reads_child or checked.fields & affected:
            affected.add(item.key)
    return affected


def _update_column(conn: Connection, form: CompiledForm, item: Computed, now: dt.datetime) -> int:
    assert item.checked is not None
    dialect = conn.dialect.name
    expr = to_sql(item.checked, sql_scope(form, dialect, now))
    value = _stored(expr, form.fields[item.key].spec, dialect)
    result = conn.execute(update(form.table).values({item.key: value}))
    return int(result.rowcount or 0)


def _stored(expr: ColumnElement[Any], spec: Any, dialect: str) -> ColumnElement[Any]:
    """Round a computed number to the field's scale, half away from zero, as the Python side does."""
    kind = spec.type
    if kind not in ("integer", "decimal", "money", "percent"):
        return expr
    scale = 0 if kind == "integer" else spec.scale if kind == "decimal" else SCALES[kind]
    if dialect == "postgresql":
        rounded = func.round(cast(expr, Numeric()), scale)
    else:
        rounded = func.round(nudge(expr), scale)  # ties away from zero, as on every write
    return cast(rounded, BigInteger()) if kind == "integer" else rounded


def _refuse_out_of_range(conn: Connection, form: CompiledForm, affected: set[str]) -> None:
    """A recomputed value outside its field's min/max refuses the whole change."""
    problems: list[FieldProblem] = []
    for key in sorted(affected):
        spec = form.fields[key].spec
        column = form.table.c[key]
        for bound, word in (
            (getattr(spec, "min", None), "below min"),
            (getattr(spec, "max", None), "above max"),
        ):
            if bound is None:
                continue
            outside = column < bound if word == "below min" else column > bound
            count = conn.execute(select(func.count()).select_from(form.table).where(outside)).scalar_one()
            if count:
                message = f"the change would put {key} {word} {bound} on {count} {form.key} record(s)"
                problems.append(FieldProblem(None, "recompute", message))
    if problems:
        raise InvalidRecord(problems)
