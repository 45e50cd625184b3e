"""JSON responses and the one error shape every failing request answers with."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException

from runtime.records.errors import RecordError


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON response, encoded fast."""
    return Response(orjson.dumps(data), status_code=status, media_type="application/json", headers=headers)


def errors(status: int, problems: list[dict[str, Any]]) -> Response:
    """`{"errors": [{field, code, message}, …]}` with the given status."""
    return json_response({"errors": problems}, status)


async def on_record_error(_request: Request, exc: Exception) -> Response:
    """The service's errors keep their status and problems."""
    assert isinstance(exc, RecordError)
    return errors(exc.status, [p.as_json() for p in exc.problems])


async def on_validation_error(_request: Request, exc: Exception) -> Response:
    """FastAPI's request validation (path, query, JSON syntax) in the same shape, as 422."""
    assert isinstance(exc, RequestValidationError)
    problems = []
    for item in exc.errors():
        location = [str(p) for p in item.get("loc", ()) if p != "body"]
        problems.append(
            {
                "field": ".".join(location) or None,
                "code": str(item.get("type", "invalid")),
                "message": str(item.get("msg", "invalid")),
            }
        )
    return errors(422, problems)


async def on_http_error(_request: Request, exc: Exception) -> Response:
    """Starlette's own errors (404 route, 405 method) in the same shape."""
    assert isinstance(exc, HTTPException)
    code = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}.get(exc.status_code, "http_error")
    return errors(exc.status_code, [{"field": None, "code": code, "message": str(exc.detail)}])


# SQLite's busy timeout ran out, or PostgreSQL gave up on a lock or a serialization conflict.
BUSY_MESSAGES = ("database is locked", "database table is locked")
BUSY_STATES = {"40001", "40P01", "55P03"}


async def on_database_busy(_request: Request, exc: Exception) -> Response:
    """The database was too busy to take a write: 503 with Retry-After, not a 500."""
    assert isinstance(exc, OperationalError)
    state = getattr(exc.orig, "sqlstate", None)
    if state not in BUSY_STATES and not any(text in str(exc.orig) for text in BUSY_MESSAGES):
        raise exc
    problem = {"field": None, "code": "busy", "message": "the database is busy; try again in a moment"}
    return json_response({"errors": [problem]}, 503, headers={"Retry-After": "1"})
