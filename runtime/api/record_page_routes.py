"""Routes of what a record page offers beyond the record: related lists and make actions.

`GET /api/v1/{app}/{form}/{id}/related/{form}.{link}` pages the records of a related list
(one route per list of the form's layout, documented with the listed form's page
schema); `GET …/{id}/actions` lists the make actions open to the caller and
`POST …/{id}/actions/{key}` takes one (201 with the new record).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends, Request, Response

from runtime.api.form_routes import ERRORS, RecordId, list_parameters
from runtime.api.responses import json_response
from runtime.api.schemas import REF, schema_names
from runtime.identity.actor import Actor
from runtime.model.record_page import MakeAction, RelatedList
from runtime.process.service import ProcessService
from runtime.records.compiled import CompiledApp, CompiledForm
from runtime.records.service import RecordsService

PAGING = ("limit", "offset", "sort")
ACTION = {
    "type": "object",
    "properties": {
        "key": {"type": "string"},
        "label": {"type": ["object", "null"]},
        "form": {"type": "string", "description": "The form of the record the action makes"},
        "ready": {
            "type": "boolean",
            "description": "False when the record's state or `when` does not allow it now",
        },
        "reason": {"type": ["string", "null"]},
    },
    "required": ["key", "form", "ready"],
}


def _errors(*codes: tuple[str, str]) -> dict[str, Any]:
    return {code: {"description": text, **ERRORS} for code, text in codes}


def _ok(status: str, schema: dict[str, Any]) -> dict[str, Any]:
    text = "Created" if status == "201" else "OK"
    return {status: {"description": text, "content": {"application/json": {"schema": schema}}}}


def record_page_router(
    service: RecordsService,
    process: ProcessService,
    app: CompiledApp,
    form: CompiledForm,
    who: Callable[[Request], Actor],
) -> APIRouter:
    """The related lists and make actions of one form's records."""
    Caller = Depends(who)
    app_key, form_key = app.app.app, form.key
    router = APIRouter(prefix=f"/api/v1/{app_key}/{form_key}", tags=[f"{app_key}.{form_key}"])
    for spec in form.form.related_lists():
        if spec.form_key in app.forms:
            _related_route(router, service, app, form, spec, Caller)
    if form.form.actions:

        def list_actions(record_id: int = RecordId, actor: Actor = Caller) -> Response:
            return json_response({"items": process.actions(app_key, form_key, record_id, actor)})

        router.add_api_route(
            "/{record_id}/actions",
            list_actions,
            methods=["GET"],
            summary="The make actions open to the caller, ready or not",
            operation_id=f"actions_{app_key}_{form_key}",
            openapi_extra={
                "responses": {
                    **_ok(
                        "200",
                        {
                            "type": "object",
                            "properties": {"items": {"type": "array", "items": ACTION}},
                            "required": ["items"],
                        },
                    ),
                    **_errors(("401", "Not signed in"), ("403", "Not allowed"), ("404", "No such record")),
                }
            },
        )
        for action in form.form.actions:
            if action.make in app.forms:
                _make_route(router, process, app, form, action, Caller)
    return router


def _related_route(
    router: APIRouter,
    service: RecordsService,
    app: CompiledApp,
    form: CompiledForm,
    spec: RelatedList,
    caller: Any,
) -> None:
    app_key, form_key, relation = app.app.app, form.key, spec.related
    target = app.forms[spec.form_key]

    def related(request: Request, record_id: int = RecordId, actor: Actor = caller) -> Response:
        params = request.query_params.multi_items()
        return json_response(service.related_page(app_key, form_key, record_id, relation, params, actor))

    page = {"allOf": [{"$ref": REF + schema_names(app, target)["page"]}, {"required": ["total"]}]}
    router.add_api_route(
        f"/{{record_id}}/related/{relation}",
        related,
        methods=["GET"],
        summary=f"The {target.form.label.text()} records whose {spec.link} is this {form.form.label.text()}",
        operation_id=f"related_{app_key}_{form_key}_{spec.form_key}_{spec.link}",
        openapi_extra={
            "parameters": [p for p in list_parameters(target) if p["name"] in PAGING],
            "responses": {
                **_ok("200", page),
                **_errors(
                    ("401", "Not signed in"),
                    ("403", f"You may not read {spec.form_key} records"),
                    ("404", "No such record, or it is outside your scope"),
                    ("422", "Invalid paging or sort"),
                ),
            },
        },
    )


def _make_route(
    router: APIRouter,
    process: ProcessService,
    app: CompiledApp,
    form: CompiledForm,
    action: MakeAction,
    caller: Any,
) -> None:
    app_key, form_key, key = app.app.app, form.key, action.key
    made = app.forms[action.make]

    def take(record_id: int = RecordId, actor: Actor = caller) -> Response:
        made_form, record = process.make(app_key, form_key, record_id, key, actor)
        location = f"/api/v1/{app_key}/{made_form}/{record['id']}"
        return json_response(record, 201, headers={"Location": location})

    only_id = {"type": "object", "properties": {"id": {"type": "integer"}}, "required": ["id"]}
    router.add_api_route(
        f"/{{record_id}}/actions/{key}",
        take,
        methods=["POST"],
        status_code=201,
        summary=f"{action.title()}: make a {made.form.label.text()} from this {form.form.label.text()}",
        operation_id=f"make_{app_key}_{form_key}_{key}",
        openapi_extra={
            "responses": {
                **_ok("201", {"anyOf": [{"$ref": REF + schema_names(app, made)["read"]}, only_id]}),
                **_errors(
                    ("401", "Not signed in"),
                    ("403", "Your roles do not allow this action"),
                    ("404", "No such record, or it is outside your scope"),
                    ("409", "Not possible in the record's state"),
                    ("422", "The action's condition does not hold, or the new record is invalid"),
                ),
            }
        },
    )
