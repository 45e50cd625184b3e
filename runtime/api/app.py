"""Build the FastAPI application that serves one or more loaded apps."""

from __future__ import annotations

from typing import Any

from fastapi import Depends, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException

from runtime.api.auth import authenticate, require_user
from runtime.api.auth_routes import auth_router
from runtime.api.dashboard_routes import dashboard_router
from runtime.api.document_routes import document_router
from runtime.api.duplicate_routes import duplicate_router
from runtime.api.export_routes import export_router
from runtime.api.file_routes import file_router
from runtime.api.form_routes import form_router
from runtime.api.https import HttpsOnly, https_only
from runtime.api.intake_routes import intake_router
from runtime.api.limits import RequestLimits, max_body
from runtime.api.process_routes import inbox_router, record_process_router
from runtime.api.record_page_routes import record_page_router
from runtime.api.responses import (
    json_response,
    on_database_busy,
    on_http_error,
    on_record_error,
    on_validation_error,
)
from runtime.api.schemas import COMMON, REF, form_components
from runtime.api.webhook_routes import webhook_router
from runtime.documents.service import documents_for
from runtime.identity.actor import Actor
from runtime.intake.service import IntakeService
from runtime.model.app import OPERATIONS
from runtime.process.engine import engine_for
from runtime.process.service import ProcessService
from runtime.records.access import access_for
from runtime.records.errors import RecordError
from runtime.records.files import FileStore
from runtime.records.service import RecordsService
from runtime.reports.service import ReportsService
from runtime.web.intake_pages import intake_page_router
from runtime.web.router import install_web


def create_api(service: RecordsService, store: FileStore) -> FastAPI:
    """The REST API of every app the service holds, with a spec that shows every field."""
    api = FastAPI(
        title="Formloom",
        version="0.1.0",
        description="Records of the loaded apps. Errors answer {errors: [{field, code, message}]}.",
    )
    api.add_exception_handler(RecordError, on_record_error)
    api.add_exception_handler(RequestValidationError, on_validation_error)
    api.add_exception_handler(HTTPException, on_http_error)
    api.add_exception_handler(OperationalError, on_database_busy)  # 503 when a lock wait runs out
    # body size limits, and no NUL or lone surrogate in bodies, queries or headers (413, 422)
    api.add_middleware(RequestLimits, max_body=max_body(), max_upload=store.max_size)

    def who(request: Request) -> Actor:
        return authenticate(service.engine, request)

    def signed_in(request: Request) -> Actor:
        return require_user(authenticate(service.engine, request))

    engine_for(service).files = store  # `document` effects keep their PDFs here
    process = ProcessService(engine_for(service))
    reports = ReportsService(service)
    for app in service.apps.values():
        if app.app.dashboards:
            api.include_router(dashboard_router(reports, app, signed_in))
        for form in app.forms.values():
            api.include_router(export_router(service, app, form, who))  # before `/{record_id}`
            api.include_router(form_router(service, app, form, who))
            if form.form.duplicates:
                api.include_router(duplicate_router(service, app, form, who))
            api.include_router(record_process_router(process, app, form, who))
            if form.form.related_lists() or form.form.actions:
                api.include_router(record_page_router(service, process, app, form, who))
            if app.app.documents_of(form.key):
                api.include_router(document_router(documents_for(service), app, form, who))
    api.include_router(inbox_router(process, signed_in))
    api.include_router(file_router(service, store, signed_in))
    api.include_router(webhook_router(service.engine, signed_in))
    api.include_router(auth_router(service.engine))
    intakes = IntakeService(service)  # public forms: no sign-in (docs/security.md#public-intakes)
    api.include_router(intake_router(intakes))
    api.include_router(intake_page_router(intakes))
    install_web(api, service, process, reports, store)
    if https_only():
        api.add_middleware(HttpsOnly)  # Secure cookies and HSTS (FORMLOOM_HTTPS_ONLY, serve --https-only)

    def list_apps(actor: Actor = Depends(signed_in)) -> Response:
        summaries = [_app_summary(a, actor) for a in service.apps.values()]
        return json_response({"apps": summaries})

    api.add_api_route(
        "/api/v1/apps",
        list_apps,
        methods=["GET"],
        summary="The apps served",
        operation_id="list_apps",
        tags=["apps"],
    )
    api.openapi = lambda: _spec(api, service)  # type: ignore[method-assign]
    return api


def _app_summary(app: Any, actor: Actor) -> dict[str, Any]:
    return {
        "key": app.app.app,
        "label": app.app.label.model_dump(exclude_none=True),
        "version": app.app.version,
        "forms": [
            {
                "key": f.key,
                "label": f.form.label.model_dump(exclude_none=True),
                "url": f"/api/v1/{app.app.app}/{f.key}",
                "can": [op for op in OPERATIONS if access_for(f, actor).can(op)],
            }
            for f in app.forms.values()
            if access_for(f, actor).can("read") or access_for(f, actor).can("create")
        ],
    }


def _body_errors(spec: dict[str, Any]) -> None:
    """Every operation that takes a body may answer 400 (it cannot be parsed, such as broken
    multipart) and 413 (over the size limit, runtime/api/limits.py)."""
    errors = {"content": {"application/json": {"schema": {"$ref": REF + "ErrorList"}}}}
    for operations in spec.get("paths", {}).values():
        for operation in operations.values():
            if isinstance(operation, dict) and "requestBody" in operation:
                responses = operation.setdefault("responses", {})
                responses.setdefault("400", {"description": "The body cannot be parsed", **errors})
                responses.setdefault("413", {"description": "The body is larger than allowed", **errors})


def _point_refs(node: Any, old: str, new: str) -> None:
    """Every `{"$ref": old}` inside `node` made `{"$ref": new}` (validation errors answer ErrorList)."""
    if isinstance(node, dict):
        if node.get("$ref") == old:
            node["$ref"] = new
        for value in node.values():
            _point_refs(value, old, new)
    elif isinstance(node, list):
        for item in node:
            _point_refs(item, old, new)


def _spec(api: FastAPI, service: RecordsService) -> dict[str, Any]:
    if api.openapi_schema is None:
        spec = get_openapi(
            title=api.title, version=api.version, description=api.description, routes=api.routes
        )
        schemas = spec.setdefault("components", {}).setdefault("schemas", {})
        schemas.update(COMMON)
        for app in service.apps.values():
            for form in app.forms.values():
                schemas.update(form_components(app, form))
        for name in ("HTTPValidationError", "ValidationError"):
            schemas.pop(name, None)
        _point_refs(spec, REF + "HTTPValidationError", REF + "ErrorList")  # FastAPI's own 422s
        _body_errors(spec)
        spec["components"]["securitySchemes"] = {
            "bearer": {
                "type": "http",
                "scheme": "bearer",
                "description": "An API token from `formloom token create`",
            },
            "session": {
                "type": "apiKey",
                "in": "cookie",
                "name": "formloom_session",
                "description": "The web session; writes also need the X-CSRF-Token header",
            },
        }
        spec["security"] = [{"bearer": []}, {"session": []}]
        api.openapi_schema = spec
    return api.openapi_schema
