"""Rollups: stored formulas over the records that link to a record, kept right as those change.

A formula such as `SUM(payments.amount WHERE status == 'confirmed')` on the account form
reads the payments linking to the account (a backlink). The account computes it whenever
it is saved itself; this module recomputes it when the payments change: the records
service calls `refresh` with the rows of the backlinked form as they were and as they are,
inside the write's transaction, on create, update (a payment moving from one account to
another: both accounts), delete and merge (`Pending`, made before the records move).

Only the formulas that read the backlink are recomputed, with the formulas that read them,
and only the parents whose aggregated columns (or link) changed; a new value that breaks
its field's `min` or `max` refuses the whole write (422, code `recompute`). A recomputed
value is the record's own data, not an edit of it: the version, `updated_at` and history
stay, and no automation reacts; `refresh` answers the records recomputed, whose automatic
workflow transitions the records service then offers the process engine (see
runtime/records/hooks.py, `recomputed`). Rollups read by other rollups follow in turn;
loading refuses formulas that read each other in a circle through backlinks, so this ends.

The parents are locked (`FOR NO KEY UPDATE` on PostgreSQL, which an insert's foreign-key
check does not wait for) before their backlinks are read, so two transactions changing
payments of one account both count each other's payment.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, select, update

from runtime.expressions.checker import check
from runtime.expressions.parser import parse
from runtime.expressions.types import scope_for
from runtime.model import App, Form
from runtime.records.backlinks import fill_backlinks
from runtime.records.compiled import CompiledApp, CompiledForm
from runtime.records.errors import FieldProblem, InvalidRecord
from runtime.records.evaluation import fill_link_children, fill_links, fill_singles
from runtime.records.logic import Computed
from runtime.records.values import ValueProblem

Record = dict[str, Any]
Recomputed = list[tuple[str, int]]  # (form key, record id) of records whose rollups changed
Change = tuple[Record | None, Record | None]  # a record of the backlinked form: before, after
MAX_DEPTH = 32  # rollups of rollups; loading refuses circles, so this is a safety net only
_CACHE = "rollup_dependents"


@dataclass(frozen=True)
class Dependent:
    """Formulas of form `parent` that aggregate the records linking to it by `link`."""

    parent: str
    key: str  # the backlink
    link: str  # the link field of the backlinked form
    columns: frozenset[str]  # what the formulas read of a linking record, the link included
    formulas: frozenset[str]  # formula fields of `parent` to recompute (and those reading them)


def dependents(app: CompiledApp, source: CompiledForm) -> list[Dependent]:
    """The rollups over records of `source`, worked out once per compiled form."""
    found: list[Dependent] | None = source.cache.get(_CACHE)
    if found is None:
        found = []
        for parent in app.forms.values():
            for backlink in parent.form.backlinks:
                if backlink.form == source.key:
                    dependent = _dependent(parent, backlink.key, backlink.link)
                    if dependent is not None:
                        found.append(dependent)
        source.cache[_CACHE] = found
    return found


def _dependent(parent: CompiledForm, key: str, link: str) -> Dependent | None:
    columns: set[str] = {link}
    formulas: set[str] = set()
    for item in parent.logic.formulas:  # in dependency order: readers of readers follow
        checked = item.checked
        if checked is None:
            continue
        read = {column for name, column in checked.backlinks if name == key}
        if read:
            columns.update(c for c in read if c is not None)
            formulas.add(item.key)
        elif checked.fields & formulas:
            formulas.add(item.key)
    if not formulas:
        return None
    return Dependent(parent.key, key, link, frozenset(columns), frozenset(formulas))


def watched(app: CompiledApp, form: CompiledForm) -> bool:
    """True when some stored formula aggregates records of `form`."""
    return bool(dependents(app, form))


def refresh(conn: Connection, app: CompiledApp, source: CompiledForm, changes: list[Change]) -> Recomputed:
    """Recompute the rollups of the parents the changed records of `source` link to, before
    or after the change, where a column the rollups read (or the link) changed; answers the
    records whose stored values changed (rollups of rollups included), each once, in order."""
    found: Recomputed = []
    _refresh(conn, app, source, changes, 0, found)
    return found


def _refresh(
    conn: Connection,
    app: CompiledApp,
    source: CompiledForm,
    changes: list[Change],
    depth: int,
    found: Recomputed,
) -> None:
    if depth > MAX_DEPTH:
        raise AssertionError("rollups read each other beyond the depth loading allows")
    wanted: dict[str, tuple[set[int], set[str]]] = {}
    for dependent in dependents(app, source):
        ids = _parents(dependent, changes)
        if ids:
            parents, keys = wanted.setdefault(dependent.parent, (set(), set()))
            parents.update(ids)
            keys.update(dependent.formulas)
    for parent_key, (ids, keys) in sorted(wanted.items()):
        parent = app.form(parent_key)
        changed = recompute(conn, app, parent, ids, keys)
        for _, after in changed:
            assert after is not None
            if (parent.key, int(after["id"])) not in found:
                found.append((parent.key, int(after["id"])))
        if changed:
            _refresh(conn, app, parent, changed, depth + 1, found)


def inserted(values: list[Record], ids: list[int]) -> list[Change]:
    """The changes of records just inserted with these values and ids."""
    return [(None, {**given, "id": record_id}) for given, record_id in zip(values, ids, strict=True)]


def _parents(dependent: Dependent, changes: list[Change]) -> set[int]:
    ids: set[int] = set()
    for before, after in changes:
        if (
            before is not None
            and after is not None
            and all(before.get(c) == after.get(c) for c in dependent.columns)
        ):
            continue
        for row in (before, after):
            if row is not None and row.get(dependent.link) is not None:
                ids.add(int(row[dependent.link]))
    return ids


def recompute(
    conn: Connection, app: CompiledApp, form: CompiledForm, ids: Iterable[int], keys: set[str]
) -> list[Change]:
    """Recompute the formulas `keys` of records `ids` of `form`, in Python as a save does;
    answer the records whose values changed (before, after)."""
    table = form.table
    stmt = select(table).where(table.c.id.in_(sorted(ids))).order_by(table.c.id)
    if conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update(key_share=True)  # FOR NO KEY UPDATE: writers of a parent queue
    rows = [dict(row) for row in conn.execute(stmt).mappings()]
    if not rows:
        return []
    items = [item for item in form.logic.formulas if item.key in keys]
    records = [dict(row) for row in rows]
    _fill(conn, app, form, records, items)
    problems: list[FieldProblem] = []
    for record in records:
        for item in items:
            try:
                record[item.key] = item.store(item.evaluate(record))
            except ValueProblem as exc:
                message = f"the change would make {item.key} of {form.key} {record['id']} {exc}"
                problems.append(FieldProblem(None, "recompute", message))
    if problems:
        raise InvalidRecord(problems)
    changed: list[Change] = []
    for row, record in zip(rows, records, strict=True):
        values = {item.key: record[item.key] for item in items if record[item.key] != row[item.key]}
        if values:
            conn.execute(update(table).where(table.c.id == row["id"]).values(**values))
            changed.append((row, {**row, **values}))
    return changed


def _fill(
    conn: Connection, app: CompiledApp, form: CompiledForm, records: list[Record], items: list[Computed]
) -> None:
    """What the formulas read beyond the stored row: links, settings, rows, backlinks."""
    links: set[tuple[str, str]] = set()
    singles: set[tuple[str, str]] = set()
    linked_rows: set[tuple[str, str, str]] = set()
    tables: set[str] = set()
    backlinks: set[tuple[str, str | None]] = set()
    for item in items:
        assert item.checked is not None
        links.update(item.checked.links)
        singles.update(item.checked.singles)
        linked_rows.update(item.checked.link_children)
        tables.update(table for table, _ in item.checked.children)
        backlinks.update(item.checked.backlinks)
    fill_links(conn, app, form, records, links)
    fill_singles(conn, app, records, singles)
    fill_link_children(conn, app, form, records, linked_rows)
    fill_backlinks(conn, app, form, records, backlinks)
    ids = [record["id"] for record in records]
    for key in sorted(tables):
        child = form.children[key].table
        stmt = select(child).where(child.c.parent_id.in_(ids)).order_by(child.c.parent_id, child.c.position)
        found: dict[int, list[Record]] = defaultdict(list)
        for row in conn.execute(stmt).mappings():
            found[row["parent_id"]].append(dict(row))
        for record in records:
            record[key] = found.get(record["id"], [])


@dataclass
class Pending:
    """Rollups to refresh once a delete or merge is done, worked out while the rows are as they were."""

    changes: list[tuple[CompiledForm, list[Change]]] = field(default_factory=list)

    def apply(self, conn: Connection, app: CompiledApp) -> Recomputed:
        """Refresh what the delete or merge changed; answers the records recomputed."""
        found: Recomputed = []
        for source, changes in self.changes:
            found.extend(r for r in refresh(conn, app, source, changes) if r not in found)
        return found


def before_delete(conn: Connection, app: CompiledApp, form: CompiledForm, record_id: int) -> Pending:
    """A record about to be deleted: its parents lose it, and links to it that `on_delete:
    set_null` empties change the records holding them."""
    pending = _moving_links(conn, app, form, [record_id], None)
    if watched(app, form):
        pending.changes.append((form, [(_rows(conn, form, [record_id])[record_id], None)]))
    return pending


def before_merge(
    conn: Connection, app: CompiledApp, form: CompiledForm, survivor: int, merged: list[int]
) -> tuple[Pending, dict[int, Record]]:
    """Records about to be merged: links to the merged records move to the survivor (their
    rollups follow), and the merged records leave their parents' rollups. Answers the rows
    as they were; `after_merge` finishes."""
    pending = _moving_links(conn, app, form, merged, survivor)
    rows = _rows(conn, form, [survivor, *merged]) if watched(app, form) else {}
    return pending, rows


def after_merge(
    conn: Connection, app: CompiledApp, form: CompiledForm, pending: Pending, rows: dict[int, Record]
) -> Recomputed:
    """Refresh the rollups a merge changed (see `before_merge`); answers the records recomputed."""
    found = pending.apply(conn, app)
    if rows:
        survivor, *merged = rows
        now = _rows(conn, form, [survivor])
        changes: list[Change] = [(rows[survivor], now.get(survivor))]
        changes.extend((rows[m], None) for m in merged)
        found.extend(r for r in refresh(conn, app, form, changes) if r not in found)
    return found


def _rows(conn: Connection, form: CompiledForm, ids: list[int]) -> dict[int, Record]:
    table = form.table
    found = {
        row["id"]: dict(row) for row in conn.execute(select(table).where(table.c.id.in_(ids))).mappings()
    }
    return {i: found[i] for i in ids if i in found}


def _moving_links(
    conn: Connection, app: CompiledApp, form: CompiledForm, ids: list[int], to: int | None
) -> Pending:
    """The records of other forms whose link to one of `ids` is about to become `to`, where a
    rollup reads that link (as its own link, or in a WHERE)."""
    pending = Pending()
    for other in app.forms.values():
        for key, spec in other.fields.items():
            if spec.type != "link" or spec.spec.to != form.key:
                continue
            reading = [d for d in dependents(app, other) if key in d.columns]
            if to is None:  # the deleted record's own rollups need no refresh
                reading = [d for d in reading if d.link != key]
            if not reading:
                continue
            table = other.table
            moving = conn.execute(select(table).where(table.c[key].in_(ids))).mappings()
            changes: list[Change] = [(dict(row), {**row, key: to}) for row in moving]
            if changes:
                pending.changes.append((other, changes))
    return pending


def moved_rollups(app: App, old: Form, new: Form) -> set[str]:
    """Formula fields of `new` that aggregate a backlink declared otherwise in `old` (another
    form or link, or none): publishing computes them anew even when their text is the same."""
    before = {b.key: (b.form, b.link) for b in old.backlinks}
    moved = {b.key for b in new.backlinks if before.get(b.key) != (b.form, b.link)}
    if not moved:
        return set()
    scope = scope_for(app, new)
    found: set[str] = set()
    for spec in new.stored_fields():
        if spec.formula is not None:
            checked = check(parse(spec.formula), scope, spec.formula)
            if any(key in moved for key, _ in checked.backlinks):
                found.add(spec.key)
    return found
