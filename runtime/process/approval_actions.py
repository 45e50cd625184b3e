"""What people do to an approval besides deciding: delegate, transfer, add an approver,
withdraw it, nudge the approvers, and see the route ahead.

- Delegate (act on the holder's behalf) or transfer a task to another user.
- Add an approver (加签), where the step allows it (`add_approvers`): `before` oneself —
  they decide first, then the task comes back (their rejection rejects it); `after`
  oneself — one approves and they decide in one's place.
- Withdraw (撤回): the submitter ends a running approval nobody has decided yet; its
  `on_withdrawn` effects run (typically a transition back to draft).
- Nudge (催办): the submitter reminds the current approvers, once per `nudge_every`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, select

from runtime.identity.actor import Actor
from runtime.process import tasks
from runtime.process.approvals import approvers, hand_out, step_applies
from runtime.process.effects import run_effects
from runtime.process.history import note
from runtime.process.notices import display_name, tell
from runtime.process.recipients import active
from runtime.process.workdays import shifted
from runtime.records.errors import Conflict, FieldProblem, NotAllowed, NotFound, invalid
from runtime.schema.system import process_instances, users
from runtime.schema.system import tasks as task_table

if TYPE_CHECKING:
    from runtime.process.engine import ProcessEngine, Target


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
    task, instance = tasks.claim(engine, conn, task_id, actor)
    approval = _approval(engine, conn, instance)
    to_user = _other_user(conn, actor, to_user, approval, instance, task)
    status = "delegated" if mode == "delegate" else "transferred"
    tasks.close_task(conn, engine, task, status=status, comment=comment, decided_at=engine.now())
    behalf = (task["on_behalf_of"] or task["assignee_id"]) if mode == "delegate" else None
    current = {**dict(instance), "round": task["round"]}
    target = engine.target(instance["app"], instance["form"], instance["record_id"])
    step = approval.steps[task["step_index"]]
    kind = task["kind"]
    new_id = hand_out(engine, conn, target, current, approval, step, [to_user], kind=kind, behalf=behalf)[0]
    note(conn, target, mode, actor, {"task": task_id, "to": to_user, "comment": comment, "new_task": new_id})
    engine.bump(conn, instance)
    return new_id


def add_approver(
    engine: ProcessEngine,
    conn: Connection,
    task_id: int,
    actor: Actor,
    to_user: Any,
    position: Any,
    comment: str | None,
) -> int:
    """Add an approver before or after oneself (加签), where the step allows it; the new task id."""
    if position not in ("before", "after"):
        raise invalid("position", "invalid", "position is before or after")
    task, instance = tasks.claim(engine, conn, task_id, actor)
    approval = _approval(engine, conn, instance)
    step = approval.steps[task["step_index"]]
    if step.add_approvers not in (position, "both"):
        raise NotAllowed(f"step '{step.name}' does not allow adding an approver {position} oneself")
    to_user = _other_user(conn, actor, to_user, approval, instance, task)
    target = engine.target(instance["app"], instance["form"], instance["record_id"])
    current = {**dict(instance), "round": task["round"]}
    now = engine.now()
    if position == "before":
        conn.execute(task_table.update().where(task_table.c.id == task["id"]).values(status="waiting"))
        tasks.mark_task_notices_read(conn, engine, [task["id"]])
        who = display_name(conn, task["assignee_id"])
        message, kind = "consult", "consult"
    else:
        tasks.close_task(conn, engine, task, status="forwarded", comment=comment, decided_at=now)
        who, message, kind = "", "task", task["kind"]
    behalf = task["assignee_id"]
    people = [to_user]
    new_id = hand_out(
        engine,
        conn,
        target,
        current,
        approval,
        step,
        people,
        message=message,
        kind=kind,
        behalf=behalf,
        who=who,
    )[0]
    changes = {"task": task_id, "to": to_user, "position": position, "comment": comment, "new_task": new_id}
    note(conn, target, "add_approver", actor, changes)
    engine.bump(conn, instance)
    return new_id


def withdraw(
    engine: ProcessEngine, conn: Connection, instance_id: int, actor: Actor, comment: str | None
) -> None:
    """The submitter withdraws (撤回) a running approval nobody has decided yet."""
    instance = _submitted(engine, conn, instance_id, actor)
    approval = _approval(engine, conn, instance)
    if not approval.withdraw:
        raise NotAllowed(f"approval '{approval.approval}' cannot be withdrawn")
    if tasks.decided_any(conn, instance):
        raise Conflict([FieldProblem(None, "decided", "someone has decided already: it cannot be withdrawn")])
    target = engine.target(instance["app"], instance["form"], instance["record_id"])
    tasks.close_open(conn, engine, instance)
    engine.bump(conn, instance, state="withdrawn", step=None, ended_at=engine.now())
    note(conn, target, "withdrawn", actor, {"approval": approval.approval, "comment": comment})
    definition = engine.versions.app(conn, instance["app"], instance["definition_version"])
    acting = engine.engine_actor(actor, "approval")
    run_effects(engine, conn, target, definition, approval.on_withdrawn, acting, submitter=actor.user_id)


def nudge(engine: ProcessEngine, conn: Connection, instance_id: int, actor: Actor) -> int:
    """The submitter reminds (催办) the current approvers; once per `nudge_every` (409 `too_soon`)."""
    instance = _submitted(engine, conn, instance_id, actor)
    approval = _approval(engine, conn, instance)
    now = engine.now()
    last = instance["nudged_at"]
    app = engine.versions.app(conn, instance["app"], instance["definition_version"])
    if last is not None and shifted(_aware(last), approval.nudge_every, app.calendar, app.zone()) > now:
        raise Conflict([FieldProblem(None, "too_soon", f"you can nudge once every {approval.nudge_every}")])
    target = engine.target(instance["app"], instance["form"], instance["record_id"])
    holders = tasks.open_holders(conn, instance)
    step = approval.steps[instance["step"]] if instance["step"] is not None else None
    sent = tell(engine, conn, target, holders, "nudge", approval, step, who=display_name(conn, actor.user_id))
    engine.bump(conn, instance, nudged_at=now)
    note(conn, target, "nudge", actor, {"approval": approval.approval, "to": holders})
    return sent


def route(engine: ProcessEngine, conn: Connection, target: Target, actor: Actor) -> list[dict[str, Any]]:
    """The route ahead of each approval of the record's form: the steps whose conditions hold now,
    with who would decide each (for a running one, its current and later steps)."""
    definition = target.app.app
    row = engine.stored(conn, target)
    found = []
    for approval in [a for a in definition.approvals if a.form == target.form.key]:
        running = engine.running_approval(conn, target, approval.approval)
        instance = dict(running) if running is not None else _draft(actor)
        first = running["step"] if running is not None and running["step"] is not None else 0
        steps = []
        for position in range(first, len(approval.steps)):
            step = approval.steps[position]
            if not step_applies(engine, conn, target, definition, step, row, instance["submitted_by"]):
                continue
            if running is not None and position == first:
                people = tasks.open_holders(conn, running)
            else:
                people = approvers(engine, conn, target, definition, approval, position, instance, row)
            steps.append(_route_step(conn, step, people, current=running is not None and position == first))
        found.append({"approval": approval.approval, "running": running is not None, "steps": steps})
    return found


# -- pieces ------------------------------------------------------------------------------


def _approval(engine: ProcessEngine, conn: Connection, instance: Any) -> Any:
    approval = engine.versions.approval(
        conn, instance["app"], instance["definition"], instance["definition_version"]
    )
    assert approval is not None
    return approval


def _other_user(conn: Connection, actor: Actor, to_user: Any, approval: Any, instance: Any, task: Any) -> int:
    if isinstance(to_user, bool) or not isinstance(to_user, int):
        raise invalid("to", "type", "expected a user id")
    if to_user == actor.user_id or not active(conn, [to_user]):
        raise invalid("to", "invalid", "choose another active user")
    if approval.no_self_approval and to_user == instance["submitter"]:
        raise invalid("to", "self_approval", "the submitter cannot approve their own request")
    holders = conn.execute(
        select(task_table.c.assignee_id).where(
            task_table.c.instance_id == instance["id"],
            task_table.c.round == task["round"],
            task_table.c.status.in_(tasks.OPEN),
        )
    ).scalars()
    if to_user in set(holders):
        raise invalid("to", "duplicate", "that user already holds a task of this step")
    return to_user


def _submitted(engine: ProcessEngine, conn: Connection, instance_id: int, actor: Actor) -> Any:
    """A running approval the actor submitted, under the record's lock (404 otherwise)."""
    found = (
        conn.execute(select(process_instances).where(process_instances.c.id == instance_id))
        .mappings()
        .first()
    )
    if (
        found is None
        or found["kind"] != "approval"
        or (found["submitted_by"] != actor.user_id and not actor.admin)
    ):
        raise NotFound("approval", instance_id)
    engine.lock(conn, engine.target(found["app"], found["form"], found["record_id"]))
    instance = tasks.instance_row(conn, instance_id, lock=True)
    if instance["state"] != "running":
        raise Conflict([FieldProblem(None, "state", f"the approval is already {instance['state']}")])
    return instance


def _draft(actor: Actor) -> dict[str, Any]:
    """An instance not started yet, as the route sees it: `actor` would submit it."""
    return {"id": 0, "submitted_by": actor.user_id, "definition_version": None, "round": 0}


def _route_step(conn: Connection, step: Any, people: list[int], *, current: bool) -> dict[str, Any]:
    names = dict(conn.execute(select(users.c.id, users.c.display_name).where(users.c.id.in_(people))).all())
    return {
        "step": step.name,
        "label": step.label.model_dump(exclude_none=True) if step.label else None,
        "mode": step.mode,
        "current": current,
        "approvers": [{"id": p, "display": names.get(p)} for p in people],
    }


def _aware(value: Any) -> Any:
    import datetime as dt

    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
