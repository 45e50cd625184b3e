"""The record page: its values, workflow action buttons, the approval panel and the timeline.

An action that asks for values (`fields` of a transition) opens a small form with
those inputs; the engine's refusal (a guard, a missing value) is shown on the page.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import RedirectResponse
from starlette.datastructures import FormData

from runtime.identity.actor import Actor
from runtime.records.compiled import CompiledApp, CompiledForm
from runtime.records.errors import RecordError
from runtime.records.preview import RowPreview
from runtime.web.context import Web
from runtime.web.form_data import record_from_form
from runtime.web.form_view import (
    Context,
    Input,
    field_input,
    spec_of,
    state_of_form,
    state_of_record,
    tabs_of,
)
from runtime.web.formats import display, record_title
from runtime.web.i18n import translator
from runtime.web.problems import by_input
from runtime.web.session import check_csrf, posted_form
from runtime.web.timeline import approval_labels, timeline

Record = dict[str, Any]


def record_view_router(web: Web) -> APIRouter:
    """`GET /app/{app}/{form}/{id}` and `POST …/{id}/do/{action}`."""
    router = APIRouter(include_in_schema=False)
    Actor_ = Depends(web.actor)

    def show(
        request: Request, app_key: str, form_key: str, record_id: int, actor: Actor = Actor_
    ) -> Response:
        return _page(web, request, actor, app_key, form_key, record_id, None, {}, 200)

    def take(
        request: Request,
        app_key: str,
        form_key: str,
        record_id: int,
        action: str,
        data: FormData = Depends(posted_form),
        actor: Actor = Actor_,
    ) -> Response:
        check_csrf(request, data, actor)
        app, form = web.service.resolve(app_key, form_key)
        ctx = web.input_context(app, form, actor, creating=False)
        values = record_from_form(form, data, ctx.zone, set(form.fields))
        body: dict[str, Any] = {"values": values}
        comment = str(data.get("comment") or "").strip()
        if comment:
            body["comment"] = comment
        try:
            web.process.take(app_key, form_key, record_id, action, body, actor)
        except RecordError as error:
            if error.status in (401, 404):
                raise
            errors = by_input(error.problems, form, translator(actor.language), actor.language)
            return _page(
                web, request, actor, app_key, form_key, record_id, (action, data), errors, error.status
            )
        return RedirectResponse(f"/app/{app_key}/{form_key}/{record_id}?done={action}", status_code=303)

    router.add_api_route("/app/{app_key}/{form_key}/{record_id:int}", show, methods=["GET"])
    router.add_api_route("/app/{app_key}/{form_key}/{record_id:int}/do/{action}", take, methods=["POST"])
    return router


def _page(
    web: Web,
    request: Request,
    actor: Actor,
    app_key: str,
    form_key: str,
    record_id: int,
    tried: tuple[str, FormData] | None,
    errors: dict[str, list[str]],
    status: int,
) -> Response:
    app, form = web.service.resolve(app_key, form_key)
    record = web.service.get(app_key, form_key, record_id, actor)
    access = web.service.access(app_key, form_key, actor)
    ctx = web.input_context(app, form, actor, creating=False)
    actions = _actions(web, app, form, record, actor, ctx, tried, errors)
    shown = _sections(form, record, ctx)
    return web.pages.render(
        request,
        actor,
        "record.html",
        status=status,
        app=app,
        form=form,
        record=record,
        title=record_title(record, form.title_field),
        sections=[s for s in shown if not s["tab"]],
        tabs=tabs_of(shown),
        actions=actions,
        action_error=errors.get("", []) if tried else [],
        tried=tried[0] if tried else None,
        approvals=_labelled(app, web.process.approvals(app_key, form_key, record_id, actor), ctx.language),
        timeline=timeline(app.app, form, web.service.history(app_key, form_key, record_id, actor), ctx),
        can_edit=access.can("update"),
        saved=request.query_params.get("saved") == "1",
    )


def _actions(
    web: Web,
    app: CompiledApp,
    form: CompiledForm,
    record: Record,
    actor: Actor,
    ctx: Context,
    tried: tuple[str, FormData] | None,
    errors: dict[str, list[str]],
) -> list[dict[str, Any]]:
    found = []
    base = state_of_record(form, record, ctx.zone)
    for item in web.process.transitions(app.app.app, form.key, record["id"], actor):
        own = tried is not None and tried[0] == item["action"]
        state = {**base, **state_of_form(form, tried[1])} if own and tried else base
        row = RowPreview(required=item["require"])
        field_ctx = Context(ctx.language, ctx.currency, ctx.zone, ctx.hidden, set())
        inputs: list[Input] = [
            field_input(form, key, state, row, field_ctx, errors if own else {}, None)
            for key in item["fields"]
            if key in form.fields
        ]
        names = item["label"] or {}
        label = names.get(ctx.language) or names.get("en") or item["action"]
        found.append({**item, "title": label, "inputs": inputs})
    return found


def _sections(form: CompiledForm, record: Record, ctx: Context) -> list[dict[str, Any]]:
    layout = form.form.layout or []
    groups = [
        (s.section.text(ctx.language), s.columns, list(s.fields), s.tab.text(ctx.language) if s.tab else "")
        for s in layout
    ]
    placed = {k for _, _, keys, _ in groups for k in keys}
    rest = [f.key for f in form.form.fields if f.key not in placed]
    if rest:
        groups.append(("", 2, rest, ""))
    sections = []
    for title, columns, keys, tab in groups:
        shown = [k for k in keys if form.form.field(k) is not None and k not in ctx.hidden and k in record]
        items = [_shown_field(form, key, record, ctx) for key in shown]
        if items:
            sections.append({"title": title, "columns": columns, "fields": items, "tab": tab})
    return sections


def _shown_field(form: CompiledForm, key: str, record: Record, ctx: Context) -> dict[str, Any]:
    spec = spec_of(form, key)
    value = record.get(key)
    item: dict[str, Any] = {"key": key, "label": spec.title(ctx.language), "kind": spec.type, "value": value}
    if spec.type == "table":
        child = form.children[key]
        hidden = ctx.child_hidden.get(key, frozenset())
        columns = [k for k in child.fields if k not in hidden]
        item["columns"] = [child.fields[k].spec.title(ctx.language) for k in columns]
        item["kinds"] = [child.fields[k].type for k in columns]
        item["rows"] = [
            [display(child.fields[k].spec, row.get(k), ctx.language, ctx.currency, ctx.zone) for k in columns]
            for row in value or []
        ]
    else:
        item["text"] = display(spec, value, ctx.language, ctx.currency, ctx.zone)
    return item


def _labelled(app: CompiledApp, approvals: list[Record], language: str) -> list[Record]:
    """The record's approvals with the labels of the approval and of each task's step."""
    for approval in approvals:
        approval["label"] = approval_labels(app.app, approval["approval"], None, language)[0]
        for task in approval["tasks"]:
            task["step_label"] = approval_labels(app.app, approval["approval"], task["step"], language)[1]
    return approvals
