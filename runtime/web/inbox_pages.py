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
from runtime.web.formats import display, local_time, record_title
from runtime.web.i18n import language_of, translator
from runtime.web.problems import by_input
from runtime.web.session import check_csrf, local_path, posted_form
from runtime.web.timeline import approval_labels

Key = tuple[str, str, int]
Summary = tuple[str, list[tuple[str, str]]]
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
        return RedirectResponse(local_path(str(data.get("next") or "/notifications")), 303)

    def read_all(request: Request, data: FormData = Posted, actor: Actor = Actor_) -> Response:
        check_csrf(request, data, actor)
        web.process.mark_read(actor, None)
        return RedirectResponse("/notifications", status_code=303)

    def counts(request: Request, actor: Actor = Actor_) -> Response:
        found = web.pages.counts(actor)
        return web.pages.render(request, actor, "_counts.html", fragment=True, counts=found)

    router.add_api_route("/nav/counts", counts, methods=["GET"])
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
    summaries = _summaries(web, actor, items, language)
    default_zone = next(iter(web.service.apps.values())).app.zone()
    for item in items:
        app = web.service.apps.get(item["app"])
        zone = app.app.zone() if app else default_zone
        form = app.forms.get(item["form"]) if app else None
        item["form_label"] = form.form.label.text(language) if form else item["form"]
        item["title"], item["facts"] = summaries.get(
            (item["app"], item["form"], item["record_id"]), (f"#{item['record_id']}", [])
        )
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


def _summaries(web: Web, actor: Actor, items: list[dict[str, Any]], language: str) -> dict[Key, Summary]:
    """Each task's record title and its first list columns: one read per form, not per task.

    Records are read through the records service as the approver, so the summary shows
    only what they may see; a record outside their read scope shows its title alone.
    """
    wanted: dict[tuple[str, str], set[int]] = defaultdict(set)
    for item in items:
        wanted[(item["app"], item["form"])].add(item["record_id"])
    found: dict[Key, Summary] = {}
    for (app_key, form_key), ids in wanted.items():
        app = web.service.apps.get(app_key)
        form = app.forms.get(form_key) if app else None
        if app is None or form is None:
            continue
        ctx = web.input_context(app, form, actor, creating=False)
        columns = [k for k in form.form.list_view.columns if k != form.title_field and k in form.fields][:4]
        readable: dict[int, dict[str, Any]] = {}
        if web.service.access(app_key, form_key, actor).can("read"):
            params = [("id__in", ",".join(map(str, sorted(ids)))), ("limit", str(len(ids)))]
            readable = {r["id"]: r for r in web.service.list_page(app_key, form_key, params, actor)["items"]}
        titles = _bare_titles(web, form, ids - set(readable))
        for record_id in ids:
            record = readable.get(record_id)
            if record is None:
                found[(app_key, form_key, record_id)] = (titles.get(record_id, f"#{record_id}"), [])
                continue
            facts = [
                (
                    form.fields[k].spec.title(language),
                    display(form.fields[k].spec, record.get(k), language, ctx.currency, ctx.zone),
                )
                for k in columns
                if k in record and record.get(k) not in (None, "", [])
            ]
            found[(app_key, form_key, record_id)] = (record_title(record, form.title_field), facts)
    return found


def _bare_titles(web: Web, form: Any, ids: set[int]) -> dict[int, str]:
    """Titles of records the approver may not read: the task names them anyway."""
    if not ids or form.title_field not in form.table.c:
        return {}
    table = form.table
    with web.service.engine.connect() as conn:
        rows = conn.execute(select(table.c.id, table.c[form.title_field]).where(table.c.id.in_(ids)))
        return {row[0]: str(row[1]) for row in rows if row[1] is not None}


def _approval_label(web: Web, item: dict[str, Any], language: str) -> str:
    app = web.service.apps.get(item["app"])
    if app is None:
        return str(item.get("approval") or "")
    name, step = approval_labels(app.app, str(item.get("approval") or ""), item["step"], language)
    return f"{name} · {step}" if step else name


def _page_of(record_url: str | None) -> str | None:
    """The web page of a record the API names (`/api/v1/app/form/7` → `/app/app/form/7`)."""
    return "/app/" + record_url.removeprefix("/api/v1/") if record_url else None
