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
from runtime.process import approvals, notifications, workflows
from runtime.process.engine import ProcessEngine, Target
from runtime.records.errors import NotFound, Unauthenticated, invalid
from runtime.records.reader import iso_or_none

MAX_PAGE = 200


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

    def approvals(self, app: str, form: str, record_id: int, actor: Actor) -> list[dict[str, Any]]:
        """The record's approvals with their tasks, decisions and comments."""
        with self.db.connect() as conn:
            target = self._readable(conn, app, form, record_id, actor)
            return [_approval_json(row) for row in approvals.approval_rows(conn, target)]

    def tasks(self, actor: Actor, status: str, limit: int, offset: int) -> dict[str, Any]:
        """The caller's tasks (open ones by default)."""
        user = _user(actor)
        if status not in ("open", "approved", "rejected", "delegated", "transferred", "cancelled", "all"):
            raise invalid(
                "status",
                "invalid",
                "status is open, approved, rejected, delegated, transferred, cancelled or all",
            )
        with self.db.connect() as conn:
            rows = approvals.task_rows(conn, user, status, limit + 1, offset)
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
            new_id = approvals.reassign(
                self.engine, conn, task_id, _actor_user(actor), to_user, comment, mode
            )
            return self._task(conn, new_id)

    def _task(self, conn: Any, task_id: int) -> dict[str, Any]:
        rows = approvals.task_rows(conn, None, "all", 1, 0, task_id=task_id)
        if not rows:
            raise NotFound("task", task_id)
        return _task_json(rows[0])

    def notifications(self, actor: Actor, unread_only: bool, limit: int, offset: int) -> dict[str, Any]:
        """The caller's notifications, newest first."""
        with self.db.connect() as conn:
            return notifications.list_for(
                conn, _user(actor), unread_only=unread_only, limit=limit, offset=offset
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


def _approval_json(row: dict[str, Any]) -> dict[str, Any]:
    submitter = row["submitted_by"]
    return {
        "id": row["id"],
        "approval": row["definition"],
        "state": row["state"],
        "step": next((t["step"] for t in reversed(row["tasks"]) if t["status"] == "open"), None),
        "submitted_by": None if submitter is None else {"id": submitter, "display": row["submitter_name"]},
        "started_at": iso_or_none(row["started_at"]),
        "ended_at": iso_or_none(row["ended_at"]),
        "tasks": [
            {**_task_json(task), "assignee": {"id": task["assignee_id"], "display": task["assignee_name"]}}
            for task in row["tasks"]
        ],
    }
