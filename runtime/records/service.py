"""The records service: list, export, get, create (one or many), update, delete, merge and history.

Every read and write of form data goes through here, on behalf of an actor, so
permissions (operations, row scope, hidden and read-only fields), validation,
defaults, formulas, auto numbers, reference and uniqueness checks, duplicate
detection, the rollups of the records linking elsewhere (runtime/records/rollups.py) and
the audit trail always apply. Reads nest child rows and return link
fields as `{id, display}` with a join, never a query per row.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable
from typing import Any

from sqlalchemy import Connection, Engine, Select, and_, delete, func, select, update
from sqlalchemy.sql.elements import ColumnElement

from runtime.expressions.to_python import CURRENT_USER
from runtime.identity.actor import SYSTEM, Actor
from runtime.records import audit, rollups
from runtime.records.access import Access, access_for, reading_for
from runtime.records.compiled import CompiledApp, CompiledForm
from runtime.records.dedup import candidates, group_keys
from runtime.records.errors import Conflict, FieldProblem, InvalidRecord, NotFound, invalid
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
from runtime.records.file_access import attachment_access_problems, readable_file
from runtime.records.hooks import ENGINE_WRITE, RecordHooks
from runtime.records.integrity import LinkScope, restricting_references
from runtime.records.link_filters import and_all, filter_condition, filters_of
from runtime.records.merge import apply_merge, parse_merge
from runtime.records.preview import Preview, evaluated_record, preview_record, stored_row, without_hidden
from runtime.records.query import apply_list_query, filter_clause, list_order, parse_list_query
from runtime.records.reader import Row, reader_for
from runtime.records.store import Clock, Store, computing, expect_version
from runtime.records.visibility import Visibility
from runtime.records.writer import Prepared, prepare
from runtime.schema.types import utcnow

MAX_BULK = 1000


class RecordsService:
    """Reads and writes records of the loaded apps, for an actor."""

    def __init__(self, engine: Engine, apps: Iterable[CompiledApp], clock: Clock = utcnow) -> None:
        self.engine = engine
        self.apps = {a.app.app: a for a in apps}
        self.clock = clock
        self.store = Store(engine, clock)
        self.hooks: RecordHooks | None = None

    def resolve(self, app_key: str, form_key: str) -> tuple[CompiledApp, CompiledForm]:
        """The compiled app and top-level form; NotFound when either is unknown."""
        app = self.apps.get(app_key)
        if app is None or form_key not in app.forms:
            raise NotFound("form", f"{app_key}/{form_key}")
        return app, app.forms[form_key]

    def access(self, app_key: str, form_key: str, actor: Actor) -> Access:
        """The actor's access to a form."""
        return access_for(self.resolve(app_key, form_key)[1], actor)

    # -- reads -----------------------------------------------------------------------

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
                records = Visibility(self, app, actor).read(conn, form, stmt)
            else:
                rows = conn.execute(stmt).all()
                records = Visibility(self, app, actor).shape(conn, form, [reader.to_json(r) for r in rows])
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
            return Visibility(self, app, actor).history(conn, form, entries)

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
            return Visibility(self, app, actor).read_ids(conn, form, self._readable(conn, access, found))

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

    # -- files -------------------------------------------------------------------------

    def file(self, public_id: str, actor: Actor = SYSTEM) -> dict[str, Any]:
        """The stored row of a file the actor may read (runtime/records/file_access.py); else 404."""
        with self.engine.connect() as conn:
            return readable_file(
                conn, self.apps.values(), actor, public_id, self.engine.dialect.name, self.clock()
            )

    def check_attachable(
        self,
        conn: Connection,
        form: CompiledForm,
        values: dict[str, Any],
        actor: Actor,
        record_id: int,
        path: str,
    ) -> None:
        """422 unless `actor` may attach every file in `values` (public ids become stored ids in place).

        For values the process engine writes on a caller's behalf (a workflow action's
        `fields`): the engine itself may attach any file, its caller only what they may read.
        """
        problems = self._attachable(conn, form, [(path, Prepared(values=values))], actor, record_id)
        if problems:
            raise InvalidRecord(problems)

    def _attachable(
        self,
        conn: Connection,
        form: CompiledForm,
        items: list[tuple[str, Prepared]],
        actor: Actor,
        own_id: int | None = None,
    ) -> list[FieldProblem]:
        """Files a write attaches: public ids become stored ids; files the actor may not read are refused."""
        dialect, now = self.engine.dialect.name, self.clock()
        return attachment_access_problems(conn, self.apps.values(), form, items, actor, dialect, now, own_id)

    # -- scope -------------------------------------------------------------------------

    def require_in_scope(
        self, conn: Connection, form: CompiledForm, record_id: int, actor: Actor, operation: str
    ) -> None:
        """403 unless the actor may do `operation` on the form; 404 unless the record is in scope."""
        access = access_for(form, actor)
        access.require(operation)
        self._in_scope(conn, form, record_id, access, operation)

    def visible(
        self, conn: Connection, app: CompiledApp, form: CompiledForm, record_id: int, actor: Actor
    ) -> Row:
        """The record as the actor may see it."""
        return self._visible_one(conn, app, form, record_id, actor)

    def locked_fields(self, app_key: str, form_key: str, actor: Actor, *, creating: bool) -> set[str]:
        """The fields `actor` may not write (read-only or hidden for them, a workflow's state)."""
        app, form = self.resolve(app_key, form_key)
        return set(self._restricted(app, form, access_for(form, actor), creating=creating))

    def _restricted(
        self, app: CompiledApp, form: CompiledForm, access: Access, *, creating: bool = False
    ) -> dict[str, str]:
        """Fields the actor may not write; a workflow's state field moves only by transitions.

        The engine writes states; system callers (imports, demo data) may give the state
        a record is created in, never change it afterwards.
        """
        found = _restricted(access)
        state = self.hooks.state_field(app, form) if self.hooks is not None else None
        trusted = ENGINE_WRITE.get() or (creating and access.actor.system)
        if state is not None and not trusted:
            found.setdefault(state, "read_only")
        return found

    def _links_for(self, actor: Actor) -> LinkScope | None:
        """The writer's read scope on linked forms; None for the engine's and the system's writes."""
        if actor.admin or ENGINE_WRITE.get():
            return None
        dialect, now = self.engine.dialect.name, self.clock()
        return lambda target: access_for(target, actor).condition("read", dialect, now)

    def _unlocked(
        self,
        conn: Connection,
        app: CompiledApp,
        form: CompiledForm,
        record_id: int,
        *,
        deleting: bool = False,
    ) -> None:
        if self.hooks is not None and not ENGINE_WRITE.get():
            self.hooks.ensure_unlocked(conn, app, form, record_id, deleting=deleting)

    def _in_scope(
        self, conn: Connection, form: CompiledForm, record_id: int, access: Access, operation: str
    ) -> None:
        """404 unless the record exists within the actor's scope for the operation."""
        condition = access.condition(operation, self.engine.dialect.name, self.clock())
        stmt = select(form.table.c.id).where(form.table.c.id == record_id)
        if condition is not None:
            stmt = stmt.where(condition)
        if conn.execute(stmt).first() is None:
            raise NotFound(form.key, record_id)

    def _readable(self, conn: Connection, access: Access, ids: list[int]) -> list[int]:
        if not ids:
            return []
        condition = access.condition("read", self.engine.dialect.name, self.clock())
        if condition is None:
            return ids
        if not access.can("read"):
            return []
        table = access.form.table
        found = set(conn.execute(select(table.c.id).where(table.c.id.in_(ids), condition)).scalars())
        return [i for i in ids if i in found]

    def _visible_one(
        self, conn: Connection, app: CompiledApp, form: CompiledForm, record_id: int, actor: Actor
    ) -> Row:
        access = access_for(form, actor)
        self._in_scope(conn, form, record_id, access, "read")
        return Visibility(self, app, actor).read_ids(conn, form, [record_id])[0]


def _restricted(access: Access) -> dict[str, str]:
    """Fields the actor may not write: hidden ones are unknown to them, read-only ones refused.

    Fields of a table field's rows are named `table.field`.
    """
    found = {key: "read_only" for key in access.read_only}
    found.update({key: "unknown_field" for key in access.hidden})
    for table, child in access.form.children.items():
        rows = access_for(child, access.actor)
        found.update({f"{table}.{key}": "read_only" for key in rows.read_only})
        found.update({f"{table}.{key}": "unknown_field" for key in rows.hidden})
    return found
