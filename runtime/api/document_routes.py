"""Routes of a record's documents: which there are, and each as HTML or PDF.

`GET /api/v1/{app}/{form}/{id}/documents` lists the documents the caller may render, each
`ready` or not with the reason; `GET …/{id}/documents/{key}.pdf` and `….html` render one
for the caller (runtime/documents/service.py decides who may: 404 outside their read
scope, 403 outside the document's roles, 409 `unavailable` when the record offers none).
The HTML is sent so a browser never runs anything in it: a Content-Security-Policy that
allows inline styles and `data:` images only, in a sandbox.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import HTMLResponse

from runtime.api.form_routes import ERRORS, RecordId
from runtime.api.responses import json_response
from runtime.documents.service import DocumentsService, Format
from runtime.identity.actor import Actor
from runtime.model.document import Document
from runtime.records.compiled import CompiledApp, CompiledForm

HTML_POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; sandbox"
Download = Query(default=False, description="Send it as a download (`attachment`) rather than to display")
DOCUMENT = {
    "type": "object",
    "properties": {
        "key": {"type": "string"},
        "label": {"type": "object", "properties": {"zh": {"type": "string"}, "en": {"type": "string"}}},
        "ready": {"type": "boolean", "description": "False when the record offers no such document now"},
        "reason": {"type": ["string", "null"]},
        "template": {"type": ["string", "null"], "description": "The template the record renders with"},
        "html": {"type": "string", "description": "Where the HTML preview is"},
        "pdf": {"type": "string", "description": "Where the PDF is"},
    },
    "required": ["key", "label", "ready", "reason", "template", "html", "pdf"],
}


class PdfResponse(Response):
    """A PDF document."""

    media_type = "application/pdf"


def _errors(*codes: tuple[str, str]) -> dict[str, Any]:
    return {code: {"description": text, **ERRORS} for code, text in codes}


def document_router(
    documents: DocumentsService, app: CompiledApp, form: CompiledForm, who: Callable[[Request], Actor]
) -> APIRouter:
    """The documents of one form's records."""
    Caller = Depends(who)
    app_key, form_key = app.app.app, form.key
    router = APIRouter(prefix=f"/api/v1/{app_key}/{form_key}", tags=[f"{app_key}.{form_key}"])

    def list_documents(record_id: int = RecordId, actor: Actor = Caller) -> Response:
        return json_response({"items": documents.available(app_key, form_key, record_id, actor)})

    listing = {
        "type": "object",
        "properties": {"items": {"type": "array", "items": DOCUMENT}},
        "required": ["items"],
    }
    router.add_api_route(
        "/{record_id}/documents",
        list_documents,
        methods=["GET"],
        summary=f"The documents of a {form.form.label.text()} the caller may render, ready or not",
        operation_id=f"documents_{app_key}_{form_key}",
        openapi_extra={
            "responses": {
                "200": {"description": "OK", "content": {"application/json": {"schema": listing}}},
                **_errors(
                    ("401", "Not signed in"),
                    ("403", f"You may not read {form_key} records"),
                    ("404", "No such record, or it is outside your scope"),
                ),
            }
        },
    )
    for document in app.app.documents_of(form_key):
        for kind in ("pdf", "html"):
            _render_route(router, documents, app, form, document, kind, Caller)
    return router


def _render_route(
    router: APIRouter,
    documents: DocumentsService,
    app: CompiledApp,
    form: CompiledForm,
    document: Document,
    kind: Format,
    caller: Any,
) -> None:
    app_key, form_key, key = app.app.app, form.key, document.document

    def render(record_id: int = RecordId, download: bool = Download, actor: Actor = caller) -> Response:
        rendered = documents.render(app_key, form_key, record_id, key, actor, kind)
        headers = {
            "Content-Disposition": _disposition(download, rendered.filename, f"{key}-{record_id}.{kind}"),
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "private, no-store",
        }
        if kind == "html":
            headers["Content-Security-Policy"] = HTML_POLICY
        return Response(rendered.content, media_type=rendered.media_type, headers=headers)

    response_class = PdfResponse if kind == "pdf" else HTMLResponse
    media = str(response_class.media_type)
    body = {"type": "string", "format": "binary"} if kind == "pdf" else {"type": "string"}
    router.add_api_route(
        f"/{{record_id}}/documents/{key}.{kind}",
        render,
        methods=["GET"],
        response_class=response_class,
        summary=f"{document.label.text()} of a {form.form.label.text()}, as {kind.upper()}",
        description="Rendered for the caller: the fields hidden from them are not in it.",
        operation_id=f"document_{kind}_{app_key}_{form_key}_{key}",
        openapi_extra={
            "responses": {
                "200": {
                    "description": f"The document as {kind.upper()}",
                    "content": {media: {"schema": body}},
                },
                **_errors(
                    ("401", "Not signed in"),
                    ("403", "You may not read these records, or your roles do not allow this document"),
                    ("404", "No such record, or it is outside your scope"),
                    ("409", "The record offers no such document now (its condition, or no template)"),
                    ("422", "The template failed on this record"),
                ),
            }
        },
    )


def _disposition(download: bool, name: str, plain: str) -> str:
    """`inline` or `attachment`, with an ASCII name (`quote-12.pdf`) and the real one in
    RFC 5987's `filename*` (`报价单-QT-2026-00001.pdf`)."""
    kind = "attachment" if download else "inline"
    return f"{kind}; filename=\"{plain}\"; filename*=UTF-8''{quote(name, safe='')}"
