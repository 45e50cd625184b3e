"""Mount the designer on every API the server builds (see `runtime.live.Extension`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, Request, Response
from fastapi.responses import FileResponse

from builder.designer.dashboard_designer import dashboard_designer_router
from builder.designer.form_designer import form_designer_router
from builder.designer.pages import Designer, json_answer
from builder.designer.process_designer import process_designer_router
from builder.designer.publish_pages import publish_router
from builder.designer.roundtrip import open_document
from builder.designer.workspace import NoSuchDefinition, Workspace
from runtime.identity.actor import Actor
from runtime.live import Extension
from runtime.records.service import RecordsService

STATIC = Path(__file__).resolve().parent / "static"


def packs_of(paths: list[Path]) -> dict[str, Path]:
    """The pack folders among `paths`, by the app key their app.yaml gives."""
    found = {}
    for path in paths:
        document = open_document(path / "app.yaml") if path.is_dir() else None
        if document is not None and isinstance(document.data, dict) and document.data.get("app"):
            found[str(document.data["app"])] = path
    return found


def designer_extension(
    paths: list[Path], backups: Path = Path("backups"), published: Callable[[], Any] = lambda: None
) -> Extension:
    """An extension adding the designer's pages (admins only) for the pack folders in `paths`."""
    packs = packs_of(paths)

    def extend(api: FastAPI, service: RecordsService) -> None:
        designer = Designer(Workspace(packs, service.engine, backups), service)
        api.include_router(form_designer_router(designer))
        api.include_router(process_designer_router(designer))
        api.include_router(dashboard_designer_router(designer))
        api.include_router(publish_router(designer, published))
        api.state.nav_links = [("/designer", "nav.designer")]

        def static(name: str, actor: Actor = Depends(designer.admin)) -> Response:
            path = STATIC / name
            if "/" in name or not path.is_file():
                return Response(status_code=404)
            kind = "text/javascript" if path.suffix == ".js" else "text/css"
            return FileResponse(path, media_type=kind, headers={"Cache-Control": "no-cache"})

        api.add_api_route("/designer/static/{name}", static, methods=["GET"], include_in_schema=False)

        async def missing(request: Request, exc: Exception) -> Response:
            if request.url.path.endswith(("/model", "/check", "/key")) or "json" in request.headers.get(
                "accept", ""
            ):
                return json_answer({"problems": [str(exc)]}, 404)
            actor = designer.admin(request)
            return designer.render(
                request,
                actor,
                "error.html",
                status=404,
                message_key="error.page.404",
                detail=str(exc),
                title="404",
            )

        api.add_exception_handler(NoSuchDefinition, missing)

    return extend
