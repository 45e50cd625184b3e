"""Run a form's expressions during a write: build full records, compute, write results back.

A record for evaluation holds every stored value (on update, merged with the
input), `"link.field"` values of the linked records the expressions read, the
child rows of each table field as dicts, `"link.table"` rows of a linked record
that a LOOKUP reads, and the records of each backlink the expressions aggregate. Reads
are batched: one query per link field, per child table and per backlink
(runtime/records/backlinks.py), for all records of the request together. Per record:
expression defaults,
then fetches (runtime/records/fetching.py), then formulas and checks; last, the links
whose filter the write must meet (runtime/records/link_filters.py).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import Connection, select

from runtime.records.backlinks import fill_backlinks
from runtime.records.compiled import CompiledApp, CompiledForm
from runtime.records.errors import FieldProblem
from runtime.records.fetching import apply_fetches
from runtime.records.link_filters import has_filters, link_filter_problems, reads_parent
from runtime.records.writer import Prepared

Record = dict[str, Any]
Before = dict[str, dict[int, dict[int, Record]]]  # table field -> parent id -> row id -> stored row


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
    befores: list[Record | None] = []
    for _, item in items:
        base = stored.get(item.record_id or 0) if stored else None
        befores.append(dict(base) if base is not None else None)
        records.append({**(base or {}), **item.values})
    problems: list[FieldProblem] = []
    before_rows: Before = {}
    for key, child in form.children.items():
        problems.extend(_evaluate_children(conn, app, form, key, child, items, records, stored, before_rows))
    _fill_links(conn, app, form, records)
    _fill_singles(conn, app, form, records)
    fill_link_children(conn, app, form, records, form.logic.link_children)
    fill_backlinks(conn, app, form, records, form.logic.backlinks)
    logic = form.logic
    for (prefix, _), record in zip(items, records, strict=True):
        problems.extend(logic.fill_defaults(record, prefix, creating))
    givens = [set(item.values) for _, item in items]
    problems.extend(apply_fetches(conn, app, form, records, befores, givens, [p for p, _ in items]))
    for (prefix, item), record in zip(items, records, strict=True):
        problems.extend(logic.apply(record, prefix, creating, defaults=False))
        for key in _computed_keys(form):
            item.values[key] = record.get(key)
    if keep is not None:
        keep.extend(records)
    else:
        problems.extend(link_filter_problems(conn, app, form, items, records, befores, before_rows))
    return problems


def _has_logic(form: CompiledForm) -> bool:
    return any(sub.logic.active or has_filters(sub) for sub in (form, *form.children.values()))


def _computed_keys(form: CompiledForm) -> list[str]:
    logic = form.logic
    return [*(c.key for c in (*logic.formulas, *logic.defaults)), *(f.key for f in logic.fetches)]


def _evaluate_children(
    conn: Connection,
    app: CompiledApp,
    form: CompiledForm,
    key: str,
    child: CompiledForm,
    items: list[tuple[str, Prepared]],
    records: list[Record],
    stored: dict[int, Record] | None,
    before_rows: Before,
) -> list[FieldProblem]:
    needed = key in form.logic.children or child.logic.active or reads_parent(child)
    given = any(key in item.children for _, item in items)
    if not needed and not given:
        return []
    existing = _stored_children(conn, child, stored) if stored else {}
    before_rows[key] = existing
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
    fill_link_children(conn, app, child, every_row, child.logic.link_children)
    given_rows: list[Record] = []
    befores: list[Record | None] = []
    givens: list[set[str]] = []
    paths: list[str] = []
    for (prefix, item), rows in zip(items, rows_by_item, strict=True):
        stored_rows = existing.get(item.record_id or 0, {})
        for index, (row_input, row) in enumerate(zip(item.children.get(key, []), rows, strict=False)):
            where = f"{prefix}{key}[{index}]."
            before = stored_rows.get(row_input.id) if row_input.id is not None else None
            problems.extend(child.logic.fill_defaults(row, where, creating=before is None))
            given_rows.append(row)
            befores.append(dict(before) if before is not None else None)
            givens.append(set(row_input.values))
            paths.append(where)
    problems.extend(apply_fetches(conn, app, child, given_rows, befores, givens, paths))
    for row, before, where in zip(given_rows, befores, paths, strict=True):
        problems.extend(child.logic.apply(row, where, creating=before is None, defaults=False))
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


def fill_reads(
    conn: Connection,
    app: CompiledApp,
    form: CompiledForm,
    records: list[Record],
    reads: tuple[dict[str, set[str]], set[tuple[str, str]], set[tuple[str, str, str]]],
) -> None:
    """Fill what expressions read beyond the record: `(links, singles, rows of linked records)`."""
    links, singles, rows = reads
    if links:
        fill_links(conn, app, form, records, {(link, key) for link, keys in links.items() for key in keys})
    if singles:
        fill_singles(conn, app, records, singles)
    if rows:
        fill_link_children(conn, app, form, records, rows)


def fill_link_children(
    conn: Connection,
    app: CompiledApp,
    form: CompiledForm,
    records: list[Record],
    reads: set[tuple[str, str, str]],
) -> None:
    """Put the rows of linked records' table fields (`"link.table"`, as a LOOKUP reads them)
    into the records: one query per (link, table field), rows in their order."""
    wanted: dict[tuple[str, str], set[str]] = defaultdict(set)
    for link, table, column in reads:
        wanted[(link, table)].add(column)
    for (link, table), columns in wanted.items():
        child = app.form(form.fields[link].spec.to).children[table].table
        ids = {r[link] for r in records if r.get(link) is not None}
        found: dict[int, list[Record]] = defaultdict(list)
        if ids:
            stmt = (
                select(child.c.parent_id, *(child.c[c] for c in sorted(columns)))
                .where(child.c.parent_id.in_(ids))
                .order_by(child.c.parent_id, child.c.position)
            )
            for row in conn.execute(stmt).mappings():
                found[row["parent_id"]].append(dict(row))
        for record in records:
            record[f"{link}.{table}"] = found.get(record.get(link) or 0, [])


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
