"""The reads of the records service: a page of a list, one record, its history, its
duplicates, a live preview and a link field's filter.

Every read goes through the actor's permissions (operations, row scope, hidden fields)
and returns link fields as `{id, display}`; `RecordsService` (runtime/records/service.py)
adds the related lists, the export and the writes.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.sql.elements import ColumnElement

from runtime.expressions.to_python import CURRENT_USER
from runtime.identity.actor import SYSTEM, Actor
from runtime.records import audit
from runtime.records.access import access_for, reading_for
from runtime.records.dedup import candidates, group_keys
from runtime.records.link_filters import and_all, filter_condition, filters_of
from runtime.records.preview import Preview, evaluated_record, preview_record, stored_row, without_hidden
from runtime.records.query import apply_list_query, filter_clause, parse_list_query
from runtime.records.reader import Row, reader_for
from runtime.records.scoped import ScopedRecords
from runtime.records.store import computing


class RecordReads(ScopedRecords):
    """The records service's reads, for an actor."""

    def list_page(
        self,
        app_key: str,
        form_key: str,
        params: Iterable[tuple[str, str]],
        actor: Actor = SYSTEM,
        condition: ColumnElement[bool] | None = None,
        *,
        children: bool = True,
    ) -> dict[str, Any]:
        """A page of the records the actor may read, filtered and sorted, with `next_offset`.

        `condition` narrows it further (a link's filter, for a picker); without `children`
        the records come without their child rows (one statement fewer per table field)."""
        app, form = self.resolve(app_key, form_key)
        access = access_for(form, actor)
        access.require("read")
        dialect, now = self.engine.dialect.name, self.clock()
        query = parse_list_query(form, params, reading_for(app, form, actor, dialect, now))
        scope = and_all([access.condition("read", dialect, now), condition])
        reader = reader_for(app, form)
        stmt = apply_list_query(form, reader, reader.select(), query, dialect, scope)
        with self.engine.connect() as conn, computing(query.where is not None):
            if children:
                records = self._visibility(app, actor).read(conn, form, stmt)
            else:
                rows = conn.execute(stmt).all()
                records = self._visibility(app, actor).shape(conn, form, [reader.to_json(r) for r in rows])
            total = None
            if query.count:
                counted = (
                    select(func.count()).select_from(form.table).where(filter_clause(form, query, dialect))
                )
                if scope is not None:
                    counted = counted.where(scope)
                total = conn.execute(counted).scalar_one()
        more = len(records) > query.limit
        page: dict[str, Any] = {
            "items": records[: query.limit],
            "limit": query.limit,
            "offset": query.offset,
            "next_offset": query.offset + query.limit if more else None,
        }
        if total is not None:
            page["total"] = total
        return page

    def get(self, app_key: str, form_key: str, record_id: int, actor: Actor = SYSTEM) -> Row:
        """One record with its child rows; 404 when it is outside the actor's scope."""
        app, form = self.resolve(app_key, form_key)
        access_for(form, actor).require("read")
        with self.engine.connect() as conn:
            return self._visible_one(conn, app, form, record_id, actor)

    def history(self, app_key: str, form_key: str, record_id: int, actor: Actor = SYSTEM) -> list[Row]:
        """The audit trail of a record the actor may read, without hidden fields."""
        app, form = self.resolve(app_key, form_key)
        access = access_for(form, actor)
        access.require("read")
        with self.engine.connect() as conn:
            self._in_scope(conn, form, record_id, access, "read")
            entries = audit.history(conn, app.app.app, form.key, record_id, access.hidden)
            return self._visibility(app, actor).history(conn, form, entries)

    def duplicates_of(self, app_key: str, form_key: str, record_id: int, actor: Actor = SYSTEM) -> list[Row]:
        """Records the actor may read that match this record in some duplicate group."""
        app, form = self.resolve(app_key, form_key)
        access = access_for(form, actor)
        access.require("read")
        with self.engine.connect() as conn:
            self._in_scope(conn, form, record_id, access, "read")
            stored = self.store.stored_row(conn, form, record_id)
            if not form.form.duplicates:
                return []
            found = candidates(conn, form, group_keys(form, stored), exclude=record_id)
            return self._visibility(app, actor).read_ids(conn, form, self._readable(conn, access, found))

    def preview(
        self, app_key: str, form_key: str, data: Any, actor: Actor, record_id: int | None = None
    ) -> Preview:
        """A live preview of a record being entered (or of `record_id` being edited); writes nothing."""
        app, form = self.resolve(app_key, form_key)
        access = access_for(form, actor)
        access.require("create" if record_id is None else "update")
        restricted = self._restricted(app, form, access, creating=record_id is None)
        token = CURRENT_USER.set(actor.user_id)
        try:
            with self.engine.connect() as conn:
                stored = None
                if record_id is not None:
                    self._in_scope(conn, form, record_id, access, "update")
                    stored = stored_row(conn, form, record_id)
                found = preview_record(
                    conn, app, form, data if isinstance(data, dict) else {}, actor, restricted, stored
                )
        finally:
            CURRENT_USER.reset(token)
        return without_hidden(found, access.hidden)

    def link_filter(
        self,
        app_key: str,
        form_key: str,
        field: str,
        data: Any,
        actor: Actor,
        record_id: int | None = None,
        row: int | None = None,
    ) -> ColumnElement[bool] | None:
        """The `filter` of link field `field` (`table.field` in child rows) as SQL on the
        linked form, for the record being entered: `data` as a save would compute it (over
        `record_id` when editing), and row `row` of the table. None without a filter."""
        app, form = self.resolve(app_key, form_key)
        table, _, column = field.partition(".")
        owner = form.children.get(table) if column else form
        found = filters_of(owner).get(column or field) if owner is not None else None
        if found is None:
            return None
        dialect, now = self.engine.dialect.name, self.clock()
        token = CURRENT_USER.set(actor.user_id)
        try:
            if not found.checked.outer:
                return filter_condition(app, found, None, None, dialect, now)
            access = access_for(form, actor)
            access.require("read")
            restricted = self._restricted(app, form, access, creating=record_id is None)
            with self.engine.connect() as conn:
                stored = None
                if record_id is not None:
                    self._in_scope(conn, form, record_id, access, "read")
                    stored = stored_row(conn, form, record_id)
                entered = data if isinstance(data, dict) else {}
                record = evaluated_record(conn, app, form, entered, actor, restricted, stored)
            if not column:
                return filter_condition(app, found, record, None, dialect, now)
            rows = record.get(table)
            own = rows[row] if isinstance(rows, list) and row is not None and 0 <= row < len(rows) else {}
            return filter_condition(app, found, own, record, dialect, now)
        finally:
            CURRENT_USER.reset(token)
