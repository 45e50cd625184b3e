"""Static files: Formloom's own CSS and JavaScript, and the front-end packages from npm.

The npm packages (htmx, the CSP build of Alpine.js, ECharts, SortableJS) are installed into
`node_modules/` by `make run` / `make test` from `package.json` and its lockfile;
they are served from there and never committed. `FORMLOOM_NODE_MODULES` points
elsewhere when the server runs outside the repository.
"""

from __future__ import annotations

import os
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, Response

OWN = Path(__file__).resolve().parent / "static"
VENDOR = {
    "htmx.js": "htmx.org/dist/htmx.min.js",
    "alpine.js": "@alpinejs/csp/dist/cdn.min.js",
    "echarts.js": "echarts/dist/echarts.min.js",
    "sortable.js": "sortablejs/Sortable.min.js",
}
TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}


def node_modules() -> Path:
    """Where the npm packages are installed."""
    configured = os.environ.get("FORMLOOM_NODE_MODULES")
    return Path(configured) if configured else Path(__file__).resolve().parents[2] / "node_modules"


def missing_vendor_files() -> list[str]:
    """The npm files the pages need that are not installed (empty when all are there)."""
    root = node_modules()
    return [path for path in VENDOR.values() if not (root / path).is_file()]


def asset_router() -> APIRouter:
    """`GET /static/{name}` and `GET /static/vendor/{name}` (public: the sign-in page needs them)."""
    router = APIRouter(include_in_schema=False)

    def own(name: str) -> Response:
        path = OWN / name
        if "/" in name or not path.is_file():
            return Response(status_code=404)
        return _file(path)

    def vendor(name: str) -> Response:
        if name not in VENDOR:
            return Response(status_code=404)
        path = node_modules() / VENDOR[name]
        if not path.is_file():
            return Response(f"{VENDOR[name]} is not installed: run `npm ci` (make run does)", status_code=404)
        return _file(path)

    router.add_api_route("/static/vendor/{name}", vendor, methods=["GET"])
    router.add_api_route("/static/{name}", own, methods=["GET"])
    return router


def _file(path: Path) -> Response:
    response = FileResponse(path, media_type=TYPES.get(path.suffix, "application/octet-stream"))
    response.headers["Cache-Control"] = "public, max-age=3600"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
