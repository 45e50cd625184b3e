""" "My tasks" (approve, reject or delegate with a comment) and notifications.

Titles of the records behind the tasks are read with one query per form, not one
per task.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import RedirectResponse
from sqlalchemy import select
from starlette.datastructures import FormData

from runtime.identity.actor import Actor
from runtime.records.errors import RecordError
from runtime.web.context import Web
from runtime.web.formats import local_time
from runtime.web.i18n import language_of, translator
from runtime.web.problems import by_input
from runtime.web.session import check_csrf, posted_form
from runtime.web.timeline import approval_labels

DECIDED = {"approve": "approved", "reject": "rejected"}


def inbox_router(web: Web) -> APIRouter:
    """`/tasks`, `/tasks/{id}/{decision}`, `/notifications` and marking them read."""
    router = APIRouter(include_in_schema=False)
    Actor_ = Depends(web.actor)
    Posted = Depends(posted_form)

    def task_list(request: Request, actor: Actor = Actor_) -> Response:
        return _inbox(web, request, actor, {}, None, 200)

    def decide(
        request: Request, task_id: int, decision: str, data: FormData = Posted, actor: Actor = Actor_
    ) -> Response:
        check_csrf(request, data, actor)
        comment = str(data.get("comment") or "").strip() or None
        try:
            if decision == "delegate":
                raw = str(data.get("to") or "")
                to = int(raw) if raw.isdigit() else None
                web.process.reassign(task_id, "delegate", {"to": to, "comment": comment}, actor)
            elif decision in DECIDED:
                web.process.decide(task_id, DECIDED[decision], {"comment": comment}, actor)
            else:
                return Response(status_code=404)
        except RecordError as error:
            if error.status in (401, 404):
                raise
            t = translator(actor.language)
            return _inbox(
                web, request, actor, by_input(error.problems, None, t, actor.language), task_id, 422
            )
        return RedirectResponse(f"/tasks?done={decision}", status_code=303)

    def notification_list(request: Request, actor: Actor = Actor_) -> Response:
        found = web.process.notifications(actor, unread_only=False, limit=50, offset=0)
        zone = next(iter(web.service.apps.values())).app.zone()
        items = [
            {**n, "when": local_time(n["created_at"], zone), "link": _page_of(n["record"])}
            for n in found["items"]
        ]
        return web.pages.render(
            request,
            actor,
            "notifications.html",
            items=items,
            title=translator(actor.language)("nav.notifications"),
        )

    def read_one(
        request: Request, notification_id: int, data: FormData = Posted, actor: Actor = Actor_
    ) -> Response:
        check_csrf(request, data, actor)
        web.process.mark_read(actor, notification_id)
        target = str(data.get("next") or "/notifications")
        return RedirectResponse(
            target if target.startswith("/") and not target.startswith("//") else "/", 303
        )

    def read_all(request: Request, data: FormData = Posted, actor: Actor = Actor_) -> Response:
        check_csrf(request, data, actor)
        web.process.mark_read(actor, None)
        return RedirectResponse("/notifications", status_code=303)

    router.add_api_route("/tasks", task_list, methods=["GET"])
    router.add_api_route("/tasks/{task_id:int}/{decision}", decide, methods=["POST"])
    router.add_api_route("/notifications", notification_list, methods=["GET"])
    router.add_api_route("/notifications/read-all", read_all, methods=["POST"])
    router.add_api_route("/notifications/{notification_id:int}/read", read_one, methods=["POST"])
    return router


def _inbox(
    web: Web, request: Request, actor: Actor, errors: dict[str, list[str]], failed: int | None, status: int
) -> Response:
    language = language_of(actor.language)
    found = web.process.tasks(actor, "open", 100, 0)
    items = found["items"]
    titles = _titles(web, items)
    zone = next(iter(web.service.apps.values())).app.zone()
    for item in items:
        app = web.service.apps.get(item["app"])
        form = app.forms.get(item["form"]) if app else None
        item["form_label"] = form.form.label.text(language) if form else item["form"]
        item["title"] = titles.get((item["app"], item["form"], item["record_id"]), f"#{item['record_id']}")
        item["link"] = f"/app/{item['app']}/{item['form']}/{item['record_id']}"
        item["when"] = local_time(item["created_at"], zone)
        item["approval_label"] = _approval_label(web, item, language)
    return web.pages.render(
        request,
        actor,
        "tasks.html",
        status=status,
        items=items,
        errors=errors,
        failed=failed,
        done=request.query_params.get("done"),
        title=translator(language)("nav.tasks"),
    )


def _titles(web: Web, items: list[dict[str, Any]]) -> dict[tuple[str, str, int], str]:
    """The title of each task's record: one query per form."""
    wanted: dict[tuple[str, str], set[int]] = defaultdict(set)
    for item in items:
        wanted[(item["app"], item["form"])].add(item["record_id"])
    found: dict[tuple[str, str, int], str] = {}
    with web.service.engine.connect() as conn:
        for (app_key, form_key), ids in wanted.items():
            app = web.service.apps.get(app_key)
            form = app.forms.get(form_key) if app else None
            if form is None or form.title_field not in form.table.c:
                continue
            table = form.table
            rows = conn.execute(select(table.c.id, table.c[form.title_field]).where(table.c.id.in_(ids)))
            for row in rows:
                found[(app_key, form_key, row[0])] = str(row[1] if row[1] is not None else f"#{row[0]}")
    return found


def _approval_label(web: Web, item: dict[str, Any], language: str) -> str:
    app = web.service.apps.get(item["app"])
    if app is None:
        return str(item.get("approval") or "")
    name, step = approval_labels(app.app, str(item.get("approval") or ""), item["step"], language)
    return f"{name} · {step}" if step else name


def _page_of(record_url: str | None) -> str | None:
    """The web page of a record the API names (`/api/v1/app/form/7` → `/app/app/form/7`)."""
    return "/app/" + record_url.removeprefix("/api/v1/") if record_url else None
