"""The process engine: workflows, approvals, timers, automations and notifications, on rows.

`ProcessEngine` attaches to a records service as its hooks, so every write of a record
reaches the engine inside the write's transaction: new records enter their workflow's
initial state, timers are scheduled or cancelled, automations run, automatic
transitions fire. What the engine changes goes back through the records service (with
validation, formulas and the audit trail), as an actor on a named channel
(`workflow`, `approval`, `timer`, `automation`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, select, update

from runtime.identity.actor import Actor
from runtime.model import App
from runtime.model.process import Workflow
from runtime.process import automations, guards, jobs, sweeps, timers, workflows
from runtime.process.expressions import Expr, Expressions, gather
from runtime.process.mail import MailSettings
from runtime.process.versions import Versions
from runtime.records.compiled import CompiledApp, CompiledForm
from runtime.records.errors import Conflict, FieldProblem, NotFound
from runtime.records.files import FileStore
from runtime.records.hooks import ENGINE_WRITE
from runtime.records.service import RecordsService
from runtime.records.writer import Prepared
from runtime.schema.system import process_instances

MAX_DEPTH = 12
_DEPTH: ContextVar[int] = ContextVar("formloom_process_depth", default=0)
_QUIET: ContextVar[bool] = ContextVar("formloom_process_quiet", default=False)
Record = dict[str, Any]


@dataclass(frozen=True)
class Target:
    """A record the engine acts on."""

    app: CompiledApp
    form: CompiledForm
    record_id: int

    @property
    def where(self) -> tuple[str, str, int]:
        """(app, form, record id), as process rows store it."""
        return self.app.app.app, self.form.key, self.record_id


class ProcessEngine:
    """Runs the process definitions of the apps a records service serves."""

    def __init__(
        self,
        service: RecordsService,
        mail: MailSettings | None = None,
        clock: Callable[[], dt.datetime] | None = None,
    ) -> None:
        self.service = service
        self.clock = clock or service.clock
        self.mail = mail
        self.files: FileStore | None = None  # where `document` effects keep the PDFs they render
        self.versions = Versions({key: app.app for key, app in service.apps.items()})
        self.expressions = Expressions(self.clock)
        service.hooks = self

    # -- lookups -----------------------------------------------------------------------

    def target(self, app_key: str, form_key: str, record_id: int) -> Target:
        """The record `record_id` of a served top-level form (NotFound when the form is unknown)."""
        app, form = self.service.resolve(app_key, form_key)
        return Target(app, form, record_id)

    def stored(self, conn: Connection, target: Target) -> Record:
        """The stored row of the record (NotFound when it does not exist)."""
        return self.service.store.stored_row(conn, target.form, target.record_id)

    def expr(self, definition: App, form_key: str, text: str | None) -> Expr | None:
        """A compiled expression of `form_key` in `definition`."""
        if text is None:
            return None
        form = definition.form(form_key)
        assert form is not None
        return self.expressions.get(definition, form, text)

    def context(self, conn: Connection, target: Target, row: Record, exprs: list[Expr | None]) -> Record:
        """`row` with everything the expressions read."""
        return gather(conn, target.app, target.form, row, [e for e in exprs if e is not None])

    def lock(self, conn: Connection, target: Target) -> Record:
        """Hold the record's row until the transaction ends (PostgreSQL; SQLite's write lock already does).

        Every process step on a record takes this lock first — transitions, decisions,
        delegations, like the records service's own updates — so steps on one record run
        one after another and always lock in the same order (record, then instances).
        """
        return self.service.store.stored_row(conn, target.form, target.record_id, lock=True)

    def workflow_instance(self, conn: Connection, target: Target, *, lock: bool = False) -> Any:
        """The record's open workflow instance, if any (locked for update on PostgreSQL)."""
        app, form, record_id = target.where
        table = process_instances
        stmt = (
            select(table)
            .where(
                table.c.app == app,
                table.c.form == form,
                table.c.record_id == record_id,
                table.c.kind == "workflow",
                table.c.ended_at.is_(None),
            )
            .order_by(table.c.id.desc())
            .limit(1)
        )
        if lock and conn.dialect.name == "postgresql":
            stmt = stmt.with_for_update()
        return conn.execute(stmt).mappings().first()

    def running_approval(self, conn: Connection, target: Target, key: str | None = None) -> Any:
        """The approval instance running on the record, if any."""
        app, form, record_id = target.where
        table = process_instances
        stmt = select(table).where(
            table.c.app == app,
            table.c.form == form,
            table.c.record_id == record_id,
            table.c.kind == "approval",
            table.c.state == "running",
        )
        if key is not None:
            stmt = stmt.where(table.c.definition == key)
        return conn.execute(stmt.order_by(table.c.id.desc()).limit(1)).mappings().first()

    def bump(self, conn: Connection, instance: Any, **values: Any) -> int:
        """Update an instance if nobody else did since it was read (optimistic lock); its new version."""
        stmt = (
            update(process_instances)
            .where(
                and_(
                    process_instances.c.id == instance["id"],
                    process_instances.c.version == instance["version"],
                )
            )
            .values(version=instance["version"] + 1, **values)
        )
        if conn.execute(stmt).rowcount != 1:
            raise Conflict([FieldProblem(None, "conflict", "the process changed meanwhile; try again")])
        return int(instance["version"]) + 1

    # -- writing records -----------------------------------------------------------------

    @contextmanager
    def deeper(self) -> Iterator[None]:
        """One level deeper in a chain of reactions; a chain longer than MAX_DEPTH is refused (409)."""
        depth = _DEPTH.get() + 1
        if depth > MAX_DEPTH:
            message = f"workflows and automations triggered each other more than {MAX_DEPTH} times in a row"
            raise Conflict([FieldProblem(None, "loop", message)])
        token = _DEPTH.set(depth)
        try:
            yield
        finally:
            _DEPTH.reset(token)

    @contextmanager
    def acting(self, *, quiet: bool = False) -> Iterator[None]:
        """Engine writes: state fields writable, locks lifted, `quiet` skips the update hooks."""
        with self.deeper():
            tokens = (ENGINE_WRITE.set(True), _QUIET.set(quiet))
            try:
                yield
            finally:
                _QUIET.reset(tokens[1])
                ENGINE_WRITE.reset(tokens[0])

    def write(self, target: Target, values: Record, actor: Actor, *, quiet: bool = False) -> None:
        """Update the record as the engine (validation, formulas and audit apply)."""
        with self.acting(quiet=quiet):
            app, form, record_id = target.where
            self.service.apply_update(app, form, record_id, values, actor)

    def create(self, app_key: str, form_key: str, values: Record, actor: Actor) -> int:
        """Create a record as the engine; answers its id."""
        with self.acting():
            created = self.service.create(app_key, form_key, values, actor, allow_duplicate=True)
        return int(created["id"])

    # -- the records service's hooks ------------------------------------------------------

    def current_state(self, row: Record, workflow: Workflow) -> str:
        """The record's state (its workflow's initial state while the field is empty)."""
        value = row.get(workflow.field)
        return str(value) if value is not None else workflow.initial().key

    def state_field(self, app: CompiledApp, form: CompiledForm) -> str | None:
        """The workflow state field of the form, if it has a workflow."""
        workflow = app.app.workflow_of(form.key)
        return workflow.field if workflow else None

    def before_create(
        self, app: CompiledApp, form: CompiledForm, items: list[Prepared], actor: Actor
    ) -> None:
        """New records start in the initial state (system callers and the engine may give one)."""
        workflow = app.app.workflow_of(form.key)
        if workflow is None:
            return
        initial = workflow.initial().key
        for item in items:
            given = item.values.get(workflow.field)
            trusted = ENGINE_WRITE.get() or actor.system
            if not (trusted and workflow.state(str(given)) is not None):
                item.values[workflow.field] = initial

    def created(
        self, conn: Connection, app: CompiledApp, form: CompiledForm, ids: list[int], actor: Actor
    ) -> None:
        """Start workflow instances and timers, run created automations, settle each record."""
        workflow = app.app.workflow_of(form.key)
        for record_id in ids:
            target = Target(app, form, record_id)
            if workflow is not None:
                row = self.stored(conn, target)
                workflows.start_instance(self, conn, target, workflow, str(row[workflow.field]))
            automations.on_created(self, conn, target, actor)
            self.settle(conn, target, None, actor)

    def updated(
        self,
        conn: Connection,
        app: CompiledApp,
        form: CompiledForm,
        record_id: int,
        before: Record,
        after: Record,
        changed: set[str],
        actor: Actor,
    ) -> None:
        """Reschedule date timers, run updated automations, settle the record."""
        if _QUIET.get():
            return
        target = Target(app, form, record_id)
        if not changed:
            return
        if form.form.single:  # formulas on every record moved: their automatic transitions may hold
            sweeps.schedule(conn, app, self.now())
        timers.reschedule(self, conn, target, changed, after)
        automations.on_updated(self, conn, target, before, after, changed, actor)
        self.settle(conn, target, before, actor)

    def ensure_unlocked(
        self,
        conn: Connection,
        app: CompiledApp,
        form: CompiledForm,
        record_id: int,
        *,
        deleting: bool = False,
    ) -> None:
        """While a locking approval without material fields runs, the record cannot be changed
        (409 `locked`); while anything guards it, it cannot be deleted."""
        target = Target(app, form, record_id)
        running = self.running_approval(conn, target)
        if running is not None:
            approval = self.versions.approval(
                conn, app.app.app, running["definition"], running["definition_version"]
            )
            if approval is None or (approval.lock and (deleting or not approval.material)):
                message = f"the record is locked while approval '{running['definition']}' is in progress"
                raise Conflict([FieldProblem(None, "locked", message)])
        if deleting and guards.deletion_held(self, conn, target) is not None:
            message = "the record is approved or in a guarded state: it cannot be deleted"
            raise Conflict([FieldProblem(None, "locked", message)])

    def guard_before(self, conn: Connection, app: CompiledApp, form: CompiledForm, record_id: int) -> Any:
        """The guards on a record about to change (see runtime/process/guards.py)."""
        return guards.before_change(self, conn, Target(app, form, record_id))

    def guard_after(
        self,
        conn: Connection,
        app: CompiledApp,
        form: CompiledForm,
        record_id: int,
        holds: Any,
        changes: dict[str, Any],
        actor: Actor,
    ) -> Any:
        """Refuse a material change (409), or answer what to approve again."""
        return guards.after_change(self, conn, Target(app, form, record_id), holds, changes, actor)

    def reapprove(
        self, conn: Connection, app: CompiledApp, form: CompiledForm, record_id: int, again: Any, actor: Actor
    ) -> None:
        """Start again the approvals a material change touched."""
        if again:
            guards.reapprove(self, conn, Target(app, form, record_id), again, actor)

    def deleted(self, conn: Connection, app: CompiledApp, form: CompiledForm, record_id: int) -> None:
        """End the record's instances, cancel its open tasks and its pending jobs."""
        workflows.end_all(self, conn, Target(app, form, record_id))

    def recomputed(
        self, conn: Connection, app: CompiledApp, records: list[tuple[str, int]], actor: Actor
    ) -> None:
        """Rollups of these records changed with other records (a payment allocated to a
        milestone): take the automatic transitions whose guard now holds on each. Only
        automatic transitions react — a recomputed value is not an edit of the record, so
        automations (`on: updated`) and timers do not (docs/processes.md#automatic-transitions)."""
        for form_key, record_id in records:
            workflow = app.app.workflow_of(form_key)
            if workflow is None or not any(t.auto for t in workflow.transitions):
                continue
            target = Target(app, app.form(form_key), record_id)
            try:
                with self.deeper():
                    workflows.take_automatic(self, conn, target, actor)
            except NotFound:
                continue  # deleted by the same change

    # -- settling --------------------------------------------------------------------------

    def settle(self, conn: Connection, target: Target, before: Record | None, actor: Actor) -> None:
        """Take automatic transitions whose guard holds; start approvals whose condition became true."""
        from runtime.process import approvals

        with self.deeper():
            workflows.take_automatic(self, conn, target, actor)
            approvals.start_when_due(self, conn, target, before, actor)

    def workflow_of(self, conn: Connection, target: Target, instance: Any) -> Workflow | None:
        """The workflow an instance runs (the version it started on)."""
        version = instance["definition_version"] if instance is not None else None
        return self.versions.workflow(conn, target.app.app.app, target.form.key, version)

    def engine_actor(self, actor: Actor, channel: str) -> Actor:
        """The engine acting because of `actor`: all permissions, recorded on `channel`."""
        return Actor(
            actor.user_id,
            actor.username,
            actor.roles | {"admin"},
            actor.team,
            channel,
            True,
            actor.language,
            department_id=actor.department_id,
        )

    def now(self) -> dt.datetime:
        """The engine's clock (injectable for tests)."""
        return self.clock()


def engine_for(service: RecordsService) -> ProcessEngine:
    """The process engine attached to a records service (attached now, with mail from the settings)."""
    if isinstance(service.hooks, ProcessEngine):
        return service.hooks
    return ProcessEngine(service, MailSettings.from_env())


__all__ = ["ProcessEngine", "Target", "engine_for", "jobs"]
