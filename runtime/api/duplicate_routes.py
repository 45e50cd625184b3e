"""Routes to find a record's possible duplicates and to merge them into it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Body, Depends, Path, Request, Response

from runtime.api.form_routes import ERRORS
from runtime.api.responses import json_response
from runtime.api.schemas import REF, schema_names
from runtime.identity.actor import Actor
from runtime.records.compiled import CompiledApp, CompiledForm
from runtime.records.service import RecordsService

RecordId = Path(ge=1, le=2**63 - 1, description="The record's id")
MERGE_BODY = {
    "type": "object",
    "properties": {
        "merge": {
            "type": "array",
            "items": {"type": "integer", "minimum": 1},
            "minItems": 1,
            "description": "Ids of the records merged into this one",
        },
        "values": {
            "type": "object",
            "additionalProperties": {"type": "integer", "minimum": 1},
            "description": "For each field, the id of the record whose value the survivor keeps",
        },
    },
    "required": ["merge"],
    "additionalProperties": False,
}


def duplicate_router(
    service: RecordsService, app: CompiledApp, form: CompiledForm, who: Callable[[Request], Actor]
) -> APIRouter:
    """`GET …/{id}/duplicates` and `POST …/{id}/merge` for a form with duplicate groups."""
    Caller = Depends(who)
    names = schema_names(app, form)
    app_key, form_key = app.app.app, form.key
    router = APIRouter(prefix=f"/api/v1/{app_key}/{form_key}", tags=[f"{app_key}.{form_key}"])
    one = {"$ref": REF + names["read"]}
    errors = {
        code: {"description": text, **ERRORS}
        for code, text in (
            ("401", "Not signed in"),
            ("403", "Not allowed"),
            ("404", "No such record"),
            ("422", "Invalid merge request"),
        )
    }

    def list_duplicates(record_id: int = RecordId, actor: Actor = Caller) -> Response:
        return json_response({"items": service.duplicates_of(app_key, form_key, record_id, actor)})

    def merge(record_id: int = RecordId, body: Any = Body(...), actor: Actor = Caller) -> Response:
        return json_response(service.merge(app_key, form_key, record_id, body, actor))

    page = {"type": "object", "properties": {"items": {"type": "array", "items": one}}, "required": ["items"]}
    router.add_api_route(
        "/{record_id}/duplicates",
        list_duplicates,
        methods=["GET"],
        summary="Records that may be duplicates of this one",
        operation_id=f"duplicates_{app_key}_{form_key}",
        openapi_extra={
            "responses": {
                "200": {"description": "OK", "content": {"application/json": {"schema": page}}},
                **errors,
            }
        },
    )
    router.add_api_route(
        "/{record_id}/merge",
        merge,
        methods=["POST"],
        summary="Merge other records into this one, moving their links and child rows",
        operation_id=f"merge_{app_key}_{form_key}",
        openapi_extra={
            "requestBody": {"required": True, "content": {"application/json": {"schema": MERGE_BODY}}},
            "responses": {
                "200": {"description": "The survivor", "content": {"application/json": {"schema": one}}},
                **errors,
            },
        },
    )
    return router
