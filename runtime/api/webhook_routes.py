"""`GET /api/v1/webhooks/deliveries`: the webhook delivery log, for admins.

Each webhook an effect queued is a job (runtime/process/jobs.py); this lists them newest
first with where they go (a URL without its query, or the variable that holds it), their
state, attempts, the next attempt's time and the last error, so an admin sees what a
receiver was sent and what it answered.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Query, Request, Response
from sqlalchemy import Engine, func, select

from runtime.api.responses import json_response
from runtime.api.schemas import REF
from runtime.identity.actor import Actor
from runtime.records.errors import NotAllowed
from runtime.schema.system import jobs

Status = Literal["pending", "running", "done", "failed", "cancelled"]
TIME = {"type": ["string", "null"], "format": "date-time"}
DELIVERY = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "key": {"type": "string", "description": "Sent as Idempotency-Key"},
        "event": {"type": ["string", "null"]},
        "app": {"type": ["string", "null"]},
        "form": {"type": ["string", "null"]},
        "record_id": {"type": ["integer", "null"]},
        "target": {"type": "string", "description": "The URL without its query, or $VARIABLE holding it"},
        "status": {"type": "string", "enum": ["pending", "running", "done", "failed", "cancelled"]},
        "attempts": {"type": "integer"},
        "max_attempts": {"type": "integer"},
        "next_attempt_at": TIME,
        "created_at": TIME,
        "finished_at": TIME,
        "last_error": {"type": ["string", "null"]},
    },
    "required": ["id", "key", "target", "status", "attempts", "max_attempts"],
}
PAGE = {
    "type": "object",
    "properties": {"items": {"type": "array", "items": DELIVERY}, "total": {"type": "integer"}},
    "required": ["items", "total"],
}


def webhook_router(engine: Engine, signed_in: Callable[[Request], Actor]) -> APIRouter:
    """The delivery log route."""
    router = APIRouter(tags=["webhooks"])

    def deliveries(
        app: str | None = Query(default=None, max_length=40, description="Only this app's webhooks"),
        status: Status | None = Query(default=None, description="Only deliveries in this state"),
        limit: int = Query(default=50, ge=1, le=500),
        offset: int = Query(default=0, ge=0, le=10**9),
        actor: Actor = Depends(signed_in),
    ) -> Response:
        if not actor.admin:
            raise NotAllowed("only admins may read the webhook delivery log")
        conditions = [jobs.c.kind == "webhook"]
        if app is not None:
            conditions.append(jobs.c.app == app)
        if status is not None:
            conditions.append(jobs.c.status == status)
        with engine.connect() as conn:
            total = conn.execute(select(func.count()).select_from(jobs).where(*conditions)).scalar_one()
            rows = conn.execute(
                select(jobs).where(*conditions).order_by(jobs.c.id.desc()).limit(limit).offset(offset)
            ).mappings()
            items = [_delivery(row) for row in rows]
        return json_response({"items": items, "total": int(total)})

    problem = {"content": {"application/json": {"schema": {"$ref": REF + "ErrorList"}}}}
    router.add_api_route(
        "/api/v1/webhooks/deliveries",
        deliveries,
        methods=["GET"],
        summary="The webhook delivery log (admins)",
        operation_id="list_webhook_deliveries",
        openapi_extra={
            "responses": {
                "200": {"description": "OK", "content": {"application/json": {"schema": PAGE}}},
                "401": {"description": "Not signed in", **problem},
                "403": {"description": "Not an admin", **problem},
            }
        },
    )
    return router


def _delivery(row: Any) -> dict[str, Any]:
    payload = dict(row["payload"] or {})
    pending = row["status"] == "pending"
    return {
        "id": row["id"],
        "key": row["key"],
        "event": payload.get("event"),
        "app": row["app"],
        "form": row["form"],
        "record_id": row["record_id"],
        "target": _target(payload),
        "status": row["status"],
        "attempts": row["attempts"],
        "max_attempts": row["max_attempts"],
        "next_attempt_at": _time(row["due_at"]) if pending else None,
        "created_at": _time(row["created_at"]),
        "finished_at": _time(row["finished_at"]),
        "last_error": row["last_error"],
    }


def _target(payload: dict[str, Any]) -> str:
    """Where it goes, without the query string (which may hold a receiver's token)."""
    if payload.get("url_env"):
        return f"${payload['url_env']}"
    parts = urlsplit(str(payload.get("url") or ""))
    return f"{parts.scheme}://{parts.netloc}{parts.path}" if parts.scheme else ""


def _time(value: Any) -> str | None:
    return value.isoformat() if value is not None else None
