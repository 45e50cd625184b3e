"""The records service's base: its state, form lookup, and the scope and access checks.

`RecordsService` (runtime/records/service.py) and its reads (runtime/records/reads.py)
build on this: who may see which record, which fields an actor may not write, and
which files a write may attach.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Connection, Engine, select

from runtime.identity.actor import SYSTEM, Actor
from runtime.records.access import Access, access_for
from runtime.records.compiled import CompiledApp, CompiledForm
from runtime.records.errors import FieldProblem, InvalidRecord, NotFound
from runtime.records.file_access import attachment_access_problems, readable_file
from runtime.records.hooks import ENGINE_WRITE, RecordHooks
from runtime.records.integrity import LinkScope
from runtime.records.reader import Row
from runtime.records.store import Clock, Store
from runtime.records.visibility import Visibility
from runtime.records.writer import Prepared
from runtime.schema.types import utcnow

if TYPE_CHECKING:
    from runtime.records.service import RecordsService


class ScopedRecords:
    """The state of the records service, and the checks of what an actor may reach."""

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

    def _visibility(self, app: CompiledApp, actor: Actor) -> Visibility:
        """How `actor` sees records of `app` (hidden fields, links outside their scope)."""
        return Visibility(cast("RecordsService", self), app, actor)

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
        """Refuse a change while a locking approval runs (the engine's own writes pass)."""
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
        """Those of `ids` the actor may read, in order."""
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
        """The record as the actor may see it; 404 outside their read scope."""
        access = access_for(form, actor)
        self._in_scope(conn, form, record_id, access, "read")
        return self._visibility(app, actor).read_ids(conn, form, [record_id])[0]


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
