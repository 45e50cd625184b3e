"""A live preview of a record being edited: formulas, `visible_when` and `required_when`.

The web form asks the server while the user types instead of evaluating expressions
in the browser, so the preview follows the server's semantics exactly: the input is
converted as a write would convert it, stored values and child rows are merged in on
update, linked and single-form values are read, and the same compiled expressions
run. Nothing is written. Values that do not convert yet (a half-typed number) count
as empty, as they would if the user saved now.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from runtime.identity.actor import Actor
from runtime.records.compiled import CompiledApp, CompiledForm
from runtime.records.evaluation import evaluate
from runtime.records.fetching import FETCHED
from runtime.records.writer import prepare

Record = dict[str, Any]


@dataclass
class RowPreview:
    """What one record (or child row) looks like with the current input."""

    values: Record = field(default_factory=dict)
    visible: dict[str, bool] = field(default_factory=dict)
    required: list[str] = field(default_factory=list)
    fetched: Record = field(default_factory=dict)  # fields filled by their fetch with this input


@dataclass
class Preview:
    """The record's preview and one preview per child row of each table field."""

    record: RowPreview
    children: dict[str, list[RowPreview]] = field(default_factory=dict)


def preview_record(
    conn: Any,
    app: CompiledApp,
    form: CompiledForm,
    data: Record,
    actor: Actor,
    restricted: dict[str, str],
    stored: Record | None = None,
) -> Preview:
    """Evaluate `data` as a create (no `stored`) or an update of `stored` would."""
    record = evaluated_record(conn, app, form, data, actor, restricted, stored)
    result = Preview(_row_preview(form, record))
    for key, child in form.children.items():
        rows = record.get(key)
        if isinstance(rows, list):
            result.children[key] = [_row_preview(child, row) for row in rows]
    return result


def evaluated_record(
    conn: Any,
    app: CompiledApp,
    form: CompiledForm,
    data: Record,
    actor: Actor,
    restricted: dict[str, str],
    stored: Record | None = None,
) -> Record:
    """The whole record a save of `data` would compute (child rows under their table fields)."""
    item, _ = prepare(
        form,
        data,
        creating=stored is None,
        user_id=actor.user_id,
        restricted=restricted,
        department_id=actor.department_id,
    )
    if stored is not None:
        item.record_id = stored["id"]
    kept: list[Record] = []
    evaluate(conn, app, form, [("", item)], None if stored is None else {stored["id"]: stored}, keep=kept)
    return kept[0] if kept else {**(stored or {}), **item.values}


def without_hidden(found: Preview, hidden: frozenset[str]) -> Preview:
    """The preview without the fields hidden from the caller."""
    row = found.record
    row.values = {k: v for k, v in row.values.items() if k not in hidden}
    row.visible = {k: v for k, v in row.visible.items() if k not in hidden}
    row.required = [k for k in row.required if k not in hidden]
    row.fetched = {k: v for k, v in row.fetched.items() if k not in hidden}
    found.children = {k: v for k, v in found.children.items() if k not in hidden}
    return found


def stored_row(conn: Any, form: CompiledForm, record_id: int) -> Record | None:
    """The record's stored columns, as evaluation on update starts from them."""
    row = conn.execute(select(form.table).where(form.table.c.id == record_id)).mappings().first()
    return dict(row) if row is not None else None


def _row_preview(form: CompiledForm, record: Record) -> RowPreview:
    logic = form.logic
    computed = [c.key for c in (*logic.formulas, *logic.defaults)]
    required = {k for k, f in form.fields.items() if f.spec.required} | logic.needed(record)
    return RowPreview(
        values={key: record.get(key) for key in computed},
        visible=logic.shown(record),
        required=sorted(required),
        fetched={key: record.get(key) for key in sorted(record.get(FETCHED, ()))},
    )
