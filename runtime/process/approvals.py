"""Approvals: ordered, conditional steps with any-one, all, percentage or count modes.

Starting an approval opens an instance on the current definition version and moves
to the first step whose `when` holds. A step resolves its approvers (role, users,
user field, manager N levels up, expression), drops the submitter when self-approval
is off and earlier approvers when approvers must differ, and opens one task each.
Each decision is counted against the step's mode; a passed step moves on, the last
one approves. A rejection goes back to the step's `reject_to` (a new round of tasks)
or ends the approval rejected. Outcomes run `on_approved` / `on_rejected` effects —
typically a transition. Every start, decision, comment and outcome is in the history.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, func, insert, select, update

from runtime.identity.actor import Actor
from runtime.model import App
from runtime.model.process import Approval, ApprovalStep
from runtime.process.effects import run_effects
from runtime.process.expressions import holds, value_of
from runtime.process.history import note
from runtime.process.notifications import notify
from runtime.process.recipients import active, resolve
from runtime.records.errors import Conflict, FieldProblem, NotAllowed, NotFound, invalid
from runtime.schema.system import process_instances, tasks, user_roles, users

if TYPE_CHECKING:
    from runtime.process.engine import ProcessEngine, Target

FALLBACK_ROLE = "admin"
DECISIONS = ("approved", "rejected")
NEW_TASK = {
    "zh": "待您审批：{{ form }} #{{ record.id }}",
    "en": "Waiting for your approval: {{ form }} #{{ record.id }}",
}


def start(engine: ProcessEngine, conn: Connection, target: Target, key: str, actor: Actor) -> int:
    """Start approval `key` on the record as submitted by `actor`; answers the instance id."""
    if engine.running_approval(conn, target, key) is not None:
        raise Conflict([FieldProblem(None, "in_approval", f"approval '{key}' is already in progress")])
    app_key, form, record_id = target.where
    version = engine.versions.current(conn, app_key)
    definition = engine.versions.app(conn, app_key, version)
    approval = definition.approval(key)
    if approval is None:
        raise NotFound("approval", key)
    now = engine.now()
    values = dict(
        app=app_key,
        kind="approval",
        definition=key,
        definition_version=version,
        form=form,
        record_id=record_id,
        state="running",
        step=None,
        round=0,
        submitted_by=actor.user_id,
        entered_at=now,
        started_at=now,
        version=1,
    )
    instance_id = _new_id(conn.execute(insert(process_instances).values(**values)))
    note(conn, target, "approval_started", actor, {"approval": key})
    _advance(engine, conn, target, definition, approval, _instance(conn, instance_id), 0, actor)
    return instance_id


def start_when_due(
    engine: ProcessEngine, conn: Connection, target: Target, before: dict[str, Any] | None, actor: Actor
) -> None:
    """Start approvals whose `starts_when` has just become true for the record."""
    definition = target.app.app
    watching = [a for a in definition.approvals if a.form == target.form.key and a.starts_when is not None]
    row = engine.stored(conn, target) if watching else {}
    for approval in watching:
        condition = engine.expr(definition, target.form.key, approval.starts_when)
        now_true = holds(condition, engine.context(conn, target, row, [condition]), actor.user_id)
        was_true = before is not None and holds(
            condition, engine.context(conn, target, before, [condition]), actor.user_id
        )
        if now_true and not was_true and engine.running_approval(conn, target, approval.approval) is None:
            start(engine, conn, target, approval.approval, actor)


def decide(
    engine: ProcessEngine,
    conn: Connection,
    task_id: int,
    actor: Actor,
    decision: str,
    comment: str | None,
    to_step: str | None = None,
) -> None:
    """Approve or reject one of the actor's open tasks, and move the approval on.

    A rejection may name where the request goes back to (`to_step`: an earlier step, or
    `start`); without it, the step's `reject_to` decides.
    """
    task = _open_task(conn, task_id, actor)
    instance = _instance(conn, task["instance_id"], lock=True)
    target = engine.target(instance["app"], instance["form"], instance["record_id"])
    definition = engine.versions.app(conn, instance["app"], instance["definition_version"])
    approval = definition.approval(instance["definition"])
    assert approval is not None
    if decision == "rejected" and not (comment or "").strip():
        raise invalid("comment", "required", "a rejection needs a comment")
    if to_step is not None:
        earlier = [s.name for s in approval.steps[: task["step_index"]]]
        if decision != "rejected" or to_step not in ("start", *earlier):
            choices = ", ".join(["start", *earlier])
            raise invalid("to_step", "invalid", f"a rejection goes back to one of: {choices}")
    now = engine.now()
    conn.execute(
        update(tasks).where(tasks.c.id == task_id).values(status=decision, comment=comment, decided_at=now)
    )
    step = approval.steps[task["step_index"]]
    changes = {"approval": approval.approval, "step": step.name, "task": task_id}
    if comment:
        changes["comment"] = comment[:2000]
    if task["on_behalf_of"] is not None:
        changes["on_behalf_of"] = task["on_behalf_of"]
    note(conn, target, "approve" if decision == "approved" else "reject", actor, changes)
    outcome = _step_outcome(conn, instance, step)
    if outcome is None:
        engine.bump(conn, instance)
        return
    _close_open_tasks(conn, instance)
    acting = engine.engine_actor(actor, "approval")
    if outcome == "approved":
        _advance(engine, conn, target, definition, approval, instance, task["step_index"] + 1, acting)
    else:
        back_to = to_step or step.reject_to
        _rejected(engine, conn, target, definition, approval, instance, step, acting, comment, back_to)


def reassign(
    engine: ProcessEngine,
    conn: Connection,
    task_id: int,
    actor: Actor,
    to_user: Any,
    comment: str | None,
    mode: str,
) -> int:
    """Delegate (act on the assignee's behalf) or transfer a task to another user; the new task id."""
    task = _open_task(conn, task_id, actor)
    if isinstance(to_user, bool) or not isinstance(to_user, int):
        raise invalid("to", "type", "expected a user id")
    if to_user == actor.user_id or not active(conn, [to_user]):
        raise invalid("to", "invalid", "choose another active user")
    instance = _instance(conn, task["instance_id"], lock=True)
    definition = engine.versions.app(conn, instance["app"], instance["definition_version"])
    approval = definition.approval(instance["definition"])
    assert approval is not None
    if approval.no_self_approval and to_user == instance["submitter"]:
        raise invalid("to", "self_approval", "the submitter cannot approve their own request")
    holders = conn.execute(
        select(tasks.c.assignee_id).where(
            tasks.c.instance_id == instance["id"], tasks.c.round == task["round"], tasks.c.status == "open"
        )
    ).scalars()
    if to_user in set(holders):
        raise invalid("to", "duplicate", "that user already holds a task of this step")
    status = "delegated" if mode == "delegate" else "transferred"
    conn.execute(
        update(tasks)
        .where(tasks.c.id == task_id)
        .values(status=status, comment=comment, decided_at=engine.now())
    )
    behalf = (task["on_behalf_of"] or task["assignee_id"]) if mode == "delegate" else None
    new_id = _open(conn, engine, instance, task["step"], task["step_index"], [to_user], behalf)[0]
    target = engine.target(instance["app"], instance["form"], instance["record_id"])
    note(conn, target, mode, actor, {"task": task_id, "to": to_user, "comment": comment, "new_task": new_id})
    _tell_assignees(engine, conn, target, [to_user])
    engine.bump(conn, instance)
    return new_id


def cancel_running(
    engine: ProcessEngine, conn: Connection, target: Target, actor: Actor, reason: str
) -> None:
    """End the record's running approvals (the record was withdrawn by a transition)."""
    while (running := engine.running_approval(conn, target)) is not None:
        _close_open_tasks(conn, running)
        engine.bump(conn, running, state="cancelled", ended_at=engine.now())
        note(conn, target, "approval_cancelled", actor, {"approval": running["definition"], "reason": reason})


# -- moving through steps ----------------------------------------------------------------


def _advance(
    engine: ProcessEngine,
    conn: Connection,
    target: Target,
    definition: App,
    approval: Approval,
    instance: Any,
    index: int,
    actor: Actor,
) -> None:
    """Open the first applicable step from `index`, or finish approved."""
    row = engine.stored(conn, target)
    for position in range(index, len(approval.steps)):
        step = approval.steps[position]
        condition = engine.expr(definition, target.form.key, step.when)
        if not holds(condition, engine.context(conn, target, row, [condition]), instance["submitted_by"]):
            continue
        people = _approvers(engine, conn, target, definition, approval, position, instance, row)
        round_ = instance["round"] + 1
        engine.bump(conn, instance, step=position, round=round_, entered_at=engine.now())
        _open(conn, engine, {**dict(instance), "round": round_}, step.name, position, people, None)
        _tell_assignees(engine, conn, target, people)
        return
    engine.bump(conn, instance, state="approved", step=None, ended_at=engine.now())
    note(conn, target, "approved", actor, {"approval": approval.approval})
    run_effects(
        engine, conn, target, definition, approval.on_approved, actor, submitter=instance["submitted_by"]
    )


def _rejected(
    engine: ProcessEngine,
    conn: Connection,
    target: Target,
    definition: App,
    approval: Approval,
    instance: Any,
    step: ApprovalStep,
    actor: Actor,
    comment: str | None,
    back_to: str,
) -> None:
    back = approval.step_index(back_to) if back_to != "start" else None
    if back is not None:
        note(conn, target, "sent_back", actor, {"approval": approval.approval, "to_step": back_to})
        _advance(engine, conn, target, definition, approval, _instance(conn, instance["id"]), back, actor)
        return
    engine.bump(conn, _instance(conn, instance["id"]), state="rejected", step=None, ended_at=engine.now())
    note(
        conn,
        target,
        "rejected",
        actor,
        {"approval": approval.approval, "step": step.name, "comment": comment},
    )
    run_effects(
        engine, conn, target, definition, approval.on_rejected, actor, submitter=instance["submitted_by"]
    )


def _approvers(
    engine: ProcessEngine,
    conn: Connection,
    target: Target,
    definition: App,
    approval: Approval,
    position: int,
    instance: Any,
    row: dict[str, Any],
) -> list[int]:
    """The step's approvers after the self-approval and distinct-approver rules; admins if none remain."""
    step = approval.steps[position]

    def evaluate(text: str) -> Any:
        expr = engine.expr(definition, target.form.key, text)
        assert expr is not None
        return value_of(expr, engine.context(conn, target, row, [expr]), instance["submitted_by"])

    people = resolve(conn, step.approvers, row, evaluate, instance["submitted_by"])
    excluded: set[int] = set()
    if approval.no_self_approval and instance["submitted_by"] is not None:
        excluded.add(instance["submitted_by"])
    if approval.distinct_approvers:
        earlier = select(tasks.c.assignee_id).where(
            tasks.c.instance_id == instance["id"], tasks.c.status == "approved", tasks.c.step_index < position
        )
        excluded.update(conn.execute(earlier).scalars())
    people = [p for p in people if p not in excluded]
    if people:
        return people
    admins = (
        select(user_roles.c.user_id).where(user_roles.c.role == FALLBACK_ROLE).order_by(user_roles.c.user_id)
    )
    fallback = [p for p in active(conn, list(conn.execute(admins).scalars())) if p not in excluded]
    if not fallback:
        message = f"step '{step.name}' of approval '{approval.approval}' has no approver"
        raise Conflict([FieldProblem(None, "no_approver", message)])
    return fallback


def _step_outcome(conn: Connection, instance: Any, step: ApprovalStep) -> str | None:
    """'approved', 'rejected' or None (still open) for the step's current round."""
    rows = conn.execute(
        select(tasks.c.status, func.count())
        .where(tasks.c.instance_id == instance["id"], tasks.c.round == instance["round"])
        .group_by(tasks.c.status)
    ).all()
    counts = {status: int(n) for status, n in rows}
    approved, rejected = counts.get("approved", 0), counts.get("rejected", 0)
    total = approved + rejected + counts.get("open", 0)
    if step.mode == "any":
        return "approved" if approved else ("rejected" if rejected else None)
    needed = {
        "all": total,
        "percent": math.ceil(total * (step.percent or 100) / 100),
        "count": min(step.count or 1, total),
    }[step.mode]
    if approved >= needed:
        return "approved"
    if rejected > total - needed:
        return "rejected"
    return None


# -- rows ------------------------------------------------------------------------------


def _open(
    conn: Connection,
    engine: ProcessEngine,
    instance: Any,
    step: str,
    index: int,
    people: list[int],
    behalf: int | None,
) -> list[int]:
    now = engine.now()
    ids = []
    for person in people:
        values = dict(
            instance_id=instance["id"],
            app=instance["app"],
            form=instance["form"],
            record_id=instance["record_id"],
            step=step,
            step_index=index,
            round=instance["round"],
            assignee_id=person,
            on_behalf_of=behalf,
            status="open",
            created_at=now,
        )
        ids.append(_new_id(conn.execute(insert(tasks).values(**values))))
    return ids


def _tell_assignees(engine: ProcessEngine, conn: Connection, target: Target, people: list[int]) -> None:
    from runtime.model.common import Labels

    record = engine.stored(conn, target)
    context = {"form": target.form.form.label, "app": target.app.app.app}
    notify(
        conn,
        people,
        Labels(**NEW_TASK),
        record,
        engine.now(),
        where=target.where,
        email=engine.mail,
        context=context,
    )


def _close_open_tasks(conn: Connection, instance: Any) -> None:
    conn.execute(
        update(tasks)
        .where(tasks.c.instance_id == instance["id"], tasks.c.status == "open")
        .values(status="cancelled")
    )


def _instance(conn: Connection, instance_id: int, *, lock: bool = False) -> Any:
    stmt = select(process_instances, process_instances.c.submitted_by.label("submitter")).where(
        process_instances.c.id == instance_id
    )
    if lock and conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update(of=process_instances)
    found = conn.execute(stmt).mappings().first()
    if found is None:
        raise NotFound("approval", instance_id)
    return found


def _open_task(conn: Connection, task_id: int, actor: Actor) -> Any:
    task = conn.execute(select(tasks).where(tasks.c.id == task_id)).mappings().first()
    if task is None or (task["assignee_id"] != actor.user_id and not actor.admin):
        raise NotFound("task", task_id)
    if task["assignee_id"] != actor.user_id:
        raise NotAllowed("only the task's assignee can decide it")
    if task["status"] != "open":
        raise Conflict([FieldProblem(None, "decided", f"the task is already {task['status']}")])
    return task


def task_rows(
    conn: Connection, user_id: int | None, status: str, limit: int, offset: int, task_id: int | None = None
) -> list[dict[str, Any]]:
    """A user's tasks (or one task) with their approval and the submitter's name, newest first."""
    submitter = users.alias("submitter")
    stmt = (
        select(
            tasks,
            process_instances.c.definition.label("approval"),
            process_instances.c.submitted_by,
            submitter.c.display_name.label("submitter_name"),
        )
        .select_from(
            tasks.join(process_instances, process_instances.c.id == tasks.c.instance_id).outerjoin(
                submitter, submitter.c.id == process_instances.c.submitted_by
            )
        )
        .order_by(tasks.c.id.desc())
        .limit(limit)
        .offset(offset)
    )
    if user_id is not None:
        stmt = stmt.where(tasks.c.assignee_id == user_id)
    if task_id is not None:
        stmt = stmt.where(tasks.c.id == task_id)
    if status != "all":
        stmt = stmt.where(tasks.c.status == status)
    return [dict(row) for row in conn.execute(stmt).mappings()]


def approval_rows(conn: Connection, target: Target) -> list[dict[str, Any]]:
    """The record's approval instances with their tasks, oldest first (two queries)."""
    app, form, record_id = target.where
    table = process_instances
    submitter = users.alias("submitter")
    found = (
        conn.execute(
            select(table, submitter.c.display_name.label("submitter_name"))
            .select_from(table.outerjoin(submitter, submitter.c.id == table.c.submitted_by))
            .where(
                table.c.app == app,
                table.c.form == form,
                table.c.record_id == record_id,
                table.c.kind == "approval",
            )
            .order_by(table.c.id)
        )
        .mappings()
        .all()
    )
    ids = [row["id"] for row in found]
    assignee = users.alias("assignee")
    by_instance: dict[int, list[dict[str, Any]]] = {i: [] for i in ids}
    if ids:
        rows = conn.execute(
            select(tasks, assignee.c.display_name.label("assignee_name"))
            .select_from(tasks.join(assignee, assignee.c.id == tasks.c.assignee_id))
            .where(tasks.c.instance_id.in_(ids))
            .order_by(tasks.c.id)
        ).mappings()
        for row in rows:
            by_instance[row["instance_id"]].append(dict(row))
    return [{**dict(row), "tasks": by_instance[row["id"]]} for row in found]


def _new_id(result: Any) -> int:
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])
