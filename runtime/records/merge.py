"""Merge duplicates into one surviving record, losing nothing.

The survivor takes the chosen values field by field. Every link that pointed at a
merged record now points at the survivor, and the merged records' child rows move
to the survivor after its own. The merged records stay, readable, with
`merged_into` set; lists and duplicate checks leave them out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, func, select, update

from runtime.records.compiled import CompiledApp, CompiledForm
from runtime.records.dedup import key_column
from runtime.records.errors import FieldProblem, InvalidRecord, NotFound


@dataclass
class MergeRequest:
    """Which records merge into the survivor, and whose value each field keeps."""

    survivor: int
    merged: list[int]
    picks: dict[str, int]


def parse_merge(form: CompiledForm, survivor: int, body: Any) -> MergeRequest:
    """Read `{"merge": [ids], "values": {field: id}}`; every mistake is reported at once."""
    problems: list[FieldProblem] = []
    if not isinstance(body, dict):
        raise InvalidRecord([FieldProblem(None, "type", "expected a JSON object")])
    unknown = sorted(set(body) - {"merge", "values"})
    problems.extend(FieldProblem(k[:60], "unknown_field", "use 'merge' and 'values'") for k in unknown)
    merged = body.get("merge")
    if not isinstance(merged, list) or not merged or not all(_is_id(i) for i in merged):
        problems.append(FieldProblem("merge", "type", "list the ids of the records to merge"))
        merged = []
    elif survivor in merged or len(set(merged)) != len(merged):
        problems.append(FieldProblem("merge", "invalid", "ids must differ from each other and the survivor"))
    picks = body.get("values", {})
    if not isinstance(picks, dict):
        problems.append(FieldProblem("values", "type", "map field keys to the id whose value to keep"))
        picks = {}
    for key, source in picks.items():
        if key not in form.writable():
            problems.append(FieldProblem(f"values.{str(key)[:60]}", "unknown_field", "not a writable field"))
        elif not _is_id(source) or (source != survivor and source not in merged):
            problems.append(FieldProblem(f"values.{key}", "invalid", "must be the survivor or a merged id"))
    if problems:
        raise InvalidRecord(problems)
    return MergeRequest(survivor, list(merged), dict(picks))


def apply_merge(conn: Connection, app: CompiledApp, form: CompiledForm, request: MergeRequest) -> None:
    """Carry out a parsed merge inside the caller's transaction."""
    table = form.table
    ids = [request.survivor, *request.merged]
    rows = {r["id"]: dict(r) for r in conn.execute(select(table).where(table.c.id.in_(ids))).mappings()}
    for record_id in ids:
        if record_id not in rows:
            raise NotFound(form.key, record_id)
        if rows[record_id].get("_merged_into") is not None:
            raise InvalidRecord([FieldProblem("merge", "invalid", f"record {record_id} is already merged")])
    taken = {key: rows[source][key] for key, source in request.picks.items() if source != request.survivor}
    _free_unique_values(conn, form, request, taken)
    if taken:
        conn.execute(update(table).where(table.c.id == request.survivor).values(**taken))
    _move_links(conn, app, form, request)
    _move_child_rows(conn, form, request)
    cleared = {key_column(i): None for i in range(len(form.form.duplicates))}
    conn.execute(
        update(table)
        .where(table.c.id.in_(request.merged))
        .values(_merged_into=request.survivor, version=table.c.version + 1, **cleared)
    )


def _free_unique_values(
    conn: Connection, form: CompiledForm, request: MergeRequest, taken: dict[str, Any]
) -> None:
    """A unique value moving to the survivor is first taken off the record it comes from."""
    table = form.table
    for key in taken:
        if getattr(form.fields[key].spec, "unique", False):
            source = request.picks[key]
            conn.execute(update(table).where(table.c.id == source).values({key: None}))


def _move_links(conn: Connection, app: CompiledApp, form: CompiledForm, request: MergeRequest) -> None:
    for other in app.forms.values():
        for sub in (other, *other.children.values()):
            for key, field in sub.fields.items():
                if field.type == "link" and field.spec.to == form.key:
                    column = sub.table.c[key]
                    conn.execute(
                        update(sub.table).where(column.in_(request.merged)).values({key: request.survivor})
                    )


def _move_child_rows(conn: Connection, form: CompiledForm, request: MergeRequest) -> None:
    for child in form.children.values():
        table = child.table
        for merged_id in request.merged:
            top = select(func.coalesce(func.max(table.c.position), -1)).where(
                table.c.parent_id == request.survivor
            )
            offset = int(conn.execute(top).scalar_one()) + 1
            conn.execute(
                update(table)
                .where(table.c.parent_id == merged_id)
                .values(parent_id=request.survivor, position=table.c.position + offset)
            )


def _is_id(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value < 2**63
