"""Upload and download of attachment files."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter, Depends, Path, Request, UploadFile
from fastapi.responses import FileResponse, Response

from runtime.api.responses import json_response
from runtime.api.schemas import REF
from runtime.db import write
from runtime.identity.actor import Actor
from runtime.records.errors import NotFound
from runtime.records.files import FileStore
from runtime.records.service import RecordsService

FileId = Path(ge=1, le=2**63 - 1)
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

    def describe(file_id: int = FileId, actor: Actor = Caller) -> Response:
        with service.engine.connect() as conn:
            return json_response(store.describe(conn, file_id))

    def content(file_id: int = FileId, actor: Actor = Caller) -> Response:
        with service.engine.connect() as conn:
            info = store.describe(conn, file_id)
        path = store.path_of(info["checksum"])
        if not path.is_file():
            raise NotFound("file content", file_id)
        return FileResponse(path, media_type=info["type"], filename=info["name"])

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
