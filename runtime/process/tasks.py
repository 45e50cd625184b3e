"""Approval instances and tasks as rows: open, claim, close, and the lists people read.

A task has a `kind`: `approve` (a decision the step counts), `consult` (an approver added
before the assignee, whose decision comes first; the assignee's task waits meanwhile)
or `cc` (a read-only copy). Closing is conditional on the task still being open, so of
parallel requests on one task exactly one wins; the others answer 409 `task_closed`.
Closing a task marks its notifications read.
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Select, func, insert, select, update

from runtime.identity.actor import Actor
from runtime.records.errors import Conflict, FieldProblem, NotAllowed, NotFound
from runtime.schema.system import notifications, process_instances, tasks, users

if TYPE_CHECKING:
    from runtime.process.engine import ProcessEngine

OPEN = ("open", "waiting")  # a waiting task is open, paused until an added approver decides
DECIDED = ("approved", "rejected", "forwarded", "delegated", "transferred", "escalated")
VIEWS = ("todo", "done", "started", "cc")


def open_tasks(
    conn: Connection,
    engine: ProcessEngine,
    instance: Any,
    step: str,
    index: int,
    people: list[int],
    behalf: int | None,
    kind: str = "approve",
) -> list[int]:
    """One open task (or copy) per person in the instance's current round; answers their ids."""
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
            kind=kind,
            status="open" if kind != "cc" else "copied",
            created_at=now,
        )
        ids.append(new_id(conn.execute(insert(tasks).values(**values))))
    return ids


def close_open(conn: Connection, engine: ProcessEngine, instance: Any) -> None:
    """Cancel the instance's open and waiting tasks (a step was decided, the approval ended)."""
    found = tasks.c.instance_id == instance["id"], tasks.c.status.in_(OPEN)
    ids = list(conn.execute(select(tasks.c.id).where(*found)).scalars())
    if ids:
        conn.execute(update(tasks).where(*found).values(status="cancelled"))
        mark_task_notices_read(conn, engine, ids)


def close_task(conn: Connection, engine: ProcessEngine, task: Any, **values: Any) -> None:
    """Close an open (or waiting) task; one closed meanwhile is 409 `task_closed`."""
    result = conn.execute(
        update(tasks).where(tasks.c.id == task["id"], tasks.c.status.in_(OPEN)).values(**values)
    )
    if result.rowcount != 1:
        raise closed("closed")
    mark_task_notices_read(conn, engine, [task["id"]])


def mark_task_notices_read(conn: Connection, engine: ProcessEngine, task_ids: list[int]) -> None:
    """A task is done: the notifications that asked for it are read."""
    conn.execute(
        update(notifications)
        .where(notifications.c.task_id.in_(task_ids), notifications.c.read_at.is_(None))
        .values(read_at=engine.now())
    )


def instance_row(conn: Connection, instance_id: int, *, lock: bool = False) -> Any:
    """An approval instance (with `submitter`), locked for update on PostgreSQL."""
    stmt = select(process_instances, process_instances.c.submitted_by.label("submitter")).where(
        process_instances.c.id == instance_id
    )
    if lock and conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update(of=process_instances)
    found = conn.execute(stmt).mappings().first()
    if found is None:
        raise NotFound("approval", instance_id)
    return found


def claim(
    engine: ProcessEngine, conn: Connection, task_id: int, actor: Actor, *, waiting_too: bool = False
) -> tuple[Any, Any]:
    """The actor's open task and its approval instance, read under the record's lock.

    Decisions, delegations and transfers of one task (or of one record) sent at the
    same time queue on the record's row lock; each reads the task again once it holds
    the lock, so only the first finds it open and the others answer 409 `task_closed`.
    """
    task = open_task(conn, task_id, actor, waiting_too=waiting_too)
    engine.lock(conn, engine.target(task["app"], task["form"], task["record_id"]))
    instance = instance_row(conn, task["instance_id"], lock=True)
    return open_task(conn, task_id, actor, lock=True, waiting_too=waiting_too), instance


def open_task(
    conn: Connection, task_id: int, actor: Actor, *, lock: bool = False, waiting_too: bool = False
) -> Any:
    """The actor's task, if it is open (404 for someone else's, 409 `task_closed` when closed)."""
    stmt = select(tasks).where(tasks.c.id == task_id)
    if lock and conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    task = conn.execute(stmt).mappings().first()
    if task is None or task["kind"] == "cc" or (task["assignee_id"] != actor.user_id and not actor.admin):
        raise NotFound("task", task_id)
    if task["assignee_id"] != actor.user_id:
        raise NotAllowed("only the task's assignee can decide it")
    if task["status"] == "waiting" and not waiting_too:
        raise Conflict([FieldProblem(None, "waiting", "an approver you added decides first")])
    if task["status"] not in OPEN:
        raise closed(task["status"])
    return task


def closed(status: str) -> Conflict:
    """409 `task_closed`."""
    return Conflict([FieldProblem(None, "task_closed", f"the task is already {status}")])


def open_holders(conn: Connection, instance: Any) -> list[int]:
    """The users holding the open tasks of the instance's current round."""
    stmt = select(tasks.c.assignee_id).where(
        tasks.c.instance_id == instance["id"],
        tasks.c.round == instance["round"],
        tasks.c.status.in_(OPEN),
        tasks.c.kind != "cc",
    )
    return list(dict.fromkeys(conn.execute(stmt.order_by(tasks.c.id)).scalars()))


def decided_any(conn: Connection, instance: Any) -> bool:
    """True when anyone decided a task of the instance (approved, rejected or passed it on)."""
    stmt = select(tasks.c.id).where(
        tasks.c.instance_id == instance["id"], tasks.c.status.in_(("approved", "rejected", "forwarded"))
    )
    return conn.execute(stmt.limit(1)).first() is not None


# -- lists -----------------------------------------------------------------------------------


def _with_approval() -> Select[Any]:
    submitter = users.alias("submitter")
    return select(
        tasks,
        process_instances.c.definition.label("approval"),
        process_instances.c.submitted_by,
        submitter.c.display_name.label("submitter_name"),
    ).select_from(
        tasks.join(process_instances, process_instances.c.id == tasks.c.instance_id).outerjoin(
            submitter, submitter.c.id == process_instances.c.submitted_by
        )
    )


def task_rows(
    conn: Connection, user_id: int | None, status: str, limit: int, offset: int, task_id: int | None = None
) -> list[dict[str, Any]]:
    """A user's tasks (or one task) with their approval and the submitter's name, newest first."""
    stmt = _with_approval().order_by(tasks.c.id.desc()).limit(limit).offset(offset)
    if user_id is not None:
        stmt = stmt.where(tasks.c.assignee_id == user_id, tasks.c.kind != "cc")
    if task_id is not None:
        stmt = stmt.where(tasks.c.id == task_id)
    if status != "all":
        stmt = stmt.where(tasks.c.status == status)
    return [dict(row) for row in conn.execute(stmt).mappings()]


def view_condition(view: str, user_id: int) -> Any:
    """The tasks of an inbox view: to do, done (decided by the user), or copied to the user."""
    mine = tasks.c.assignee_id == user_id
    if view == "todo":
        return mine & tasks.c.kind.in_(("approve", "consult")) & tasks.c.status.in_(OPEN)
    if view == "done":
        return mine & tasks.c.kind.in_(("approve", "consult")) & tasks.c.status.in_(DECIDED)
    return mine & (tasks.c.kind == "cc")


def view_rows(conn: Connection, view: str, user_id: int, limit: int, offset: int) -> list[dict[str, Any]]:
    """A page of an inbox view's tasks, newest first (`started` lists approval instances)."""
    if view == "started":
        return started_rows(conn, user_id, limit, offset)
    order = (tasks.c.decided_at.desc(), tasks.c.id.desc()) if view == "done" else (tasks.c.id.desc(),)
    stmt = _with_approval().where(view_condition(view, user_id)).order_by(*order).limit(limit).offset(offset)
    return [dict(row) for row in conn.execute(stmt).mappings()]


def started_rows(conn: Connection, user_id: int, limit: int, offset: int) -> list[dict[str, Any]]:
    """The approvals a user started, newest first."""
    table = process_instances
    stmt = (
        select(table)
        .where(table.c.kind == "approval", table.c.submitted_by == user_id)
        .order_by(table.c.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return [dict(row) for row in conn.execute(stmt).mappings()]


def view_counts(conn: Connection, user_id: int) -> dict[str, int]:
    """How many items each inbox view holds for a user (one statement)."""
    counted = [
        func.count(tasks.c.id).filter(view_condition(view, user_id)).label(view)
        for view in ("todo", "done", "cc")
    ]
    row = conn.execute(select(*counted).where(tasks.c.assignee_id == user_id)).mappings().one()
    table = process_instances
    started = select(func.count()).where(table.c.kind == "approval", table.c.submitted_by == user_id)
    return {**{k: int(v or 0) for k, v in row.items()}, "started": int(conn.execute(started).scalar_one())}


def approval_rows(conn: Connection, app: str, form: str, record_id: int) -> list[dict[str, Any]]:
    """The record's approval instances with their tasks, oldest first (two queries)."""
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
    by_instance: dict[int, list[dict[str, Any]]] = defaultdict(list)
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


def new_id(result: Any) -> int:
    """The primary key an INSERT gave."""
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])
