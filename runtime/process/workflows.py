"""Workflow transitions: which actions are open to a caller, and taking one.

Taking a transition, in one transaction: lock the record's row (parallel steps on
the record queue there, then see the state the first one left), check the state, the
caller (roles and the `allowed` expression), the values given with the action and the
guard; write the new state through the records service; move the instance (optimistic
lock), cancel the old state's timers and schedule the new state's; record the step
in the history; run the transition's effects and the `transitioned` automations; then
take any automatic transition that now holds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, and_, insert, select, update

from runtime.identity.actor import SYSTEM, Actor
from runtime.model.process import ANY_STATE, Transition, Workflow
from runtime.process import automations, guards, jobs, timers
from runtime.process.effects import run_effects
from runtime.process.expressions import holds
from runtime.process.history import note
from runtime.records.errors import (
    Conflict,
    FieldProblem,
    InvalidRecord,
    NotAllowed,
    NotFound,
    RecordError,
    missing,
)
from runtime.records.values import ValueProblem
from runtime.schema.system import process_instances, tasks

if TYPE_CHECKING:
    from runtime.process.engine import ProcessEngine, Target

MAX_AUTOMATIC = 10
Record = dict[str, Any]


def start_instance(
    engine: ProcessEngine, conn: Connection, target: Target, workflow: Workflow, state: str
) -> Any:
    """Open the record's workflow instance on the current version, and schedule its first timers."""
    now = engine.now()
    app, form, record_id = target.where
    version = engine.versions.current(conn, app)
    values = dict(
        app=app,
        kind="workflow",
        definition=workflow.workflow,
        definition_version=version,
        form=form,
        record_id=record_id,
        state=state,
        round=0,
        entered_at=now,
        started_at=now,
        version=1,
    )
    key = conn.execute(insert(process_instances).values(**values)).inserted_primary_key
    assert key is not None
    instance_id = key[0]
    instance = {**values, "id": instance_id, "ended_at": None}
    timers.schedule(engine, conn, target, workflow, instance, engine.stored(conn, target))
    return instance


def instance_for(engine: ProcessEngine, conn: Connection, target: Target, workflow: Workflow) -> Any:
    """The open instance, or one opened now for a record that predates its workflow."""
    instance = engine.workflow_instance(conn, target, lock=True)
    if instance is None:
        row = engine.stored(conn, target)
        state = engine.current_state(row, workflow)
        if row.get(workflow.field) is None:
            engine.write(target, {workflow.field: state}, SYSTEM.via("workflow"), quiet=True)
        start_instance(engine, conn, target, workflow, state)
        instance = engine.workflow_instance(conn, target, lock=True)
    return instance


def available(engine: ProcessEngine, conn: Connection, target: Target, actor: Actor) -> list[Record]:
    """The actions the caller may take on the record now (guards that fail are left out)."""
    workflow = target.app.app.workflow_of(target.form.key)
    if workflow is None:
        return []
    instance = engine.workflow_instance(conn, target)
    workflow = engine.workflow_of(conn, target, instance) or workflow
    row = engine.stored(conn, target)
    state = engine.current_state(row, workflow)
    definition = _definition(engine, conn, target, instance)
    found = []
    for transition in workflow.leaving(state):
        if transition.system or transition.auto:
            continue
        if not _may_take(engine, conn, target, definition, transition, row, actor):
            continue
        guard = engine.expr(definition, target.form.key, transition.guard)
        ready = holds(guard, engine.context(conn, target, row, [guard]), actor.user_id)
        label = transition.label.model_dump(exclude_none=True) if transition.label else None
        found.append(
            {
                "action": transition.action,
                "label": label,
                "from": state,
                "to": transition.to,
                "fields": transition.fields,
                "require": transition.require,
                "ready": ready,
                "reason": None if ready else _guard_message(transition),
            }
        )
    return found


def take(
    engine: ProcessEngine,
    conn: Connection,
    target: Target,
    action: str,
    actor: Actor,
    *,
    values: Any = None,
    comment: str | None = None,
    by_engine: bool = False,
) -> None:
    """Take `action` on the record (see the module docstring for what that does)."""
    if target.app.app.workflow_of(target.form.key) is None:
        raise NotFound("workflow", target.form.key)
    current = target.app.app.workflow_of(target.form.key)
    assert current is not None
    engine.lock(conn, target)  # a parallel step on the record waits here, then sees the new state
    instance = instance_for(engine, conn, target, current)
    workflow = engine.workflow_of(conn, target, instance) or current
    definition = _definition(engine, conn, target, instance)
    row = engine.stored(conn, target)
    state = engine.current_state(row, workflow)
    transition = next((t for t in workflow.transitions if t.action == action), None)
    if transition is None:
        raise missing("action", action)
    if state not in transition.from_ and ANY_STATE not in transition.from_:
        raise Conflict([FieldProblem(None, "state", f"'{action}' cannot be taken from state '{state}'")])
    if not by_engine:
        if transition.system or transition.auto:
            raise NotAllowed(f"'{action}' is taken by the process engine only")
        if not _may_take(engine, conn, target, definition, transition, row, actor):
            raise NotAllowed(f"you may not take '{action}' on this record")
    given = _given_values(target, transition, values, row)
    if not by_engine:  # files given with the action are attached on the caller's rights, not the engine's
        engine.service.check_attachable(conn, target.form, given, actor, target.record_id, "values.")
    guard = engine.expr(definition, target.form.key, transition.guard)
    if not holds(guard, engine.context(conn, target, {**row, **given}, [guard]), actor.user_id):
        raise InvalidRecord([FieldProblem(None, "guard", _guard_message(transition))])
    channel = "workflow"
    acting = actor if by_engine else engine.engine_actor(actor, channel)
    _move(engine, conn, target, workflow, instance, transition, state, given, acting, comment)
    guards.release(engine, conn, target, transition.to, workflow.initial().key)
    if not transition.system and not by_engine:
        from runtime.process.approvals import cancel_running

        cancel_running(engine, conn, target, acting, f"withdrawn by '{action}'")
    after = engine.stored(conn, target)
    run_effects(engine, conn, target, definition, transition.effects, acting)
    automations.on_transitioned(engine, conn, target, action, transition.to, row, after, acting)
    engine.settle(conn, target, row, acting)


def _move(
    engine: ProcessEngine,
    conn: Connection,
    target: Target,
    workflow: Workflow,
    instance: Any,
    transition: Transition,
    state: str,
    given: Record,
    actor: Actor,
    comment: str | None,
) -> None:
    now = engine.now()
    engine.write(target, {workflow.field: transition.to, **given}, actor, quiet=True)
    final = workflow.state(transition.to)
    ended = now if final is not None and final.final else None
    version = engine.bump(conn, instance, state=transition.to, entered_at=now, ended_at=ended)
    jobs.cancel(conn, jobs.table.c.instance_id == instance["id"], jobs.table.c.kind == "timer")
    moved = {**dict(instance), "state": transition.to, "entered_at": now, "version": version}
    if ended is None:
        timers.schedule(engine, conn, target, workflow, moved, engine.stored(conn, target), previous=state)
    changes = {"action": transition.action, "from": state, "to": transition.to}
    if comment:
        changes["comment"] = comment[:2000]
    note(conn, target, "transition", actor, changes)


def take_automatic(engine: ProcessEngine, conn: Connection, target: Target, actor: Actor) -> None:
    """Take automatic transitions for as long as one's guard holds (at most ten in a row)."""
    if target.app.app.workflow_of(target.form.key) is None:
        return
    for _ in range(MAX_AUTOMATIC):
        instance = engine.workflow_instance(conn, target)
        workflow = engine.workflow_of(conn, target, instance)
        if workflow is None:
            return
        if not any(t.auto for t in workflow.transitions):
            return
        definition = _definition(engine, conn, target, instance)
        row = engine.stored(conn, target)
        state = engine.current_state(row, workflow)
        chosen = None
        for transition in workflow.leaving(state):
            if not transition.auto:
                continue
            guard = engine.expr(definition, target.form.key, transition.guard)
            if holds(guard, engine.context(conn, target, row, [guard]), actor.user_id):
                chosen = transition
                break
        if chosen is None:
            return
        take(engine, conn, target, chosen.action, engine.engine_actor(actor, "workflow"), by_engine=True)


def end_all(engine: ProcessEngine, conn: Connection, target: Target) -> None:
    """The record is gone: end its instances, cancel its open tasks and pending jobs."""
    app, form, record_id = target.where
    now = engine.now()
    table = process_instances
    mine = and_(table.c.app == app, table.c.form == form, table.c.record_id == record_id)
    ids = list(conn.execute(select(table.c.id).where(mine, table.c.ended_at.is_(None))).scalars())
    if ids:
        conn.execute(
            update(table).where(table.c.id.in_(ids)).values(ended_at=now, version=table.c.version + 1)
        )
        conn.execute(
            update(tasks)
            .where(tasks.c.instance_id.in_(ids), tasks.c.status == "open")
            .values(status="cancelled")
        )
    jobs.cancel(conn, jobs.table.c.app == app, jobs.table.c.form == form, jobs.table.c.record_id == record_id)


def _may_take(
    engine: ProcessEngine,
    conn: Connection,
    target: Target,
    definition: Any,
    transition: Transition,
    row: Record,
    actor: Actor,
) -> bool:
    """Roles and `allowed` decide; with neither, the right to update this very record does."""
    if actor.admin:
        return True
    if not transition.roles and transition.allowed is None:
        try:
            engine.service.require_in_scope(conn, target.form, target.record_id, actor, "update")
        except RecordError:
            return False
        return True
    if transition.roles and not set(transition.roles) & set(actor.roles):
        return False
    if transition.allowed is not None:
        allowed = engine.expr(definition, target.form.key, transition.allowed)
        return holds(allowed, engine.context(conn, target, row, [allowed]), actor.user_id)
    return True


def _given_values(target: Target, transition: Transition, values: Any, row: Record) -> Record:
    """The values sent with the action, converted; 422 naming each problem.

    A required field is satisfied by a value given now or one the record already holds.
    """
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise InvalidRecord([FieldProblem("values", "type", "expected an object of field values")])
    problems: list[FieldProblem] = []
    given: Record = {}
    for key, raw in values.items():
        if key not in transition.fields:
            problems.append(
                FieldProblem(f"values.{key}", "unknown_field", f"'{transition.action}' does not take '{key}'")
            )
            continue
        try:
            given[key] = target.form.fields[key].convert(raw)
        except ValueProblem as exc:
            problems.append(FieldProblem(f"values.{key}", exc.code, str(exc)))
    for key in transition.require:
        held = given.get(key) if key in given else row.get(key)
        if held in (None, "", []) and not any(p.field == f"values.{key}" for p in problems):
            problems.append(FieldProblem(f"values.{key}", "required", f"'{transition.action}' needs {key}"))
    if problems:
        raise InvalidRecord(problems)
    return given


def _guard_message(transition: Transition) -> str:
    if transition.guard_message is not None:
        return transition.guard_message.text()
    return f"the condition of '{transition.action}' does not hold: {transition.guard}"


def _definition(engine: ProcessEngine, conn: Connection, target: Target, instance: Any) -> Any:
    version = instance["definition_version"] if instance is not None else None
    return engine.versions.app(conn, target.app.app.app, version)
