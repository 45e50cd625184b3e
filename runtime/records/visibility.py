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
