"""Routes of the process engine: workflow actions, approvals, the task inbox, notifications."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Body, Depends, Path, Query, Request, Response

from runtime.api.form_routes import ERRORS
from runtime.api.responses import json_response
from runtime.api.schemas import REF, schema_names
from runtime.identity.actor import Actor
from runtime.process.service import MAX_PAGE, STATUSES, ProcessService
from runtime.records.compiled import CompiledApp, CompiledForm

RecordId = Path(ge=1, le=2**63 - 1, description="The record's id")
TaskId = Path(ge=1, le=2**63 - 1, description="The task's id")
InstanceId = Path(ge=1, le=2**63 - 1, description="The approval's id (from the record's approvals)")
NotificationId = Path(ge=1, le=2**63 - 1, description="The notification's id")
COMMENT = {"type": "string", "maxLength": 2000, "description": "A comment kept in the record's history"}
DECISION_BODY = {"type": "object", "properties": {"comment": COMMENT}, "additionalProperties": False}
REJECTION_BODY = {
    "type": "object",
    "properties": {
        "comment": COMMENT,
        "to_step": {
            "type": "string",
            "description": "An earlier step, or 'start'; default: the step's reject_to",
        },
    },
    "additionalProperties": False,
}
REASSIGN_BODY = {
    "type": "object",
    "properties": {"to": {"type": "integer", "minimum": 1, "description": "The user id"}, "comment": COMMENT},
    "required": ["to"],
    "additionalProperties": False,
}
ADD_BODY = {
    "type": "object",
    "properties": {
        "to": {"type": "integer", "minimum": 1, "description": "The user id"},
        "position": {"type": "string", "enum": ["before", "after"]},
        "comment": COMMENT,
    },
    "required": ["to", "position"],
    "additionalProperties": False,
}
ROUTE = {
    "type": "object",
    "properties": {
        "approval": {"type": "string"},
        "running": {"type": "boolean"},
        "steps": {"type": "array", "items": {"type": "object"}},
    },
}
TRANSITION = {
    "type": "object",
    "properties": {
        "action": {"type": "string"},
        "label": {"type": ["object", "null"]},
        "from": {"type": "string"},
        "to": {"type": "string"},
        "fields": {"type": "array", "items": {"type": "string"}},
        "require": {"type": "array", "items": {"type": "string"}},
        "ready": {"type": "boolean", "description": "False when the guard does not hold yet"},
        "reason": {"type": ["string", "null"]},
    },
}
TASK = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "approval": {"type": "string"},
        "step": {"type": "string"},
        "kind": {"type": "string", "description": "approve, consult (added before someone) or cc"},
        "status": {"type": "string"},
        "record": {"type": "string"},
        "comment": {"type": ["string", "null"]},
    },
}
NOTIFICATION = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "message": {"type": "string"},
        "record": {"type": ["string", "null"]},
        "created_at": {"type": "string"},
        "read_at": {"type": ["string", "null"]},
    },
}


def _errors(*codes: tuple[str, str]) -> dict[str, Any]:
    return {code: {"description": text, **ERRORS} for code, text in codes}


def _ok(schema: dict[str, Any]) -> dict[str, Any]:
    return {"200": {"description": "OK", "content": {"application/json": {"schema": schema}}}}


def _page(item: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "items": {"type": "array", "items": item},
            "next_offset": {"type": ["integer", "null"]},
            **extra,
        },
        "required": ["items"],
    }


def record_process_router(
    process: ProcessService, app: CompiledApp, form: CompiledForm, who: Callable[[Request], Actor]
) -> APIRouter:
    """Workflow actions and approvals of one form's records."""
    Caller = Depends(who)
    app_key, form_key = app.app.app, form.key
    router = APIRouter(prefix=f"/api/v1/{app_key}/{form_key}", tags=[f"{app_key}.{form_key}"])
    one = {"$ref": REF + schema_names(app, form)["read"]}
    errors = _errors(("401", "Not signed in"), ("403", "Not allowed"), ("404", "No such record or action"))
    workflow = app.app.workflow_of(form_key)

    if workflow is not None:
        actions = [t.action for t in workflow.transitions]

        def list_transitions(record_id: int = RecordId, actor: Actor = Caller) -> Response:
            return json_response({"items": process.transitions(app_key, form_key, record_id, actor)})

        def take(
            record_id: int = RecordId,
            action: str = Path(description="The action", max_length=40),
            body: Any = Body(default=None),
            actor: Actor = Caller,
        ) -> Response:
            return json_response(process.take(app_key, form_key, record_id, action, body, actor))

        router.add_api_route(
            "/{record_id}/transitions",
            list_transitions,
            methods=["GET"],
            summary="The workflow actions open to the caller",
            operation_id=f"transitions_{app_key}_{form_key}",
            openapi_extra={
                "responses": {
                    **_ok(
                        {"type": "object", "properties": {"items": {"type": "array", "items": TRANSITION}}}
                    ),
                    **errors,
                }
            },
        )
        take_body = {
            "type": "object",
            "properties": {
                "values": {"type": "object", "description": "Values of the fields the action takes"},
                "comment": COMMENT,
            },
            "additionalProperties": False,
        }
        router.add_api_route(
            "/{record_id}/transitions/{action}",
            take,
            methods=["POST"],
            summary=f"Take a workflow action ({', '.join(actions)})",
            operation_id=f"take_transition_{app_key}_{form_key}",
            openapi_extra={
                "requestBody": {"required": False, "content": {"application/json": {"schema": take_body}}},
                "responses": {
                    **_ok(one),
                    **errors,
                    **_errors(
                        ("409", "Not possible from the current state"), ("422", "Invalid values or guard")
                    ),
                },
            },
        )

    if any(a.form == form_key for a in app.app.approvals):

        def list_approvals(record_id: int = RecordId, actor: Actor = Caller) -> Response:
            return json_response({"items": process.approvals(app_key, form_key, record_id, actor)})

        router.add_api_route(
            "/{record_id}/approvals",
            list_approvals,
            methods=["GET"],
            summary="The record's approvals, their tasks, decisions and comments",
            operation_id=f"approvals_{app_key}_{form_key}",
            openapi_extra={"responses": {**_ok({"type": "object"}), **errors}},
        )

        def approval_route(record_id: int = RecordId, actor: Actor = Caller) -> Response:
            return json_response({"items": process.route(app_key, form_key, record_id, actor)})

        router.add_api_route(
            "/{record_id}/approvals/route",
            approval_route,
            methods=["GET"],
            summary="The route ahead: the steps that apply to the record now, with who decides each",
            operation_id=f"approval_route_{app_key}_{form_key}",
            openapi_extra={"responses": {**_ok(_page(ROUTE)), **errors}},
        )
    return router


def inbox_router(process: ProcessService, signed_in: Callable[[Request], Actor]) -> APIRouter:
    """`/api/v1/tasks` (the approval inbox) and `/api/v1/notifications`."""
    Caller = Depends(signed_in)
    router = APIRouter(prefix="/api/v1", tags=["inbox"])
    errors = _errors(("401", "Not signed in"), ("404", "No such task"))

    def list_tasks(
        status: str = Query(default="open", description="The tasks' status: " + ", ".join(STATUSES)),
        view: str | None = Query(
            default=None, description="An inbox view instead: todo, done, started (approvals I started) or cc"
        ),
        limit: int = Query(default=50, ge=1, le=MAX_PAGE),
        offset: int = Query(default=0, ge=0, le=10**9),
        actor: Actor = Caller,
    ) -> Response:
        if view is not None:
            return json_response(process.inbox(actor, view, limit, offset))
        return json_response(process.tasks(actor, status, limit, offset))

    router.add_api_route(
        "/tasks",
        list_tasks,
        methods=["GET"],
        summary="My approval tasks",
        operation_id="list_tasks",
        openapi_extra={"responses": {**_ok(_page(TASK)), **errors, **_errors(("422", "Invalid status"))}},
    )
    decided = {
        **_ok(TASK),
        **errors,
        **_errors(("403", "Not your task"), ("409", "Already decided"), ("422", "Invalid request")),
    }

    def decision(kind: str) -> Callable[..., Response]:
        def decide(task_id: int = TaskId, body: Any = Body(default=None), actor: Actor = Caller) -> Response:
            return json_response(process.decide(task_id, kind, body, actor))

        return decide

    def reassignment(mode: str) -> Callable[..., Response]:
        def reassign(task_id: int = TaskId, body: Any = Body(...), actor: Actor = Caller) -> Response:
            return json_response(process.reassign(task_id, mode, body, actor))

        return reassign

    for verb, kind in (("approve", "approved"), ("reject", "rejected")):
        router.add_api_route(
            f"/tasks/{{task_id}}/{verb}",
            decision(kind),
            methods=["POST"],
            summary=f"{verb.capitalize()} a task (a rejection needs a comment)",
            operation_id=f"{verb}_task",
            openapi_extra={
                "requestBody": {
                    "required": False,
                    "content": {
                        "application/json": {"schema": REJECTION_BODY if verb == "reject" else DECISION_BODY}
                    },
                },
                "responses": decided,
            },
        )
    for mode in ("delegate", "transfer"):
        router.add_api_route(
            f"/tasks/{{task_id}}/{mode}",
            reassignment(mode),
            methods=["POST"],
            summary=f"{mode.capitalize()} a task to another user",
            operation_id=f"{mode}_task",
            openapi_extra={
                "requestBody": {"required": True, "content": {"application/json": {"schema": REASSIGN_BODY}}},
                "responses": decided,
            },
        )

    def add_approver(task_id: int = TaskId, body: Any = Body(...), actor: Actor = Caller) -> Response:
        return json_response(process.add_approver(task_id, body, actor))

    router.add_api_route(
        "/tasks/{task_id}/add_approver",
        add_approver,
        methods=["POST"],
        summary="Add an approver before or after oneself (where the step allows it)",
        operation_id="add_approver",
        openapi_extra={
            "requestBody": {"required": True, "content": {"application/json": {"schema": ADD_BODY}}},
            "responses": decided,
        },
    )

    def withdraw(
        instance_id: int = InstanceId, body: Any = Body(default=None), actor: Actor = Caller
    ) -> Response:
        return json_response(process.withdraw(instance_id, body, actor))

    def nudge(instance_id: int = InstanceId, actor: Actor = Caller) -> Response:
        return json_response(process.nudge(instance_id, actor))

    submitted = {
        **errors,
        **_errors(("403", "Not allowed"), ("409", "Not possible now"), ("422", "Invalid request")),
    }
    router.add_api_route(
        "/approvals/{instance_id}/withdraw",
        withdraw,
        methods=["POST"],
        summary="Withdraw an approval I submitted, while nobody has decided",
        operation_id="withdraw_approval",
        openapi_extra={
            "requestBody": {"required": False, "content": {"application/json": {"schema": DECISION_BODY}}},
            "responses": {**_ok({"type": "object"}), **submitted},
        },
    )
    router.add_api_route(
        "/approvals/{instance_id}/nudge",
        nudge,
        methods=["POST"],
        summary="Remind the current approvers of an approval I submitted",
        operation_id="nudge_approval",
        openapi_extra={
            "responses": {
                **_ok({"type": "object", "properties": {"notified": {"type": "integer"}}}),
                **submitted,
            }
        },
    )

    def list_notifications(
        unread: bool = Query(default=False, description="Only unread ones"),
        limit: int = Query(default=50, ge=1, le=MAX_PAGE),
        offset: int = Query(default=0, ge=0, le=10**9),
        actor: Actor = Caller,
    ) -> Response:
        return json_response(process.notifications(actor, unread, limit, offset))

    def read_one(notification_id: int = NotificationId, actor: Actor = Caller) -> Response:
        return json_response({"read": process.mark_read(actor, notification_id)})

    def read_all(actor: Actor = Caller) -> Response:
        return json_response({"read": process.mark_read(actor, None)})

    router.add_api_route(
        "/notifications",
        list_notifications,
        methods=["GET"],
        summary="My notifications, newest first",
        operation_id="list_notifications",
        openapi_extra={"responses": {**_ok(_page(NOTIFICATION, unread={"type": "integer"})), **errors}},
    )
    counted = {**_ok({"type": "object", "properties": {"read": {"type": "integer"}}}), **errors}
    router.add_api_route(
        "/notifications/{notification_id}/read",
        read_one,
        methods=["POST"],
        summary="Mark a notification read",
        operation_id="read_notification",
        openapi_extra={"responses": counted},
    )
    router.add_api_route(
        "/notifications/read-all",
        read_all,
        methods=["POST"],
        summary="Mark all my notifications read",
        operation_id="read_all_notifications",
        openapi_extra={"responses": counted},
    )
    return router
