"""What a reader sees of the records they may read: no hidden field, no peek through links.

A link shows `{id, display}`; when the linked record is outside the reader's scope
(or its form is not readable to them) the display is null, so titles of records
they may not read never leak. One query per link field, for the whole page.
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Select, select

from runtime.identity.actor import Actor
from runtime.records.access import access_for, hidden_fields
from runtime.records.compiled import CompiledApp, CompiledForm
from runtime.records.reader import Row, read_records

if TYPE_CHECKING:
    from runtime.records.service import RecordsService


class Visibility:
    """Shapes records for one actor."""

    def __init__(self, service: RecordsService, app: CompiledApp, actor: Actor) -> None:
        self.service = service
        self.app = app
        self.actor = actor

    def read(self, conn: Connection, form: CompiledForm, stmt: Select[Any]) -> list[Row]:
        """Run a record SELECT and shape the result."""
        return self.shape(conn, form, read_records(conn, self.app, form, stmt))

    def read_ids(self, conn: Connection, form: CompiledForm, ids: list[int]) -> list[Row]:
        """Read records by id (in that order) and shape them."""
        return self.shape(conn, form, self.service.store.read_many(conn, self.app, form, ids))

    def shape(self, conn: Connection, form: CompiledForm, records: list[Row]) -> list[Row]:
        """Remove hidden fields and the display of links the actor may not read."""
        if self.actor.admin or not records:
            return records
        self._links(conn, form, records)
        for key, child in form.children.items():
            rows = [row for record in records for row in record.get(key, [])]
            self._links(conn, child, rows)
            _drop(rows, hidden_fields(child, self.actor))
        _drop(records, hidden_fields(form, self.actor))
        return records

    def history(self, conn: Connection, form: CompiledForm, entries: list[Row]) -> list[Row]:
        """Shape history entries: no hidden field (child rows' too), and a linked record's
        display only where the reader may read that record now (else its id alone).

        One query per linked form for all the entries together.
        """
        if self.actor.admin or not entries:
            return entries
        hidden = hidden_fields(form, self.actor)
        refs: list[tuple[CompiledForm, str, dict[str, Any]]] = []  # (linked form, key, {id, display})
        for entry in entries:
            changes = entry.get("changes")
            if not isinstance(changes, dict):
                continue
            for key in [k for k in changes if k in hidden]:
                del changes[key]
            refs.extend(self._history_refs(form, changes))
            for table, child in form.children.items():
                rows = changes.get(table)
                if isinstance(rows, dict):
                    refs.extend(self._child_changes(child, rows))
                    if not rows:
                        del changes[table]
        by_form: dict[str, set[int]] = defaultdict(set)
        for target, _, ref in refs:
            by_form[target.key].add(ref["id"])
        visible = {key: self._visible(conn, self.app.form(key), ids) for key, ids in by_form.items()}
        for target, _, ref in refs:
            if ref["id"] not in visible[target.key]:
                ref["display"] = None
        return entries

    def _child_changes(
        self, child: CompiledForm, rows: dict[str, Any]
    ) -> list[tuple[CompiledForm, str, Row]]:
        hidden = hidden_fields(child, self.actor)
        refs: list[tuple[CompiledForm, str, Row]] = []
        for kind in ("added", "removed", "changed"):
            for row in rows.get(kind) or []:
                if isinstance(row, dict):
                    for key in hidden:
                        row.pop(key, None)
                    refs.extend(self._history_refs(child, row))
        changed = [row for row in rows.get("changed") or [] if not isinstance(row, dict) or len(row) > 1]
        if changed:
            rows["changed"] = changed
        else:
            rows.pop("changed", None)  # rows whose only changes were hidden
        return refs

    def _history_refs(
        self, form: CompiledForm, values: dict[str, Any]
    ) -> list[tuple[CompiledForm, str, Row]]:
        """The `{id, display}` link values in one change (`[old, new]` pairs or a row's values)."""
        found: list[tuple[CompiledForm, str, Row]] = []
        for key, field in form.fields.items():
            if field.type != "link" or key not in values:
                continue
            value = values[key]
            for ref in value if isinstance(value, list) else [value]:
                if isinstance(ref, dict) and isinstance(ref.get("id"), int):
                    found.append((self.app.form(field.spec.to), key, ref))
        return found

    def _links(self, conn: Connection, form: CompiledForm, rows: list[Row]) -> None:
        for key, field in form.fields.items():
            if field.type != "link":
                continue
            target = self.app.form(field.spec.to)
            refs: dict[int, list[Row]] = defaultdict(list)
            for row in rows:
                if row.get(key):
                    refs[row[key]["id"]].append(row)
            if refs:
                for ref in refs.keys() - self._visible(conn, target, set(refs)):
                    for row in refs[ref]:
                        row[key] = {"id": ref, "display": None}

    def _visible(self, conn: Connection, target: CompiledForm, ids: set[int]) -> set[int]:
        access = access_for(target, self.actor)
        if not access.can("read"):
            return set()
        condition = access.condition("read", self.service.engine.dialect.name, self.service.clock())
        if condition is None:
            return ids
        table = target.table
        return set(conn.execute(select(table.c.id).where(table.c.id.in_(ids), condition)).scalars())


def _drop(rows: list[Row], hidden: frozenset[str]) -> None:
    if hidden:
        for row in rows:
            for key in hidden:
                row.pop(key, None)
