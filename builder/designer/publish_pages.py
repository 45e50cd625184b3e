"""Publish from the web: the plan (row counts, refusals, SQL) before confirming, then the history.

The plan and the publish are the command line's own (`builder.publishing`), so a web
publish and `formloom publish` cannot differ. Every publish is recorded with its
author (the signed-in admin) and its steps.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import RedirectResponse
from starlette.datastructures import FormData

from builder.designer.pages import Designer, require_token
from builder.publishing.publish import PublishRefused
from builder.publishing.steps import Plan, preview
from runtime.identity.actor import Actor
from runtime.loading.problems import DefinitionError
from runtime.web.session import posted_form


def publish_router(designer: Designer, published: Callable[[], Any]) -> APIRouter:
    """`/designer/{app}/publish` (plan, then confirm) and `/designer/{app}/history`.

    `published` is called after a publish so the served app follows at once.
    """
    router = APIRouter(include_in_schema=False)
    Admin = Depends(designer.admin)
    space = designer.workspace

    def plan_page(request: Request, app_key: str, actor: Actor = Admin) -> Response:
        problems = space.problems(app_key)
        plan = None if problems else space.plan(app_key)
        return _plan_page(designer, request, actor, app_key, plan, problems, None, 200)

    def confirm(
        request: Request, app_key: str, data: FormData = Depends(posted_form), actor: Actor = Admin
    ) -> Response:
        require_token(request, actor, data)
        try:
            outcome = space.publish(app_key, actor.username)
        except DefinitionError as error:
            problems = [str(p) for p in error.problems]
            return _plan_page(designer, request, actor, app_key, None, problems, None, 422)
        except PublishRefused as refused:
            return _plan_page(designer, request, actor, app_key, refused.plan, [], str(refused), 409)
        published()
        number = outcome.version_id or 0
        return RedirectResponse(f"/designer/{app_key}/history?published={number}", status_code=303)

    def history(request: Request, app_key: str, actor: Actor = Admin) -> Response:
        versions = [
            {
                "id": v.id,
                "version": v.version,
                "hash": v.content_hash[:12],
                "author": v.author or "—",
                "at": v.published_at.strftime("%Y-%m-%d %H:%M"),
                "steps": [
                    s.get("words", "") if isinstance(s, dict) else str(s)
                    for s in (v.plan or {}).get("steps", [])
                ],
            }
            for v in space.history(app_key)
        ]
        return designer.render(
            request,
            actor,
            "designer_history.html",
            app_key=app_key,
            versions=versions,
            just=request.query_params.get("published"),
            title=app_key,
        )

    router.add_api_route("/designer/{app_key}/publish", plan_page, methods=["GET"])
    router.add_api_route("/designer/{app_key}/publish", confirm, methods=["POST"])
    router.add_api_route("/designer/{app_key}/history", history, methods=["GET"])
    return router


def _plan_page(
    designer: Designer,
    request: Request,
    actor: Actor,
    app_key: str,
    plan: Plan | None,
    problems: list[str],
    refusal: str | None,
    status: int,
) -> Response:
    dialect = designer.service.engine.dialect.name
    steps = []
    if plan is not None:
        refused = plan.refusals
        steps = [
            {
                "table": s.table,
                "words": s.words,
                "risk": s.risk,
                "refused": s.refused if s in refused else None,
                "sql": preview(s, dialect),
            }
            for s in plan.steps
        ]
    return designer.render(
        request,
        actor,
        "designer_publish.html",
        status=status,
        app_key=app_key,
        plan=plan,
        steps=steps,
        problems=problems,
        refusal=refusal,
        can_publish=plan is not None and not plan.empty and not plan.refusals,
        title=app_key,
    )
