"""Run a form's expressions during a write: build full records, compute, write results back.

A record for evaluation holds every stored value (on update, merged with the
input), `"link.field"` values of the linked records the expressions read, and the
child rows of each table field as dicts. Reads are batched: one query per link
field and per child table, for all records of the request together.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import Connection, select

from runtime.records.compiled import CompiledApp, CompiledForm
from runtime.records.errors import FieldProblem
from runtime.records.writer import Prepared

Record = dict[str, Any]


def evaluate(
    conn: Connection,
    app: CompiledApp,
    form: CompiledForm,
    items: list[tuple[str, Prepared]],
    stored: dict[int, Record] | None = None,
    keep: list[Record] | None = None,
) -> list[FieldProblem]:
    """Compute formulas and defaults into `items` and check rules; answer the problems.

    `stored` maps record ids to their current row when updating (creating: None);
    `keep` receives the full records as evaluated (a live preview reads them).
    """
    if not _has_logic(form) and keep is None:
        return []
    creating = stored is None
    records: list[Record] = []
    for _, item in items:
        base = dict(stored[item.record_id]) if stored and item.record_id in stored else {}
        records.append({**base, **item.values})
    problems: list[FieldProblem] = []
    for key, child in form.children.items():
        problems.extend(_evaluate_children(conn, app, form, key, child, items, records, stored))
    _fill_links(conn, app, form, records)
    _fill_singles(conn, app, form, records)
    for (prefix, item), record in zip(items, records, strict=True):
        problems.extend(form.logic.apply(record, prefix, creating))
        for key in _computed_keys(form):
            item.values[key] = record.get(key)
    if keep is not None:
        keep.extend(records)
    return problems


def _has_logic(form: CompiledForm) -> bool:
    return form.logic.active or any(child.logic.active for child in form.children.values())


def _computed_keys(form: CompiledForm) -> list[str]:
    return [c.key for c in (*form.logic.formulas, *form.logic.defaults)]


def _evaluate_children(
    conn: Connection,
    app: CompiledApp,
    form: CompiledForm,
    key: str,
    child: CompiledForm,
    items: list[tuple[str, Prepared]],
    records: list[Record],
    stored: dict[int, Record] | None,
) -> list[FieldProblem]:
    needed = key in form.logic.children or child.logic.active
    given = any(key in item.children for _, item in items)
    if not needed and not given:
        return []
    existing = _stored_children(conn, child, stored) if stored else {}
    problems: list[FieldProblem] = []
    rows_by_item: list[list[Record]] = []
    for (_, item), record in zip(items, records, strict=True):
        stored_rows = existing.get(item.record_id or 0, {})
        if key in item.children:
            rows = [{**stored_rows.get(row.id or 0, {}), **row.values} for row in item.children[key]]
        else:
            rows = list(stored_rows.values())
        record[key] = rows
        rows_by_item.append(rows)
    if not child.logic.active:
        return problems
    every_row = [r for rows in rows_by_item for r in rows]
    _fill_links(conn, app, child, every_row)
    _fill_singles(conn, app, child, every_row)
    for (prefix, item), rows in zip(items, rows_by_item, strict=True):
        for index, (row_input, row) in enumerate(zip(item.children.get(key, []), rows, strict=False)):
            where = f"{prefix}{key}[{index}]."
            problems.extend(child.logic.apply(row, where, creating=row_input.id is None))
    _write_back(child, items, key, rows_by_item)
    return problems


def _write_back(
    child: CompiledForm, items: list[tuple[str, Prepared]], key: str, rows_by_item: list[list[Record]]
) -> None:
    computed = _computed_keys(child)
    for (_, item), rows in zip(items, rows_by_item, strict=True):
        for row_input, row in zip(item.children.get(key, []), rows, strict=False):
            for name in computed:
                row_input.values[name] = row.get(name)


def _stored_children(
    conn: Connection, child: CompiledForm, stored: dict[int, Record]
) -> dict[int, dict[int, Record]]:
    table = child.table
    stmt = select(table).where(table.c.parent_id.in_(stored)).order_by(table.c.parent_id, table.c.position)
    result: dict[int, dict[int, Record]] = defaultdict(dict)
    for row in conn.execute(stmt).mappings():
        result[row["parent_id"]][row["id"]] = dict(row)
    return result


def _fill_singles(conn: Connection, app: CompiledApp, form: CompiledForm, records: list[Record]) -> None:
    fill_singles(conn, app, records, form.logic.singles)


def fill_singles(
    conn: Connection, app: CompiledApp, records: list[Record], reads: set[tuple[str, str]]
) -> None:
    """Put `@form.field` values of single forms into the records: one query per single form."""
    wanted: dict[str, set[str]] = defaultdict(set)
    for single, key in reads:
        wanted[single].add(key)
    for single, keys in wanted.items():
        table = app.form(single).table
        stmt = select(*(table.c[k] for k in sorted(keys))).order_by(table.c.id).limit(1)
        row = conn.execute(stmt).mappings().first()
        for record in records:
            for key in keys:
                record[f"@{single}.{key}"] = row[key] if row is not None else None


def _fill_links(conn: Connection, app: CompiledApp, form: CompiledForm, records: list[Record]) -> None:
    fill_links(conn, app, form, records, form.logic.links)


def fill_links(
    conn: Connection, app: CompiledApp, form: CompiledForm, records: list[Record], reads: set[tuple[str, str]]
) -> None:
    """Put `link.field` values into the records: one query per link field read."""
    wanted: dict[str, set[str]] = defaultdict(set)
    for link, key in reads:
        wanted[link].add(key)
    for link, keys in wanted.items():
        target = app.form(form.fields[link].spec.to).table
        ids = {r[link] for r in records if r.get(link) is not None}
        found: dict[int, Any] = {}
        if ids:
            stmt = select(target.c.id, *(target.c[k] for k in sorted(keys))).where(target.c.id.in_(ids))
            found = {row.id: row._mapping for row in conn.execute(stmt)}
        for record in records:
            row = found.get(record.get(link) or 0)
            for key in keys:
                record[f"{link}.{key}"] = row[key] if row is not None else None
