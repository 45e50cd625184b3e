"""Approvals: ordered, conditional steps with any-one, all, percentage or count modes.

Starting an approval opens an instance on the current definition version and moves
to the first step whose `when` holds. A step resolves its approvers (role, users,
user field, manager N levels up, expression), drops the submitter when self-approval
is off and earlier approvers when approvers must differ, and opens one task each (and
schedules the step's deadlines). Each decision is counted against the step's mode; a
passed step moves on, the last one approves. A rejection goes back to the step's
`reject_to` (a new round of tasks) or ends the approval rejected. Outcomes run
`on_approved` / `on_rejected` effects — typically a transition — and tell the
submitter and the people copied. Every start, decision, comment and outcome is in the
history. Delegation, added approvers, withdrawal and nudges are in `approval_actions`.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, func, insert, select, update

from runtime.identity.actor import Actor
from runtime.model import App
from runtime.model.process import Approval, ApprovalStep
from runtime.process import deadlines, tasks
from runtime.process.effects import run_effects
from runtime.process.expressions import holds, value_of
from runtime.process.history import note
from runtime.process.notices import OUTCOMES, tell
from runtime.process.recipients import active, resolve
from runtime.records.errors import Conflict, FieldProblem, NotFound, invalid
from runtime.schema.system import process_instances, user_roles
from runtime.schema.system import tasks as task_table

if TYPE_CHECKING:
    from runtime.process.engine import ProcessEngine, Target

FALLBACK_ROLE = "admin"
DECISIONS = ("approved", "rejected")


def start(engine: ProcessEngine, conn: Connection, target: Target, key: str, actor: Actor) -> int:
    """Start approval `key` on the record as submitted by `actor`; answers the instance id.

    An earlier approved instance of the same approval stops guarding the record.
    """
    if engine.running_approval(conn, target, key) is not None:
        raise Conflict([FieldProblem(None, "in_approval", f"approval '{key}' is already in progress")])
    app_key, form, record_id = target.where
    version = engine.versions.current(conn, app_key)
    definition = engine.versions.app(conn, app_key, version)
    approval = definition.approval(key)
    if approval is None:
        raise NotFound("approval", key)
    now = engine.now()
    table = process_instances
    conn.execute(
        update(table)
        .where(
            table.c.app == app_key,
            table.c.form == form,
            table.c.record_id == record_id,
            table.c.kind == "approval",
            table.c.definition == key,
            table.c.state == "approved",
            table.c.released_at.is_(None),
        )
        .values(released_at=now)
    )
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
    instance_id = tasks.new_id(conn.execute(insert(table).values(**values)))
    note(conn, target, "approval_started", actor, {"approval": key})
    advance(engine, conn, target, definition, approval, tasks.instance_row(conn, instance_id), 0, actor)
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
    `start`); without it, the step's `reject_to` decides. The decision of an approver
    someone added before themselves hands the task back to them (approved) or rejects
    theirs with it.
    """
    task, instance = tasks.claim(engine, conn, task_id, actor)
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
    tasks.close_task(conn, engine, task, status=decision, comment=comment, decided_at=engine.now())
    step = approval.steps[task["step_index"]]
    changes: dict[str, Any] = {"approval": approval.approval, "step": step.name, "task": task_id}
    if comment:
        changes["comment"] = comment[:2000]
    if task["on_behalf_of"] is not None:
        changes["on_behalf_of"] = task["on_behalf_of"]
    note(conn, target, "approve" if decision == "approved" else "reject", actor, changes)
    if task["kind"] == "consult" and not _consulted(
        engine, conn, target, approval, step, task, decision, comment
    ):
        engine.bump(conn, instance)
        return
    outcome = step_outcome(conn, instance, step)
    if outcome is None:
        engine.bump(conn, instance)
        return
    conclude(
        engine,
        conn,
        target,
        definition,
        approval,
        instance,
        task["step_index"],
        outcome,
        actor,
        comment,
        to_step,
    )


def conclude(
    engine: ProcessEngine,
    conn: Connection,
    target: Target,
    definition: App,
    approval: Approval,
    instance: Any,
    index: int,
    outcome: str,
    actor: Actor,
    comment: str | None,
    to_step: str | None = None,
    *,
    returned: bool = False,
) -> None:
    """A step is decided: close its other tasks, copy its `cc`, and move on or go back."""
    tasks.close_open(conn, engine, instance)
    step = approval.steps[index]
    acting = engine.engine_actor(actor, "approval")
    if step.cc:
        _copy(
            engine,
            conn,
            target,
            approval,
            step,
            instance,
            step.cc,
            OUTCOMES["passed" if outcome == "approved" else "rejected"],
        )
    if outcome == "approved":
        advance(engine, conn, target, definition, approval, instance, index + 1, acting)
    else:
        back_to = "start" if returned else (to_step or step.reject_to)
        _rejected(
            engine, conn, target, definition, approval, instance, step, acting, comment, back_to, returned
        )


def cancel_running(
    engine: ProcessEngine, conn: Connection, target: Target, actor: Actor, reason: str
) -> None:
    """End the record's running approvals (the record was withdrawn by a transition)."""
    while (running := engine.running_approval(conn, target)) is not None:
        tasks.close_open(conn, engine, running)
        engine.bump(conn, running, state="cancelled", ended_at=engine.now())
        note(conn, target, "approval_cancelled", actor, {"approval": running["definition"], "reason": reason})


def supersede(engine: ProcessEngine, conn: Connection, target: Target, instance: Any) -> None:
    """An approval a material change touched: a running one ends cancelled, an approved one is released."""
    current = tasks.instance_row(conn, instance["id"])
    if current["state"] == "running":
        tasks.close_open(conn, engine, current)
        engine.bump(conn, current, state="cancelled", ended_at=engine.now())
    else:
        engine.bump(conn, current, released_at=engine.now())


# -- moving through steps ----------------------------------------------------------------


def advance(
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
    instance = tasks.instance_row(conn, instance["id"])
    for position in range(index, len(approval.steps)):
        step = approval.steps[position]
        if not step_applies(engine, conn, target, definition, step, row, instance["submitted_by"]):
            continue
        people = approvers(engine, conn, target, definition, approval, position, instance, row)
        round_ = instance["round"] + 1
        engine.bump(conn, instance, step=position, round=round_, entered_at=engine.now())
        current = {**dict(instance), "round": round_}
        hand_out(engine, conn, target, current, approval, step, people)
        deadlines.schedule(engine, conn, target, current, step, position)
        return
    engine.bump(conn, instance, state="approved", step=None, ended_at=engine.now())
    note(conn, target, "approved", actor, {"approval": approval.approval})
    _tell_outcome(engine, conn, target, approval, None, instance, "approved", None)
    run_effects(
        engine, conn, target, definition, approval.on_approved, actor, submitter=instance["submitted_by"]
    )


def hand_out(
    engine: ProcessEngine,
    conn: Connection,
    target: Target,
    instance: Any,
    approval: Approval,
    step: ApprovalStep | None,
    people: list[int],
    *,
    message: str = "task",
    kind: str = "approve",
    behalf: int | None = None,
    **values: Any,
) -> list[int]:
    """Open a task (or copy) of the instance's round for each person and tell them; the task ids."""
    name = step.name if step is not None else ""
    index = approval.step_index(name) if step is not None else None
    ids = tasks.open_tasks(conn, engine, instance, name, -1 if index is None else index, people, behalf, kind)
    tell(
        engine,
        conn,
        target,
        people,
        message,
        approval,
        step,
        tasks_of=dict(zip(people, ids, strict=True)),
        **values,
    )
    return ids


def step_applies(
    engine: ProcessEngine,
    conn: Connection,
    target: Target,
    definition: App,
    step: ApprovalStep,
    row: dict[str, Any],
    submitter: int | None,
) -> bool:
    """True when the step's `when` holds for the record."""
    condition = engine.expr(definition, target.form.key, step.when)
    return holds(condition, engine.context(conn, target, row, [condition]), submitter)


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
    returned: bool,
) -> None:
    back = approval.step_index(back_to) if back_to != "start" else None
    if back is not None:
        note(conn, target, "sent_back", actor, {"approval": approval.approval, "to_step": back_to})
        to = approval.steps[back]
        _tell_outcome(engine, conn, target, approval, to, instance, "sent_back", comment)
        advance(engine, conn, target, definition, approval, instance, back, actor)
        return
    engine.bump(
        conn, tasks.instance_row(conn, instance["id"]), state="rejected", step=None, ended_at=engine.now()
    )
    note(
        conn,
        target,
        "returned" if returned else "rejected",
        actor,
        {"approval": approval.approval, "step": step.name, "comment": comment},
    )
    _tell_outcome(
        engine, conn, target, approval, step, instance, "returned" if returned else "rejected", comment
    )
    run_effects(
        engine, conn, target, definition, approval.on_rejected, actor, submitter=instance["submitted_by"]
    )


def _tell_outcome(
    engine: ProcessEngine,
    conn: Connection,
    target: Target,
    approval: Approval,
    step: ApprovalStep | None,
    instance: Any,
    kind: str,
    comment: str | None,
) -> None:
    """The submitter hears the outcome; at the end, the approval's `cc` get a copy."""
    submitter = instance["submitted_by"]
    if submitter is not None:
        tell(engine, conn, target, active(conn, [submitter]), kind, approval, step, comment=comment or "")
    if kind in ("approved", "rejected", "returned") and approval.cc:
        outcome = OUTCOMES["approved" if kind == "approved" else "rejected"]
        _copy(engine, conn, target, approval, None, instance, approval.cc, outcome)


def _copy(
    engine: ProcessEngine,
    conn: Connection,
    target: Target,
    approval: Approval,
    step: ApprovalStep | None,
    instance: Any,
    recipients: Any,
    outcome: Any,
) -> None:
    """Copies (抄送) to the recipients: a read-only `cc` task each and a notice."""
    row = engine.stored(conn, target)
    current = tasks.instance_row(conn, instance["id"])
    holders = tasks.open_holders(conn, current)
    evaluate = evaluator(engine, conn, target, row, current)
    people = resolve(conn, recipients, row, evaluate, current["submitted_by"], holders)
    if people:
        hand_out(
            engine, conn, target, current, approval, step, people, message="cc", kind="cc", outcome=outcome
        )


def _consulted(
    engine: ProcessEngine,
    conn: Connection,
    target: Target,
    approval: Approval,
    step: ApprovalStep,
    task: Any,
    decision: str,
    comment: str | None,
) -> bool:
    """An approver added before someone decided: hand the task back (False), or reject theirs too (True)."""
    waiting = (
        conn.execute(
            select(task_table).where(
                task_table.c.instance_id == task["instance_id"],
                task_table.c.round == task["round"],
                task_table.c.assignee_id == task["on_behalf_of"],
                task_table.c.status == "waiting",
            )
        )
        .mappings()
        .first()
    )
    if waiting is None:
        return True
    if decision == "approved":
        conn.execute(update(task_table).where(task_table.c.id == waiting["id"]).values(status="open"))
        holder = waiting["assignee_id"]
        tell(engine, conn, target, [holder], "task", approval, step, tasks_of={holder: waiting["id"]})
        return False
    tasks.close_task(conn, engine, waiting, status="rejected", comment=comment, decided_at=engine.now())
    return True


def approvers(
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
    people = resolve_step(engine, conn, target, definition, approval, position, instance, row)
    excluded: set[int] = set()
    if approval.no_self_approval and instance["submitted_by"] is not None:
        excluded.add(instance["submitted_by"])
    if approval.distinct_approvers:  # in whose name each earlier approval was made
        decided_for = func.coalesce(task_table.c.on_behalf_of, task_table.c.assignee_id)
        earlier = select(decided_for).where(
            task_table.c.instance_id == instance["id"],
            task_table.c.status == "approved",
            task_table.c.step_index < position,
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


def resolve_step(
    engine: ProcessEngine,
    conn: Connection,
    target: Target,
    definition: App,
    approval: Approval,
    position: int,
    instance: Any,
    row: dict[str, Any],
) -> list[int]:
    """Who a step's `approvers` name for the record, before any rule leaves people out."""
    step = approval.steps[position]
    evaluate = evaluator(engine, conn, target, row, instance)
    return resolve(conn, step.approvers, row, evaluate, instance["submitted_by"])


def evaluator(
    engine: ProcessEngine, conn: Connection, target: Target, row: dict[str, Any], instance: Any
) -> Any:
    definition = engine.versions.app(conn, target.app.app.app, instance["definition_version"])

    def evaluate(text: str) -> Any:
        expr = engine.expr(definition, target.form.key, text)
        assert expr is not None
        return value_of(expr, engine.context(conn, target, row, [expr]), instance["submitted_by"])

    return evaluate


def step_outcome(conn: Connection, instance: Any, step: ApprovalStep) -> str | None:
    """'approved', 'rejected' or None (still open) for the step's current round.

    Only the decisions the step counts (`approve` tasks) count; a task waiting for an
    approver its holder added first is still open.
    """
    t = task_table
    rows = conn.execute(
        select(t.c.status, func.count())
        .where(t.c.instance_id == instance["id"], t.c.round == instance["round"], t.c.kind == "approve")
        .group_by(t.c.status)
    ).all()
    counts = {status: int(n) for status, n in rows}
    approved, rejected = counts.get("approved", 0), counts.get("rejected", 0)
    total = approved + rejected + sum(counts.get(s, 0) for s in tasks.OPEN)
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
