"""`POST /api/v1/public/{app}/{intake}`: the public intakes' JSON and form-encoded door, with CORS.

No sign-in: the intake decides whose permissions the write runs with. A browser request
from another site must come from one of the intake's `allowed_origins` (403 otherwise),
and gets `Access-Control-Allow-Origin` back, also on its errors, so the embedding page
can read them; requests without an `Origin` header (servers, curl) and from this server's
own pages pass. Every answer to a submission the intake took — stored, merged, dropped as
a duplicate, caught by the honeypot — is the same 202.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from runtime.api.responses import errors, json_response
from runtime.api.schemas import REF, _nullable, _write_value
from runtime.intake.form_input import body_from_form
from runtime.intake.service import TOKEN, IntakeService, RateLimited
from runtime.model.intake import Intake
from runtime.records.compiled import CompiledApp
from runtime.records.errors import FieldProblem, InvalidRecord, RecordError

FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
PREFLIGHT_SECONDS = "600"
ACCEPTED = {
    "type": "object",
    "properties": {
        "status": {"type": "string", "enum": ["received"]},
        "message": {"type": "string", "description": "The intake's thank-you text"},
    },
    "required": ["status", "message"],
}


def intake_router(intakes: IntakeService) -> APIRouter:
    """One documented POST (and its CORS preflight) per intake of the served apps."""
    router = APIRouter(tags=["public"])
    for app, intake in intakes.all():
        _add(router, intakes, app, intake)
    return router


def _add(router: APIRouter, intakes: IntakeService, app: CompiledApp, intake: Intake) -> None:
    app_key, key = app.app.app, intake.intake
    path = f"/api/v1/public/{app_key}/{key}"

    async def submit(request: Request) -> Response:
        allowed, cors = origin_verdict(intake, request)
        if not allowed:
            return _refused_origin()
        try:
            body = await read_body(app, intake, request)
            address = client_address(request)
            await run_in_threadpool(intakes.submit, app_key, key, body, address)
        except RecordError as error:
            answer = errors(error.status, [p.as_json() for p in error.problems])
            if isinstance(error, RateLimited):
                answer.headers["Retry-After"] = str(error.retry_after)
            return with_cors(answer, cors)
        message = thank_you(intake, language(request))
        return with_cors(json_response({"status": "received", "message": message}, 202), cors)

    async def preflight(request: Request) -> Response:
        allowed, cors = origin_verdict(intake, request)
        if not allowed or cors is None:
            return _refused_origin()
        answer = Response(status_code=204)
        answer.headers["Access-Control-Allow-Methods"] = "POST"
        answer.headers["Access-Control-Allow-Headers"] = "Content-Type, Accept-Language"
        answer.headers["Access-Control-Max-Age"] = PREFLIGHT_SECONDS
        return with_cors(answer, cors)

    router.add_api_route(
        path,
        submit,
        methods=["POST"],
        status_code=202,
        summary=f"Submit the public form '{key}' (no sign-in)",
        operation_id=f"submit_public_{app_key}_{key}",
        openapi_extra=_operation(app, intake),
    )
    router.add_api_route(path, preflight, methods=["OPTIONS"], include_in_schema=False)


async def read_body(app: CompiledApp, intake: Intake, request: Request) -> Any:
    """JSON, or form fields for the form content types; 422 for JSON that does not parse."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind in FORM_TYPES:
        return body_from_form(app, intake, await request.form())
    raw = await request.body()
    try:
        return json.loads(raw) if raw.strip() else {}
    except (ValueError, UnicodeDecodeError):
        raise _invalid_json() from None


def _invalid_json() -> InvalidRecord:
    return InvalidRecord([FieldProblem(None, "json_invalid", "the body is not valid JSON")])


def origin_verdict(intake: Intake, request: Request) -> tuple[bool, str | None]:
    """(may it post?, the origin to allow by CORS). No Origin header: a server, allowed;
    this server's own page: allowed, no CORS needed; an allowed origin: allowed with CORS."""
    origin = request.headers.get("origin")
    if origin is None:
        return True, None
    if origin in intake.allowed_origins:
        return True, origin
    host = request.headers.get("host", "")
    if origin != "null" and host and urlsplit(origin).netloc.lower() == host.lower():
        return True, None
    return False, None


def with_cors(response: Response, origin: str | None) -> Response:
    """The answer, readable by the page of `origin` (when there is one)."""
    response.headers["Vary"] = "Origin"
    if origin is not None:
        response.headers["Access-Control-Allow-Origin"] = origin
    return response


def _refused_origin() -> Response:
    problem = {"field": "header.origin", "code": "origin", "message": "this site may not post to this form"}
    return with_cors(errors(403, [problem]), None)


def client_address(request: Request) -> str:
    """The client's address: the peer's, or what a trusted proxy said (serve --forwarded-allow-ips)."""
    return request.client.host if request.client else "unknown"


def language(request: Request) -> str:
    """`zh` or `en`: the `lang` query parameter, else the first language the browser accepts."""
    chosen = request.query_params.get("lang")
    if chosen in ("zh", "en"):
        return chosen
    accepted = request.headers.get("accept-language", "").strip().lower()
    return "en" if accepted.startswith("en") else "zh"


def thank_you(intake: Intake, language: str) -> str:
    """The intake's thank-you text in `language`."""
    if intake.thank_you is not None:
        return intake.thank_you.text(language)
    return "Thank you: we have received your message." if language == "en" else "谢谢！我们已收到您的信息。"


def _operation(app: CompiledApp, intake: Intake) -> dict[str, Any]:
    """The operation's spec: no security, the intake's fields as the body, every answer."""
    form = app.forms[intake.form]
    properties: dict[str, Any] = {}
    for key in intake.fields:
        spec = form.fields[key].spec
        properties[key] = _nullable(_write_value(spec))
        if spec.help:
            properties[key]["description"] = spec.help.text()
    properties[intake.honeypot] = {"type": "string", "maxLength": 0, "description": "Leave empty"}
    properties[TOKEN] = {"type": "string", "maxLength": 100, "description": "The page's signed time token"}
    given = {**intake.defaults}
    required = [
        key
        for key in intake.fields
        if form.fields[key].spec.required
        and given.get(key) is None
        and getattr(form.fields[key].spec, "default", None) is None
    ]
    body: dict[str, Any] = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        body["required"] = required
    problem = {"content": {"application/json": {"schema": {"$ref": REF + "ErrorList"}}}}
    return {
        "security": [],
        "description": (
            "A public form: no sign-in. The same 202 answers every submission taken, whether it was "
            "stored, merged into a record it duplicates, or dropped."
        ),
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": body}, FORM_TYPES[0]: {"schema": body}},
        },
        "responses": {
            "202": {"description": "Received", "content": {"application/json": {"schema": ACCEPTED}}},
            "403": {"description": "The Origin may not post here", **problem},
            "422": {"description": "A value is missing or wrong, or a field is unknown", **problem},
            "429": {
                "description": "Too many submissions from this address",
                "headers": {"Retry-After": {"schema": {"type": "integer"}}},
                **problem,
            },
            "503": {"description": "The form cannot take submissions now", **problem},
        },
    }
