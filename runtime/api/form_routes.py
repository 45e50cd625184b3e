"""The REST routes of one form: list, create, bulk create, get, update, delete."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Body, Depends, Header, Path, Query, Request, Response

from runtime.api.responses import json_response
from runtime.api.schemas import DECIMAL_TEXT, REF, schema_names
from runtime.identity.actor import Actor
from runtime.records.compiled import CompiledApp, CompiledForm
from runtime.records.errors import invalid
from runtime.records.query import SYSTEM_TYPES
from runtime.records.service import RecordsService

RecordId = Path(ge=1, le=2**63 - 1, description="The record's id")
AllowDuplicate = Query(
    default=False, description="Save even when the record looks like a duplicate of another (no 409)"
)
Who = Callable[[Request], Actor]
# What `_version` reads: the record version, as the ETag wrote it ("3"), weak (W/"3") or bare.
VERSION_TAG = r'^(W/)?"?[0-9]{1,18}"?$'


def _version_schema(schema: dict[str, Any]) -> None:
    """A header is text or absent, never null: `{"type": "string", "pattern": …}`."""
    schema.pop("anyOf", None)
    schema.update(type="string", pattern=VERSION_TAG)


IfMatch = Header(
    default=None,
    description='The version the change was based on, from the ETag of a read, such as "3": '
    "answers 409 when the record changed since",
    json_schema_extra=_version_schema,
)
ERRORS = {"content": {"application/json": {"schema": {"$ref": REF + "ErrorList"}}}}


def form_router(service: RecordsService, app: CompiledApp, form: CompiledForm, who: Who) -> APIRouter:
    """Routes of `/api/v1/{app}/{form}`, documented with the form's own schemas."""
    Caller = Depends(who)
    names = schema_names(app, form)
    app_key, form_key = app.app.app, form.key
    router = APIRouter(prefix=f"/api/v1/{app_key}/{form_key}", tags=[f"{app_key}.{form_key}"])
    label = form.form.label.text()

    def list_records(request: Request, actor: Actor = Caller) -> Response:
        params = request.query_params.multi_items()
        return json_response(service.list_page(app_key, form_key, params, actor))

    def create_record(
        body: Any = Body(...), allow_duplicate: bool = AllowDuplicate, actor: Actor = Caller
    ) -> Response:
        record = service.create(app_key, form_key, body, actor, allow_duplicate=allow_duplicate)
        return json_response(record, 201)

    def create_many(
        body: Any = Body(...), allow_duplicate: bool = AllowDuplicate, actor: Actor = Caller
    ) -> Response:
        records = service.create_many(app_key, form_key, body, actor, allow_duplicate=allow_duplicate)
        return json_response(records, 201)

    def get_record(record_id: int = RecordId, actor: Actor = Caller) -> Response:
        record = service.get(app_key, form_key, record_id, actor)
        return json_response(record, headers={"ETag": f'"{record["version"]}"'})

    def update_record(
        record_id: int = RecordId,
        body: Any = Body(...),
        if_match: str | None = IfMatch,
        allow_duplicate: bool = AllowDuplicate,
        actor: Actor = Caller,
    ) -> Response:
        version = _version(if_match)
        record = service.update(
            app_key, form_key, record_id, body, version, actor, allow_duplicate=allow_duplicate
        )
        return json_response(record, headers={"ETag": f'"{record["version"]}"'})

    def delete_record(
        record_id: int = RecordId, if_match: str | None = IfMatch, actor: Actor = Caller
    ) -> Response:
        service.delete(app_key, form_key, record_id, _version(if_match), actor)
        return Response(status_code=204)

    def record_history(record_id: int = RecordId, actor: Actor = Caller) -> Response:
        return json_response({"items": service.history(app_key, form_key, record_id, actor)})

    one = {"$ref": REF + names["read"]}
    router.add_api_route(
        "",
        list_records,
        methods=["GET"],
        summary=f"List {label} records",
        operation_id=f"list_{app_key}_{form_key}",
        openapi_extra={
            "parameters": list_parameters(form),
            "responses": _responses("200", {"$ref": REF + names["page"]}),
        },
    )
    router.add_api_route(
        "",
        create_record,
        methods=["POST"],
        status_code=201,
        summary=f"Create a {label}",
        operation_id=f"create_{app_key}_{form_key}",
        openapi_extra={
            "requestBody": _body({"$ref": REF + names["create"]}),
            "responses": _responses("201", one),
        },
    )
    router.add_api_route(
        "/bulk",
        create_many,
        methods=["POST"],
        status_code=201,
        summary=f"Create several {label} records, all or none",
        operation_id=f"bulk_create_{app_key}_{form_key}",
        openapi_extra={
            "requestBody": _body(
                {"type": "array", "minItems": 1, "maxItems": 1000, "items": {"$ref": REF + names["create"]}}
            ),
            "responses": _responses("201", {"type": "array", "items": one}),
        },
    )
    router.add_api_route(
        "/{record_id}",
        get_record,
        methods=["GET"],
        summary=f"Read a {label}",
        operation_id=f"get_{app_key}_{form_key}",
        openapi_extra={"responses": _responses("200", one)},
    )
    router.add_api_route(
        "/{record_id}",
        update_record,
        methods=["PATCH"],
        summary=f"Change a {label}",
        operation_id=f"update_{app_key}_{form_key}",
        openapi_extra={
            "requestBody": _body({"$ref": REF + names["update"]}),
            "responses": _responses("200", one),
        },
    )
    router.add_api_route(
        "/{record_id}",
        delete_record,
        methods=["DELETE"],
        status_code=204,
        summary=f"Delete a {label}",
        operation_id=f"delete_{app_key}_{form_key}",
        openapi_extra={"responses": {"204": {"description": "Deleted"}, **_error_responses()}},
    )
    router.add_api_route(
        "/{record_id}/history",
        record_history,
        methods=["GET"],
        summary=f"The audit trail of a {label}",
        operation_id=f"history_{app_key}_{form_key}",
        openapi_extra={"responses": _responses("200", {"$ref": REF + "History"})},
    )
    return router


def _version(if_match: str | None) -> int | None:
    if if_match is None:
        return None
    text = if_match.strip().removeprefix("W/").strip('"')
    if not re.fullmatch(r"[0-9]{1,18}", text):
        raise invalid("If-Match", "invalid", 'If-Match must hold the record version, such as "3"')
    return int(text)


def _body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def _responses(status: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {
        status: {"description": "OK", "content": {"application/json": {"schema": schema}}},
        **_error_responses(),
    }


def _error_responses() -> dict[str, Any]:
    return {
        code: {"description": text, **ERRORS}
        for code, text in (
            ("401", "Not signed in: no valid token or session"),
            ("403", "Your roles do not allow this"),
            ("404", "No such record"),
            ("409", "Version conflict or referenced record"),
            ("422", "Invalid input: every problem with its field path"),
        )
    }


def list_parameters(form: CompiledForm) -> list[dict[str, Any]]:
    """The query parameters of the list route: paging, sort, `where`, `count` and a filter per
    field, each typed as `runtime.records.query` reads it."""
    sortable = [key for key in (*form.fields, *SYSTEM_TYPES) if filter_type(form, key) != "multi_select"]
    one_key = "-?(" + "|".join(re.escape(key) for key in sortable) + ")"
    params: list[dict[str, Any]] = [
        {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 500}},
        {"name": "offset", "in": "query", "schema": {"type": "integer", "minimum": 0, "maximum": 10**9}},
        {
            "name": "sort",
            "in": "query",
            "schema": {"type": "string", "pattern": f"^{one_key}(,{one_key})*$"},
            "description": "Comma-separated field keys; '-' before a key sorts descending",
        },
        {
            "name": "where",
            "in": "query",
            "schema": {"type": "string", "maxLength": 2000},
            "description": "A condition in the expression language, such as "
            "budget > 1000 and source in ['seo', 'ads'] (see docs/expressions.md)",
        },
        {
            "name": "count",
            "in": "query",
            "schema": {"type": "boolean"},
            "description": "Also answer the total number of matching records",
        },
    ]
    for key in (*form.fields, *SYSTEM_TYPES):
        kind = filter_type(form, key)
        if kind == "multi_select":
            name, what = f"{key}__contains", "holds this option"
        else:
            name, what = key, "equals"
        params.append(
            {
                "name": name,
                "in": "query",
                "schema": _filter_schema(form, key, kind),
                "description": f"Filter: {key} {what}. Other operators: {key}__ne, __lt, "
                "__lte, __gt, __gte, __in, __contains, __startswith, __isnull",
            }
        )
    return params


def filter_type(form: CompiledForm, key: str) -> str:
    """The field type a filter on `key` converts its value by."""
    return form.fields[key].type if key in form.fields else SYSTEM_TYPES[key]


def _filter_schema(form: CompiledForm, key: str, kind: str) -> dict[str, Any]:
    """A filter value as the list query converts it (`runtime.records.query._value`)."""
    spec = form.fields[key].spec if key in form.fields else None
    if kind in ("link", "user", "department") or key == "id":
        return {"type": "integer", "minimum": 1, "maximum": 2**63 - 1}
    if kind in ("select", "multi_select"):
        return {"type": "string", "enum": spec.option_keys() if spec is not None else []}
    if kind == "integer" and spec is None:
        return {"type": "integer", "minimum": 0, "maximum": 2**31 - 1}  # `version`, a 32-bit column
    if kind == "integer":
        low, high = getattr(spec, "min", None), getattr(spec, "max", None)
        return {
            "type": "integer",
            "minimum": -(2**63) if low is None else low,
            "maximum": 2**63 - 1 if high is None else high,
        }
    if kind in ("decimal", "money", "percent"):
        return {"type": "string", "pattern": DECIMAL_TEXT}
    if kind == "boolean":
        return {"type": "boolean"}
    if kind == "date":
        return {"type": "string", "format": "date"}
    if kind == "datetime":
        return {"type": "string", "format": "date-time"}
    return {"type": "string"}  # text of any kind, and attachment ids
