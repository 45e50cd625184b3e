"""Routes of an app's dashboards: the list, one dashboard's widgets, a widget's data (JSON, CSV, XLSX)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends, Path, Request, Response

from runtime.api.form_routes import ERRORS
from runtime.api.responses import json_response
from runtime.identity.actor import Actor
from runtime.records.compiled import CompiledApp
from runtime.reports.params import NAMES
from runtime.reports.service import ReportsService


def _key(what: str) -> Any:
    return Path(max_length=40, pattern=r"^[a-z][a-z0-9_]*$", description=f"The {what}'s key")


DashboardKey, WidgetKey = _key("dashboard"), _key("widget")
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PARAMETERS = [
    {"name": "from", "in": "query", "required": False, "schema": {"type": "string", "format": "date"}},
    {"name": "to", "in": "query", "required": False, "schema": {"type": "string", "format": "date"}},
    {"name": "owner", "in": "query", "required": False, "schema": {"type": "integer", "minimum": 1}},
    {"name": "department", "in": "query", "required": False, "schema": {"type": "integer", "minimum": 1}},
]
DATA = {
    "type": "object",
    "properties": {
        "widget": {"type": "string"},
        "chart": {"type": "string"},
        "columns": {"type": "array", "items": {"type": "object"}},
        "rows": {"type": "array", "items": {"type": "object"}},
    },
    "required": ["widget", "chart", "columns", "rows"],
}


def dashboard_router(reports: ReportsService, app: CompiledApp, who: Callable[[Request], Actor]) -> APIRouter:
    """The dashboard routes of one app (registered before its form routes)."""
    Caller = Depends(who)
    app_key = app.app.app
    router = APIRouter(prefix=f"/api/v1/{app_key}/dashboards", tags=[f"{app_key}.dashboards"])
    errors = {
        code: {"description": text, **ERRORS}
        for code, text in (
            ("401", "Not signed in"),
            ("403", "Not allowed"),
            ("404", "No such dashboard or widget"),
            ("422", "Invalid parameters"),
        )
    }

    def list_dashboards(actor: Actor = Caller) -> Response:
        return json_response({"items": reports.dashboards(app_key, actor)})

    def one(dashboard: str = DashboardKey, actor: Actor = Caller) -> Response:
        return json_response(reports.spec(app_key, dashboard, actor))

    def data(
        request: Request, dashboard: str = DashboardKey, widget: str = WidgetKey, actor: Actor = Caller
    ) -> Response:
        return json_response(reports.data(app_key, dashboard, widget, _pairs(request), actor))

    def export(kind: str) -> Callable[..., Response]:
        def download(
            request: Request, dashboard: str = DashboardKey, widget: str = WidgetKey, actor: Actor = Caller
        ) -> Response:
            from runtime.records.export import table_csv, table_xlsx

            columns, rows = reports.table(app_key, dashboard, widget, _pairs(request), actor)
            name = f"{dashboard}-{widget}.{kind}"
            body = table_csv(columns, rows) if kind == "csv" else table_xlsx(columns, rows, widget[:31])
            media = "text/csv; charset=utf-8" if kind == "csv" else XLSX
            return Response(
                body, media_type=media, headers={"Content-Disposition": f'attachment; filename="{name}"'}
            )

        return download

    ok = {"200": {"description": "OK", "content": {"application/json": {"schema": {"type": "object"}}}}}
    router.add_api_route(
        "",
        list_dashboards,
        methods=["GET"],
        summary="The dashboards I may open",
        operation_id=f"dashboards_{app_key}",
        openapi_extra={"responses": {**ok, **errors}},
    )
    router.add_api_route(
        "/{dashboard}",
        one,
        methods=["GET"],
        summary="A dashboard's widgets",
        operation_id=f"dashboard_{app_key}",
        openapi_extra={"responses": {**ok, **errors}},
    )
    router.add_api_route(
        "/{dashboard}/widgets/{widget}/data",
        data,
        methods=["GET"],
        summary="A widget's data: one aggregate query with my row scope",
        operation_id=f"widget_data_{app_key}",
        openapi_extra={
            "parameters": PARAMETERS,
            "responses": {
                "200": {"description": "OK", "content": {"application/json": {"schema": DATA}}},
                **errors,
            },
        },
    )
    for kind, media in (("csv", "text/csv"), ("xlsx", XLSX)):
        router.add_api_route(
            f"/{{dashboard}}/widgets/{{widget}}/data.{kind}",
            export(kind),
            methods=["GET"],
            summary=f"A widget's data as {kind.upper()} (needs the export permission)",
            operation_id=f"widget_{kind}_{app_key}",
            openapi_extra={
                "parameters": PARAMETERS,
                "responses": {
                    "200": {
                        "description": "OK",
                        "content": {media: {"schema": {"type": "string", "format": "binary"}}},
                    },
                    **errors,
                },
            },
        )
    return router


def _pairs(request: Request) -> list[tuple[str, str]]:
    return [(k, v) for k, v in request.query_params.multi_items()]


__all__ = ["NAMES", "dashboard_router"]
