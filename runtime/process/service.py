"""What the API offers of the process engine, for an actor: transitions, approvals, tasks, notifications.

Each call is one transaction. Record-level calls first check that the caller may read
the record (the records service's permissions and row scope), so no route reveals a
record, its actions or its approvals to someone who could not read it.
"""

from __future__ import annotations

from typing import Any

from runtime.db import write
from runtime.expressions.to_python import CURRENT_USER
from runtime.identity.actor import Actor
from runtime.process import approval_actions, approvals, make, notifications, tasks, workflows
from runtime.process.engine import ProcessEngine, Target
from runtime.records.errors import NotFound, RecordError, Unauthenticated, invalid
from runtime.records.reader import iso_or_none

MAX_PAGE = 200
STATUSES = (
    "open",
    "waiting",
    "approved",
    "rejected",
    "forwarded",
    "delegated",
    "transferred",
    "escalated",
    "cancelled",
    "all",
)


class ProcessService:
    """The engine's operations on behalf of API callers."""

    def __init__(self, engine: ProcessEngine) -> None:
        self.engine = engine
        self.db = engine.service.engine

    def _readable(self, conn: Any, app: str, form: str, record_id: int, actor: Actor) -> Target:
        target = self.engine.target(app, form, record_id)
        self.engine.service.require_in_scope(conn, target.form, record_id, actor, "read")
        return target

    def transitions(self, app: str, form: str, record_id: int, actor: Actor) -> list[dict[str, Any]]:
        """The actions the caller may take on the record now."""
        with self.db.connect() as conn:
            target = self._readable(conn, app, form, record_id, actor)
            return workflows.available(self.engine, conn, target, actor)

    def take(
        self, app: str, form: str, record_id: int, action: str, body: Any, actor: Actor
    ) -> dict[str, Any]:
        """Take an action; answers the record as the caller sees it afterwards."""
        values, comment = _values_and_comment(body)
        token = CURRENT_USER.set(actor.user_id)
        try:
            with write(self.db) as conn:
                target = self._readable(conn, app, form, record_id, actor)
                workflows.take(self.engine, conn, target, action, actor, values=values, comment=comment)
                return self.engine.service.visible(conn, target.app, target.form, record_id, actor)
        finally:
            CURRENT_USER.reset(token)

    def actions(self, app: str, form: str, record_id: int, actor: Actor) -> list[dict[str, Any]]:
        """The make actions the caller may take on the record, ready or not (runtime/process/make.py)."""
        with self.db.connect() as conn:
            target = self._readable(conn, app, form, record_id, actor)
            return make.available(self.engine, conn, target, actor)

    def make(self, app: str, form: str, record_id: int, key: str, actor: Actor) -> tuple[str, dict[str, Any]]:
        """Take a make action: answers the new record's form and the record as the caller sees it
        (only its id when they may not read it)."""
        token = CURRENT_USER.set(actor.user_id)
        try:
            with write(self.db) as conn:
                target = self._readable(conn, app, form, record_id, actor)
                made, new_id = make.make(self.engine, conn, target, key, actor)
                try:
                    form_made = target.app.forms[made]
                    record = self.engine.service.visible(conn, target.app, form_made, new_id, actor)
                except RecordError:
                    record = {"id": new_id}
                return made, record
        finally:
            CURRENT_USER.reset(token)

    def approvals(self, app: str, form: str, record_id: int, actor: Actor) -> list[dict[str, Any]]:
        """The record's approvals with their tasks, decisions and comments."""
        with self.db.connect() as conn:
            target = self._readable(conn, app, form, record_id, actor)
            return [_approval_json(row) for row in tasks.approval_rows(conn, *target.where)]

    def route(self, app: str, form: str, record_id: int, actor: Actor) -> list[dict[str, Any]]:
        """The route ahead of the record's approvals: the steps that apply now, with their approvers."""
        with self.db.connect() as conn:
            target = self._readable(conn, app, form, record_id, actor)
            return approval_actions.route(self.engine, conn, target, actor)

    def inbox(self, actor: Actor, view: str, limit: int, offset: int) -> dict[str, Any]:
        """A page of one inbox view (todo, done, started: approvals I started, cc) and every view's count."""
        user = _user(actor)
        if view not in tasks.VIEWS:
            raise invalid("view", "invalid", "view is todo, done, started or cc")
        with self.db.connect() as conn:
            rows = tasks.view_rows(conn, view, user, limit + 1, offset)
            counts = tasks.view_counts(conn, user)
            if view == "started":
                items = [_started_json(row, self._step_name(conn, row)) for row in rows[:limit]]
            else:
                items = [_task_json(row) for row in rows[:limit]]
        more = len(rows) > limit
        return {"items": items, "counts": counts, "next_offset": offset + limit if more else None}

    def _step_name(self, conn: Any, instance: dict[str, Any]) -> str | None:
        """The name of the step an approval instance is at (None once it has ended)."""
        if instance["step"] is None:
            return None
        approval = self.engine.versions.approval(
            conn, instance["app"], instance["definition"], instance["definition_version"]
        )
        return approval.steps[instance["step"]].name if approval is not None else None

    def withdraw(self, instance_id: int, body: Any, actor: Actor) -> dict[str, Any]:
        """The submitter withdraws an approval nobody has decided yet."""
        comment = _comment(body)
        with write(self.db) as conn:
            approval_actions.withdraw(self.engine, conn, instance_id, _actor_user(actor), comment)
            return self._approval(conn, instance_id)

    def nudge(self, instance_id: int, actor: Actor) -> dict[str, Any]:
        """The submitter reminds the current approvers; answers how many were told."""
        with write(self.db) as conn:
            sent = approval_actions.nudge(self.engine, conn, instance_id, _actor_user(actor))
        return {"notified": sent}

    def add_approver(self, task_id: int, body: Any, actor: Actor) -> dict[str, Any]:
        """Add an approver before or after oneself on one's task; answers the new task."""
        comment = _comment(body)
        to_user = body.get("to") if isinstance(body, dict) else None
        position = body.get("position") if isinstance(body, dict) else None
        with write(self.db) as conn:
            new_id = approval_actions.add_approver(
                self.engine, conn, task_id, _actor_user(actor), to_user, position, comment
            )
            return self._task(conn, new_id)

    def _approval(self, conn: Any, instance_id: int) -> dict[str, Any]:
        instance = tasks.instance_row(conn, instance_id)
        rows = tasks.approval_rows(conn, instance["app"], instance["form"], instance["record_id"])
        return _approval_json(next(row for row in rows if row["id"] == instance_id))

    def tasks(self, actor: Actor, status: str, limit: int, offset: int) -> dict[str, Any]:
        """The caller's tasks (open ones by default)."""
        user = _user(actor)
        if status not in STATUSES:
            raise invalid("status", "invalid", f"status is {', '.join(STATUSES[:-1])} or all")
        with self.db.connect() as conn:
            rows = tasks.task_rows(conn, user, status, limit + 1, offset)
        items = [_task_json(row) for row in rows[:limit]]
        return {"items": items, "next_offset": offset + limit if len(rows) > limit else None}

    def decide(self, task_id: int, decision: str, body: Any, actor: Actor) -> dict[str, Any]:
        """Approve or reject a task of the caller's (`decision` is "approved" or "rejected")."""
        if decision not in ("approved", "rejected"):
            raise invalid("decision", "invalid", "a decision is approved or rejected")
        comment = _comment(body)
        to_step = body.get("to_step") if isinstance(body, dict) else None
        if to_step is not None and not isinstance(to_step, str):
            raise invalid("to_step", "type", "expected a step name")
        token = CURRENT_USER.set(actor.user_id)
        try:
            with write(self.db) as conn:
                approvals.decide(self.engine, conn, task_id, _actor_user(actor), decision, comment, to_step)
                return self._task(conn, task_id)
        finally:
            CURRENT_USER.reset(token)

    def reassign(self, task_id: int, mode: str, body: Any, actor: Actor) -> dict[str, Any]:
        """Delegate or transfer a task of the caller's to `to` (a user id)."""
        comment = _comment(body)
        to_user = body.get("to") if isinstance(body, dict) else None
        with write(self.db) as conn:
            new_id = approval_actions.reassign(
                self.engine, conn, task_id, _actor_user(actor), to_user, comment, mode
            )
            return self._task(conn, new_id)

    def _task(self, conn: Any, task_id: int) -> dict[str, Any]:
        rows = tasks.task_rows(conn, None, "all", 1, 0, task_id=task_id)
        if not rows:
            raise NotFound("task", task_id)
        return _task_json(rows[0])

    def notifications(self, actor: Actor, unread_only: bool, limit: int, offset: int) -> dict[str, Any]:
        """The caller's notifications, newest first."""
        with self.db.connect() as conn:
            return notifications.list_for(
                conn,
                _user(actor),
                unread_only=unread_only,
                limit=limit,
                offset=offset,
                language=actor.language,
            )

    def mark_read(self, actor: Actor, notification_id: int | None) -> int:
        """Mark one (or all) of the caller's notifications read."""
        with write(self.db) as conn:
            return notifications.mark_read(conn, _user(actor), notification_id, self.engine.now())


def _user(actor: Actor) -> int:
    if actor.user_id is None:
        raise Unauthenticated()
    return actor.user_id


def _actor_user(actor: Actor) -> Actor:
    _user(actor)
    return actor


def _comment(body: Any) -> str | None:
    if body is None:
        return None
    if not isinstance(body, dict):
        raise invalid(None, "type", "expected a JSON object")
    comment = body.get("comment")
    if comment is not None and not isinstance(comment, str):
        raise invalid("comment", "type", "expected text")
    if comment is not None and len(comment) > 2000:
        raise invalid("comment", "max_length", "at most 2000 characters")
    return comment


def _values_and_comment(body: Any) -> tuple[Any, str | None]:
    comment = _comment(body)
    values = body.get("values") if isinstance(body, dict) else None
    extra = set(body) - {"values", "comment"} if isinstance(body, dict) else set()
    if extra:
        raise invalid(sorted(extra)[0], "unknown_field", "the body takes 'values' and 'comment'")
    return values, comment


def _task_json(row: dict[str, Any]) -> dict[str, Any]:
    found = {
        "id": row["id"],
        "app": row["app"],
        "form": row["form"],
        "record_id": row["record_id"],
        "record": f"/api/v1/{row['app']}/{row['form']}/{row['record_id']}",
        "step": row["step"],
        "kind": row["kind"],
        "status": row["status"],
        "comment": row["comment"],
        "on_behalf_of": row["on_behalf_of"],
        "created_at": iso_or_none(row["created_at"]),
        "decided_at": iso_or_none(row["decided_at"]),
    }
    if "approval" in row:
        found["approval"] = row["approval"]
        found["submitted_by"] = (
            None
            if row["submitted_by"] is None
            else {"id": row["submitted_by"], "display": row["submitter_name"]}
        )
    return found


def _started_json(row: dict[str, Any], step: str | None) -> dict[str, Any]:
    return {
        "id": row["id"],
        "approval": row["definition"],
        "state": row["state"],
        "step": step,
        "record": f"/api/v1/{row['app']}/{row['form']}/{row['record_id']}",
        "app": row["app"],
        "form": row["form"],
        "record_id": row["record_id"],
        "started_at": iso_or_none(row["started_at"]),
        "ended_at": iso_or_none(row["ended_at"]),
    }


def _approval_json(row: dict[str, Any]) -> dict[str, Any]:
    submitter = row["submitted_by"]
    return {
        "id": row["id"],
        "approval": row["definition"],
        "state": row["state"],
        "step": next((t["step"] for t in reversed(row["tasks"]) if t["status"] in tasks.OPEN), None),
        "released_at": iso_or_none(row["released_at"]),
        "submitted_by": None if submitter is None else {"id": submitter, "display": row["submitter_name"]},
        "started_at": iso_or_none(row["started_at"]),
        "ended_at": iso_or_none(row["ended_at"]),
        "tasks": [
            {**_task_json(task), "assignee": {"id": task["assignee_id"], "display": task["assignee_name"]}}
            for task in row["tasks"]
        ],
    }
