"""Upload and download of attachment files.

Files are named by their random public id. Who may read one is the records service's
decision (`RecordsService.file`); a file the caller may not read answers 404 like a
missing one. The bytes are sent so that a browser never runs them: `nosniff`, a
sandboxing Content-Security-Policy, and inline display only for images (not SVG) and PDF.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import quote

from fastapi import APIRouter, Depends, Path, Request, UploadFile
from fastapi.responses import FileResponse, Response

from runtime.api.responses import json_response
from runtime.api.schemas import REF
from runtime.db import write
from runtime.identity.actor import Actor
from runtime.records.errors import NotFound
from runtime.records.files import FileStore, file_json
from runtime.records.service import RecordsService

FileId = Path(min_length=1, max_length=64, description="The file's id, as its upload answered")
ERRORS = {"content": {"application/json": {"schema": {"$ref": REF + "ErrorList"}}}}
FILE = {"content": {"application/json": {"schema": {"$ref": REF + "FileInfo"}}}}


def file_router(
    service: RecordsService, store: FileStore, signed_in: Callable[[Request], Actor]
) -> APIRouter:
    """`POST /api/v1/files`, `GET /api/v1/files/{id}` and `…/{id}/content`."""
    router = APIRouter(prefix="/api/v1/files", tags=["files"])
    Caller = Depends(signed_in)

    def upload(file: UploadFile, actor: Actor = Caller) -> Response:
        with write(service.engine) as conn:
            info = store.save(
                conn,
                file.file,
                file.filename or "file",
                file.content_type or "application/octet-stream",
                actor.user_id,
            )
        return json_response(info, 201)

    def describe(file_id: str = FileId, actor: Actor = Caller) -> Response:
        return json_response(file_json(service.file(file_id, actor)))

    def content(file_id: str = FileId, actor: Actor = Caller) -> Response:
        row = service.file(file_id, actor)
        path = store.path_of(row["checksum"])
        if not path.is_file():
            raise NotFound("file content", file_id)
        media = served_type(row["content_type"])
        return FileResponse(path, media_type=media, headers=content_headers(media, row["name"]))

    errors = {
        "401": {"description": "Not signed in", **ERRORS},
        "404": {"description": "No such file", **ERRORS},
        "422": {"description": "Invalid input", **ERRORS},
    }
    router.add_api_route(
        "",
        upload,
        methods=["POST"],
        status_code=201,
        summary="Upload a file",
        operation_id="upload_file",
        openapi_extra={"responses": {"201": {"description": "Stored", **FILE}, **errors}},
    )
    router.add_api_route(
        "/{file_id}",
        describe,
        methods=["GET"],
        summary="Describe a file",
        operation_id="get_file",
        openapi_extra={"responses": {"200": {"description": "OK", **FILE}, **errors}},
    )
    router.add_api_route(
        "/{file_id}/content",
        content,
        methods=["GET"],
        summary="Download a file's bytes",
        operation_id="download_file",
        openapi_extra={"responses": {"200": {"description": "The file", "content": {"*/*": {}}}, **errors}},
    )
    return router


MEDIA_TYPE = re.compile(r"[A-Za-z0-9!#$&^_.+-]{1,127}/[A-Za-z0-9!#$&^_.+-]{1,127}")
INLINE = ("application/pdf",)
NOT_INLINE = ("image/svg+xml",)  # SVG can carry script


def served_type(content_type: str) -> str:
    """The media type a file is sent with: as uploaded, unless it is not a plain type."""
    base = content_type.split(";")[0].strip()
    if not MEDIA_TYPE.fullmatch(base):
        return "application/octet-stream"
    return base.lower()


def content_headers(media: str, name: str) -> dict[str, str]:
    """Headers that keep a browser from running a file: shown inline only if an image or PDF."""
    shown = (media.startswith("image/") or media in INLINE) and media not in NOT_INLINE
    return {
        "Content-Disposition": content_disposition("inline" if shown else "attachment", name),
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "sandbox",
        "Cache-Control": "private",
    }


def content_disposition(kind: str, name: str) -> str:
    """`kind; filename="…"`, plus RFC 5987's `filename*` when the name is not plain ASCII."""
    plain = "".join(c if " " <= c <= "~" and c not in '"\\' else "_" for c in name) or "file"
    header = f'{kind}; filename="{plain}"'
    if plain != name:
        header += f"; filename*=UTF-8''{quote(name, safe='')}"
    return header
