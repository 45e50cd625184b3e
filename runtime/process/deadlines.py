"""Deadlines of approval steps (节点限时): remind, escalate, decide automatically.

When a step opens, each of its deadlines (`remind_after`, `escalate_after`, `auto_after`)
becomes a job due that long after the step opened — in working days (`2wd`) on the app's
calendar, or in clock time. Jobs are keyed by the instance, the round and the kind, so
any number of workers fire each exactly once; one that comes due after the step was
decided (another round, or the approval ended) does nothing.

- remind: the step's `remind_to` (default: the holders of its open tasks) are told;
- escalate: for each open task, the holder's manager gets a task of their own
  (`escalate: add`) or the task moves to them (`escalate: reassign`);
- auto: the step is decided as `auto_action` says — approved, rejected (to its
  `reject_to`), or returned to the submitter (rejected to the start).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, select

from runtime.identity.actor import SYSTEM
from runtime.model.process import ApprovalStep, Recipient
from runtime.process import approvals, jobs, tasks
from runtime.process.history import note
from runtime.process.notices import display_name, tell
from runtime.process.recipients import active, manager_of, resolve
from runtime.process.workdays import shifted
from runtime.schema.system import tasks as task_table

if TYPE_CHECKING:
    from runtime.process.engine import ProcessEngine, Target

KIND = "deadline"
AUTO_COMMENT = {
    "approve": "approved automatically: the step's time limit passed",
    "reject": "rejected automatically: the step's time limit passed",
    "return": "returned automatically: the step's time limit passed",
}


def schedule(
    engine: ProcessEngine, conn: Connection, target: Target, instance: Any, step: ApprovalStep, index: int
) -> None:
    """Queue the deadlines of a step that has just opened (one job each)."""
    app = target.app.app
    opened = engine.now()
    for what, after in step.deadlines():
        key = f"{KIND}:{instance['id']}:{instance['round']}:{what}"
        due = shifted(opened, after, app.calendar, app.zone())
        payload = {"instance": instance["id"], "round": instance["round"], "step": index, "what": what}
        app_key, form, record_id = target.where
        jobs.enqueue(
            conn,
            KIND,
            key,
            due,
            payload,
            opened,
            app=app_key,
            form=form,
            record_id=record_id,
            instance_id=instance["id"],
        )


def fire(engine: ProcessEngine, conn: Connection, job: jobs.Job) -> None:
    """Act on a due deadline, if its step is still waiting for decisions."""
    payload = job.payload
    instance = tasks.instance_row(conn, int(payload["instance"]))
    target = engine.target(instance["app"], instance["form"], instance["record_id"])
    engine.lock(conn, target)
    instance = tasks.instance_row(conn, instance["id"], lock=True)
    if instance["state"] != "running" or instance["round"] != payload["round"]:
        return  # decided meanwhile: the deadline has passed by
    definition = engine.versions.app(conn, instance["app"], instance["definition_version"])
    approval = definition.approval(instance["definition"])
    assert approval is not None
    index = int(payload["step"])
    step = approval.steps[index]
    what = payload["what"]
    note(conn, target, f"deadline_{what}", SYSTEM, {"approval": approval.approval, "step": step.name})
    if what == "remind":
        _remind(engine, conn, target, approval, step, instance, job.key)
    elif what == "escalate":
        _escalate(engine, conn, target, approval, step, instance)
    else:
        action = str(step.auto_action)
        outcome = "approved" if action == "approve" else "rejected"
        actor = engine.engine_actor(SYSTEM, "approval")
        approvals.conclude(
            engine,
            conn,
            target,
            definition,
            approval,
            instance,
            index,
            outcome,
            actor,
            AUTO_COMMENT[action],
            returned=action == "return",
        )


def _remind(
    engine: ProcessEngine,
    conn: Connection,
    target: Target,
    approval: Any,
    step: ApprovalStep,
    instance: Any,
    key: str,
) -> None:
    holders = tasks.open_holders(conn, instance)
    recipients = step.remind_to or [Recipient(assignees=True)]
    row = engine.stored(conn, target)
    evaluate = approvals.evaluator(engine, conn, target, row, instance)
    people = resolve(conn, recipients, row, evaluate, instance["submitted_by"], holders)
    tell(engine, conn, target, people, "remind", approval, step, key=key)


def _escalate(
    engine: ProcessEngine, conn: Connection, target: Target, approval: Any, step: ApprovalStep, instance: Any
) -> None:
    open_rows = (
        conn.execute(
            select(task_table).where(
                task_table.c.instance_id == instance["id"],
                task_table.c.round == instance["round"],
                task_table.c.status.in_(tasks.OPEN),
                task_table.c.kind == "approve",
            )
        )
        .mappings()
        .all()
    )
    holding = set(tasks.open_holders(conn, instance))
    excluded = _not_to_escalate_to(approval, instance)
    for task in open_rows:
        manager = manager_of(conn, task["assignee_id"])
        if manager is None or manager in holding | excluded or not active(conn, [manager]):
            continue
        if step.escalate == "reassign":
            tasks.close_task(conn, engine, task, status="escalated", decided_at=engine.now())
        holding.add(manager)
        who = display_name(conn, task["assignee_id"])
        behalf = task["on_behalf_of"] or task["assignee_id"]  # decided in the late approver's name
        approvals.hand_out(
            engine,
            conn,
            target,
            instance,
            approval,
            step,
            [manager],
            message="escalated",
            behalf=behalf,
            who=who,
        )
    engine.bump(conn, instance)


def _not_to_escalate_to(approval: Any, instance: Any) -> set[int]:
    """Who an escalation may not go to: the submitter, when approvers may not approve their own."""
    submitter = instance["submitted_by"]
    return {submitter} if approval.no_self_approval and submitter is not None else set()
