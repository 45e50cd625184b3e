"""Export routes of one form: the records of a list as a CSV or XLSX file.

`GET /api/v1/{app}/{form}/export.csv` and `…/export.xlsx` take the list's query
parameters (filters, `where`, `sort`; paging ones are ignored) and `fields`. The
router must be included before the form's `/{record_id}` routes, which would
otherwise take `export.csv` for a (bad) record id.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import closing
from typing import Any

from fastapi import APIRouter, Depends, Request, Response

from runtime.api.form_routes import ERRORS, list_parameters
from runtime.identity.actor import Actor
from runtime.records.compiled import CompiledApp, CompiledForm
from runtime.records.export import XLSX_TYPE, table_csv, table_xlsx
from runtime.records.export_query import MAX_EXPORT_ROWS, PAGING
from runtime.records.service import RecordsService


class CsvResponse(Response):
    """A CSV file (UTF-8 with a BOM)."""

    media_type = "text/csv"


class XlsxResponse(Response):
    """An Excel workbook."""

    media_type = XLSX_TYPE


def export_router(
    service: RecordsService, app: CompiledApp, form: CompiledForm, who: Callable[[Request], Actor]
) -> APIRouter:
    """`GET …/export.csv` and `GET …/export.xlsx` of a top-level form."""
    Caller = Depends(who)
    app_key, form_key = app.app.app, form.key
    router = APIRouter(prefix=f"/api/v1/{app_key}/{form_key}", tags=[f"{app_key}.{form_key}"])
    label = form.form.label.text()

    def export_csv(request: Request, actor: Actor = Caller) -> Response:
        export = service.export_rows(app_key, form_key, request.query_params.multi_items(), actor)
        with closing(export.rows):
            body = table_csv(export.columns, export.rows)
        return CsvResponse(body, headers=_attachment(f"{form_key}.csv"))

    def export_xlsx(request: Request, actor: Actor = Caller) -> Response:
        export = service.export_rows(app_key, form_key, request.query_params.multi_items(), actor)
        with closing(export.rows):
            body = table_xlsx(export.columns, export.rows, export.title)
        return XlsxResponse(body, headers=_attachment(f"{form_key}.xlsx"))

    parameters = [p for p in list_parameters(form) if p["name"] not in PAGING] + [FIELDS]
    for suffix, endpoint, response_class, kind in (
        ("csv", export_csv, CsvResponse, "CSV (UTF-8 with a byte order mark)"),
        ("xlsx", export_xlsx, XlsxResponse, "Excel workbook"),
    ):
        router.add_api_route(
            f"/export.{suffix}",
            endpoint,
            methods=["GET"],
            response_class=response_class,
            summary=f"Export {label} records as {suffix.upper()}",
            description=f"Every record the list would show, filtered and sorted the same way, as one "
            f"{kind} file; at most {MAX_EXPORT_ROWS} records (422, code max_rows, beyond). Needs the "
            "read and export operations.",
            operation_id=f"export_{suffix}_{app_key}_{form_key}",
            openapi_extra={"parameters": parameters, "responses": _responses(response_class.media_type)},
        )
    return router


FIELDS: dict[str, Any] = {
    "name": "fields",
    "in": "query",
    "schema": {"type": "string"},
    "description": "Comma-separated field keys: the columns, in order (default: the form's list columns)",
}


def _attachment(filename: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="{filename}"'}


def _responses(media_type: str | None) -> dict[str, Any]:
    assert media_type is not None
    schema = {"type": "string"} if media_type.startswith("text/") else {"type": "string", "format": "binary"}
    return {
        "200": {"description": "The file", "content": {media_type: {"schema": schema}}},
        **{
            code: {"description": text, **ERRORS}
            for code, text in (
                ("401", "Not signed in: no valid token or session"),
                ("403", "Your roles do not allow reading or exporting these records"),
                ("404", "No such form"),
                ("422", "Invalid query, or more records than an export may hold"),
            )
        },
    }
