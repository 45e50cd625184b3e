"""Mount the web pages on the API application, with their error pages.

Errors on web paths answer HTML: no session redirects to sign-in, an expired form
says so, and the records service's 403/404/409 get a page in the user's language
(the API's paths keep their JSON errors).
"""

from __future__ import annotations

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse

from runtime.api.responses import on_record_error, on_validation_error
from runtime.identity.actor import Actor
from runtime.process.service import ProcessService
from runtime.records.errors import RecordError
from runtime.records.files import FileStore
from runtime.records.service import RecordsService
from runtime.reports.service import ReportsService
from runtime.web.assets import asset_router
from runtime.web.context import Web
from runtime.web.home_pages import home_router
from runtime.web.i18n import language_of, translator
from runtime.web.inbox_pages import inbox_router
from runtime.web.list_pages import list_router
from runtime.web.record_pages import record_router
from runtime.web.record_view import record_view_router
from runtime.web.related_view import related_router
from runtime.web.render import TEMPLATES, Pages
from runtime.web.security import secured
from runtime.web.session import FormExpired, SignInRequired, page_actor, to_sign_in


def install_web(
    api: FastAPI, service: RecordsService, process: ProcessService, reports: ReportsService, store: FileStore
) -> None:
    """Add the web pages, static files and HTML error pages to `api`."""
    web = Web(service, process, reports, store, Pages(service))
    api.include_router(asset_router())
    api.include_router(home_router(web))
    api.include_router(inbox_router(web))
    api.include_router(record_router(web))  # `/new` and `/_live` before `/{record_id}`
    api.include_router(record_view_router(web))
    api.include_router(related_router(web))
    api.include_router(list_router(web))

    async def sign_in(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, SignInRequired)
        return to_sign_in(request, exc)

    async def expired(request: Request, _exc: Exception) -> Response:
        return _error_page(web, request, 403, "error.expired")

    async def record_error(request: Request, exc: Exception) -> Response:
        if _is_api(request):
            return await on_record_error(request, exc)
        assert isinstance(exc, RecordError)
        if exc.status == 401:
            return to_sign_in(request, SignInRequired(request.url.path))
        return _error_page(web, request, exc.status, f"error.page.{exc.status}", exc.problems[0].message)

    async def bad_request(request: Request, exc: Exception) -> Response:
        if _is_api(request):
            return await on_validation_error(request, exc)
        return _error_page(web, request, 404, "error.page.404")

    api.add_exception_handler(SignInRequired, sign_in)
    api.add_exception_handler(FormExpired, expired)
    api.add_exception_handler(RecordError, record_error)
    api.add_exception_handler(RequestValidationError, bad_request)


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/") or request.url.path.startswith("/openapi")


def _error_page(web: Web, request: Request, status: int, key: str, detail: str = "") -> Response:
    try:
        actor: Actor | None = page_actor(web.service.engine, request)
    except SignInRequired:
        actor = None
    if actor is not None:
        title = translator(actor.language)(key)
        return web.pages.render(
            request, actor, "error.html", status=status, message_key=key, detail=detail, title=title
        )
    language = language_of(request.cookies.get("formloom_language"))
    html = TEMPLATES.get_template("error.html").render(
        t=translator(language), language=language, message_key=key, detail=detail, bare=True
    )
    return secured(HTMLResponse(html, status_code=status))
