"""The home page, the language switch and the dashboards pages."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import RedirectResponse
from sqlalchemy import update
from starlette.datastructures import FormData

from runtime.db import write
from runtime.identity.actor import Actor
from runtime.schema.system import users
from runtime.web.context import Web
from runtime.web.i18n import LANGUAGES, translator
from runtime.web.session import check_csrf, local_path, posted_form


def home_router(web: Web) -> APIRouter:
    """`/`, `/account/language` and `/app/{app}/dashboards/{key}`."""
    router = APIRouter(include_in_schema=False)
    Actor_ = Depends(web.actor)

    def home(request: Request, actor: Actor = Actor_) -> Response:
        return web.pages.render(request, actor, "home.html", title=translator(actor.language)("home.title"))

    def language(request: Request, data: FormData = Depends(posted_form), actor: Actor = Actor_) -> Response:
        check_csrf(request, data, actor)
        chosen = str(data.get("language") or "")
        if chosen in LANGUAGES and actor.user_id is not None:
            with write(web.service.engine) as conn:
                conn.execute(update(users).where(users.c.id == actor.user_id).values(language=chosen))
        response = RedirectResponse(local_path(str(data.get("next") or "/")), 303)
        response.set_cookie("formloom_language", chosen, samesite="lax", path="/")
        return response

    def dashboard(request: Request, app_key: str, key: str, actor: Actor = Actor_) -> Response:
        spec = web.reports.spec(app_key, key, actor)
        app = web.service.apps[app_key]
        language = actor.language if actor.language in LANGUAGES else "zh"
        board = app.app.dashboard(key)
        params = {k: v for k, v in request.query_params.items() if k in ("from", "to")}
        return web.pages.render(
            request,
            actor,
            "dashboard.html",
            app=app,
            spec=spec,
            title=board.label.text(language) if board is not None else key,
            params=params,
        )

    router.add_api_route("/", home, methods=["GET"])
    router.add_api_route("/account/language", language, methods=["POST"])
    router.add_api_route("/app/{app_key}/dashboards/{key}", dashboard, methods=["GET"])
    return router
