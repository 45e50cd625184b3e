"""The records service: list, export, get, create (one or many), update, delete, merge and history.

Every read and write of form data goes through here, on behalf of an actor, so
permissions (operations, row scope, hidden and read-only fields), validation,
defaults, formulas, auto numbers, reference and uniqueness checks, duplicate
detection, the rollups of the records linking elsewhere (runtime/records/rollups.py) and
the audit trail always apply. Reads nest child rows and return link
fields as `{id, display}` with a join, never a query per row.

The lookups and scope checks live in runtime/records/scoped.py, the plain reads (list,
get, history, duplicates, preview, link filters) in runtime/records/reads.py; the
export and the writes are here.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable
from typing import Any

from sqlalchemy import Connection, Select, and_, delete, func, select, update

from runtime.expressions.to_python import CURRENT_USER
from runtime.identity.actor import SYSTEM, Actor
from runtime.records import audit, rollups
from runtime.records.access import access_for, reading_for
from runtime.records.compiled import CompiledApp, CompiledForm
from runtime.records.errors import Conflict, FieldProblem, invalid
from runtime.records.evaluation import evaluate
from runtime.records.export_query import (
    EXPORT_BATCH,
    MAX_EXPORT_ROWS,
    Export,
    ExportColumn,
    export_row,
    parse_export,
    too_many,
)
from runtime.records.hooks import ENGINE_WRITE
from runtime.records.integrity import restricting_references
from runtime.records.merge import apply_merge, parse_merge
from runtime.records.query import filter_clause, list_order
from runtime.records.reader import Row, reader_for
from runtime.records.reads import RecordReads
from runtime.records.store import computing, expect_version
from runtime.records.visibility import Visibility
from runtime.records.writer import Prepared, prepare

MAX_BULK = 1000


class RecordsService(RecordReads):
    """Reads and writes records of the loaded apps, for an actor.

    The plain reads come from `RecordReads`, the lookups and scope checks from `ScopedRecords`.
    """

    # -- related lists and export ----------------------------------------------------

    def related_page(
        self,
        app_key: str,
        form_key: str,
        record_id: int,
        relation: str,
        params: Iterable[tuple[str, str]],
        actor: Actor = SYSTEM,
    ) -> dict[str, Any]:
        """A page of the records of a related list of the form (`quote.opportunity`) that link
        to record `record_id`, as the actor may read them (runtime/records/related.py)."""
        from runtime.records.related import related_page

        return related_page(self, app_key, form_key, record_id, relation, params, actor)

    def export_rows(
        self,
        app_key: str,
        form_key: str,
        params: Iterable[tuple[str, str]],
        actor: Actor = SYSTEM,
        language: str | None = None,
    ) -> Export:
        """Every record the actor may export, filtered and sorted as `list_page` does, as table rows.

        Needs the `read` and `export` operations (403); the rows are those in both scopes,
        without hidden fields. Columns are `fields=` or the form's list columns, labelled in
        `language` (default: the actor's). More than MAX_EXPORT_ROWS records is a 422,
        answered before any row is read. The rows are read while they are iterated, in
        batches of EXPORT_BATCH: one SELECT (display values joined), plus one query per
        link field and batch when the actor's scope on the linked form is limited.
        """
        app, form = self.resolve(app_key, form_key)
        access = access_for(form, actor)
        access.require("read")
        access.require("export")
        dialect, now = self.engine.dialect.name, self.clock()
        language = language or actor.language
        request = parse_export(form, params, reading_for(app, form, actor, dialect, now), language)
        both = ("read",) if access.scopes.get("export") == access.scopes.get("read") else ("read", "export")
        scopes = [access.condition(operation, dialect, now) for operation in both]
        where = and_(filter_clause(form, request.query, dialect), *(s for s in scopes if s is not None))
        has_where = request.query.where is not None
        with self.engine.connect() as conn, computing(has_where):
            total = conn.execute(select(func.count()).select_from(form.table).where(where)).scalar_one()
        if total > MAX_EXPORT_ROWS:
            raise too_many(total)
        reader = reader_for(app, form)
        stmt = reader.select().where(where).order_by(*list_order(form, reader, request.query, dialect))
        return Export(
            form.form.label.text(language),
            [(c.key, c.label) for c in request.columns],
            self._export_stream(app, form, stmt, request.columns, actor, has_where),
            total,
        )

    def _export_stream(
        self,
        app: CompiledApp,
        form: CompiledForm,
        stmt: Select[Any],
        columns: list[ExportColumn],
        actor: Actor,
        has_where: bool,
    ) -> Generator[list[Any], None, None]:
        reader = reader_for(app, form)
        visibility = Visibility(self, app, actor)
        zone = app.app.zone()
        sent = 0
        with self.engine.connect() as conn, computing(has_where):
            result = conn.execute(stmt.execution_options(yield_per=EXPORT_BATCH))
            for batch in result.partitions():
                records = visibility.shape(conn, form, [reader.to_json(row) for row in batch])
                sent += len(records)
                if sent > MAX_EXPORT_ROWS:  # records added since the count
                    raise too_many(sent)
                for record in records:
                    yield export_row(columns, record, zone)

    # -- writes ----------------------------------------------------------------------

    def create(
        self, app_key: str, form_key: str, data: Any, actor: Actor = SYSTEM, *, allow_duplicate: bool = False
    ) -> Row:
        """Validate and insert one record."""
        return self.create_many(
            app_key, form_key, [data], actor, bulk=False, allow_duplicate=allow_duplicate
        )[0]

    def create_many(
        self,
        app_key: str,
        form_key: str,
        items: Any,
        actor: Actor = SYSTEM,
        *,
        bulk: bool = True,
        allow_duplicate: bool = False,
    ) -> list[Row]:
        """Insert all records or none; problems are reported as `[index].field`.

        A record matching a duplicate group of a stored record (or of another record in
        the same request) is refused with 409 and the candidate ids, unless `allow_duplicate`.
        """
        app, form = self.resolve(app_key, form_key)
        access = access_for(form, actor)
        access.require("create")
        if not isinstance(items, list) or not 0 < len(items) <= MAX_BULK:
            raise invalid(None, "type", f"expected a list of 1 to {MAX_BULK} records")
        prepared: list[tuple[str, Prepared]] = []
        problems: list[FieldProblem] = []
        for index, data in enumerate(items):
            prefix = f"[{index}]." if bulk else ""
            item, found = prepare(
                form,
                data,
                creating=True,
                path=prefix,
                user_id=actor.user_id,
                department_id=actor.department_id,
                restricted=self._restricted(app, form, access, creating=True),
                read_only_too=ENGINE_WRITE.get(),
            )
            prepared.append((prefix, item))
            problems.extend(found)
        if self.hooks is not None:
            self.hooks.before_create(app, form, [item for _, item in prepared], actor)
        token = CURRENT_USER.set(actor.user_id)
        try:
            with self.store.writing() as conn:
                problems.extend(self._attachable(conn, form, prepared, actor))
                problems.extend(evaluate(conn, app, form, prepared))
                self.store.check(
                    conn, app, form, prepared, problems=problems, link_scope=self._links_for(actor)
                )
                self.store.dedupe(
                    conn,
                    form,
                    prepared,
                    {},
                    allow_duplicate,
                    reveal=lambda ids: self._readable(conn, access, ids),
                )
                self.store.one_record_if_single(conn, form, len(prepared))
                ids = [self.store.insert(conn, app, form, item, actor.user_id) for _, item in prepared]
                self.store.after_write(conn, app, form)
                recomputed = rollups.refresh(
                    conn, app, form, rollups.inserted([i.values for _, i in prepared], ids)
                )
                created = self.store.read_many(conn, app, form, ids)
                for record in created:
                    changes = audit.diff(None, record, set(form.children))
                    audit.record(conn, app.app.app, form.key, record["id"], "create", actor, changes)
                if self.hooks is not None:
                    self.hooks.created(conn, app, form, ids, actor)
                    self.hooks.recomputed(conn, app, recomputed, actor)
                    created = self.store.read_many(conn, app, form, ids)
                return Visibility(self, app, actor).shape(conn, form, created)
        finally:
            CURRENT_USER.reset(token)

    def update(
        self,
        app_key: str,
        form_key: str,
        record_id: int,
        data: Any,
        expected_version: int | None = None,
        actor: Actor = SYSTEM,
        *,
        allow_duplicate: bool = False,
    ) -> Row:
        """Change the given fields; with `expected_version`, refuse a stale write (409)."""
        app, form = self.resolve(app_key, form_key)
        token = CURRENT_USER.set(actor.user_id)
        try:
            with self.store.writing() as conn:
                after = self._update(
                    conn, app, form, record_id, data, expected_version, actor, allow_duplicate
                )
                if after is None:
                    after = self.store.read_one(conn, app, form, record_id)
                return Visibility(self, app, actor).shape(conn, form, [after])[0]
        finally:
            CURRENT_USER.reset(token)

    def apply_update(self, app_key: str, form_key: str, record_id: int, data: Any, actor: Actor) -> None:
        """`update` without an answer: the process engine's writes skip reading the record back."""
        app, form = self.resolve(app_key, form_key)
        token = CURRENT_USER.set(actor.user_id)
        try:
            with self.store.writing() as conn:
                self._update(conn, app, form, record_id, data, None, actor, True)
        finally:
            CURRENT_USER.reset(token)

    def _update(
        self,
        conn: Connection,
        app: CompiledApp,
        form: CompiledForm,
        record_id: int,
        data: Any,
        expected_version: int | None,
        actor: Actor,
        allow_duplicate: bool,
    ) -> Row | None:
        """Validate and write a change in `conn`; answers the record after it (None when hooks ran)."""
        access = access_for(form, actor)
        access.require("update")
        item, problems = prepare(
            form,
            data,
            creating=False,
            user_id=actor.user_id,
            restricted=self._restricted(app, form, access),
            read_only_too=ENGINE_WRITE.get(),
        )
        if access.condition("update", self.engine.dialect.name, self.clock()) is not None:
            self._in_scope(conn, form, record_id, access, "update")
        self._unlocked(conn, app, form, record_id)
        stored = self.store.stored_row(conn, form, record_id, lock=True)  # writers queue here
        holds = self.hooks.guard_before(conn, app, form, record_id) if self.hooks is not None else None
        before = self.store.read_one(conn, app, form, record_id)
        current = int(stored["version"])
        expect_version(current, expected_version)
        item.record_id = record_id
        problems.extend(self._attachable(conn, form, [("", item)], actor, record_id))
        problems.extend(evaluate(conn, app, form, [("", item)], {record_id: stored}))
        self.store.check(
            conn,
            app,
            form,
            [("", item)],
            own_id=record_id,
            problems=problems,
            link_scope=self._links_for(actor),
        )
        self.store.dedupe(
            conn,
            form,
            [("", item)],
            stored,
            allow_duplicate,
            own_id=record_id,
            reveal=lambda ids: self._readable(conn, access, ids),
        )
        values = {**item.values, "updated_at": self.clock(), "version": current + 1}
        changed = conn.execute(
            update(form.table)
            .where(form.table.c.id == record_id, form.table.c.version == current)
            .values(**values)
        )
        if changed.rowcount != 1:  # a concurrent writer got there first (SQLite has no row lock)
            raise Conflict([FieldProblem(None, "version_conflict", "the record changed meanwhile")])
        for key, rows in item.children.items():
            self.store.replace_children(conn, form.children[key], record_id, rows)
        self.store.after_write(conn, app, form)
        recomputed = rollups.refresh(conn, app, form, [(stored, {**stored, **values})])
        after = self.store.read_one(conn, app, form, record_id)
        changes = audit.diff(before, after, set(form.children))
        again = None
        if self.hooks is not None:  # a material change is refused here, or approved again below
            again = self.hooks.guard_after(conn, app, form, record_id, holds, changes, actor)
        audit.record(conn, app.app.app, form.key, record_id, "update", actor, changes)
        if self.hooks is None:
            return after
        self.hooks.updated(conn, app, form, record_id, stored, {**stored, **values}, set(changes), actor)
        self.hooks.reapprove(conn, app, form, record_id, again, actor)
        self.hooks.recomputed(conn, app, recomputed, actor)
        return None

    def delete(
        self,
        app_key: str,
        form_key: str,
        record_id: int,
        expected_version: int | None = None,
        actor: Actor = SYSTEM,
    ) -> None:
        """Delete a record and its child rows, unless restrict-links still point at it."""
        app, form = self.resolve(app_key, form_key)
        access = access_for(form, actor)
        access.require("delete")
        with self.store.writing() as conn:
            self._in_scope(conn, form, record_id, access, "delete")
            self._unlocked(conn, app, form, record_id, deleting=True)
            expect_version(self.store.current_version(conn, form, record_id), expected_version)
            blocking = restricting_references(conn, app, form, record_id)
            if blocking:
                raise Conflict(blocking)
            before = self.store.read_one(conn, app, form, record_id)
            pending = rollups.before_delete(conn, app, form, record_id)
            conn.execute(delete(form.table).where(form.table.c.id == record_id))
            recomputed = pending.apply(conn, app)
            if self.hooks is not None:
                self.hooks.deleted(conn, app, form, record_id)
                self.hooks.recomputed(conn, app, recomputed, actor)
            audit.record(
                conn,
                app.app.app,
                form.key,
                record_id,
                "delete",
                actor,
                audit.diff(before, None, set(form.children)),
            )

    def merge(self, app_key: str, form_key: str, record_id: int, body: Any, actor: Actor = SYSTEM) -> Row:
        """Merge other records into `record_id` (see runtime/records/merge.py)."""
        app, form = self.resolve(app_key, form_key)
        access = access_for(form, actor)
        access.require("update")
        request = parse_merge(form, record_id, body)
        with self.store.writing() as conn:
            for involved in (record_id, *request.merged):
                self._in_scope(conn, form, involved, access, "update")
            before = self.store.read_one(conn, app, form, record_id)
            pending, rows = rollups.before_merge(conn, app, form, record_id, request.merged)
            apply_merge(conn, app, form, request)
            self.store.recompute(conn, app, form, record_id)
            recomputed = rollups.after_merge(conn, app, form, pending, rows)
            if self.hooks is not None:
                self.hooks.recomputed(conn, app, recomputed, actor)
            after = self.store.read_one(conn, app, form, record_id)
            changes = {**audit.diff(before, after, set(form.children)), "merged": request.merged}
            audit.record(conn, app.app.app, form.key, record_id, "merge", actor, changes)
            for merged in request.merged:
                audit.record(
                    conn, app.app.app, form.key, merged, "merged_into", actor, {"merged_into": record_id}
                )
            return Visibility(self, app, actor).shape(conn, form, [after])[0]
