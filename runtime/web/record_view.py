"""The record page: its values, workflow action buttons, the route ahead, the approval panel
and the timeline.

An action that asks for values (`fields` of a transition) opens a small form with
those inputs; the engine's refusal (a guard, a missing value) is shown on the page.
The route ahead (the process service's `route`) lists, for each approval of the form
that is running or could start, the steps that apply now and who decides each, the
current step marked. The submitter of a running approval can nudge its approvers and,
while nobody has decided, withdraw it.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import RedirectResponse
from sqlalchemy import select
from starlette.datastructures import FormData

from runtime.documents.service import documents_for
from runtime.identity.actor import Actor
from runtime.model.common import Labels
from runtime.model.record_page import RelatedList
from runtime.process.make import when_message
from runtime.records.compiled import CompiledApp, CompiledForm
from runtime.records.errors import NotFound, RecordError
from runtime.records.preview import RowPreview
from runtime.schema.system import users
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
from runtime.web.formats import display, option_label, record_title
from runtime.web.i18n import translator
from runtime.web.inbox_pages import DECISIONS, approval_verb, withdrawable
from runtime.web.problems import by_input
from runtime.web.related_view import Block, related_blocks
from runtime.web.session import check_csrf, posted_form
from runtime.web.timeline import approval_labels, timeline, user_ids

Record = dict[str, Any]
Failure = tuple[int, list[str]]  # an approval's id and why withdrawing or nudging it was refused


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

    def approval_action(
        request: Request,
        app_key: str,
        form_key: str,
        record_id: int,
        instance_id: int,
        verb: str,
        data: FormData = Depends(posted_form),
        actor: Actor = Actor_,
    ) -> Response:
        check_csrf(request, data, actor)
        known = web.process.approvals(app_key, form_key, record_id, actor)
        if verb not in ("withdraw", "nudge") or all(a["id"] != instance_id for a in known):
            raise NotFound("approval", instance_id)
        try:
            approval_verb(web, instance_id, verb, data, actor)
        except RecordError as error:
            if error.status in (401, 404):
                raise
            messages = by_input(error.problems, None, translator(actor.language), actor.language)
            failure = (instance_id, [m for found in messages.values() for m in found])
            return _page(web, request, actor, app_key, form_key, record_id, None, {}, error.status, failure)
        return RedirectResponse(f"/app/{app_key}/{form_key}/{record_id}?done={verb}", status_code=303)

    def make(
        request: Request,
        app_key: str,
        form_key: str,
        record_id: int,
        key: str,
        data: FormData = Depends(posted_form),
        actor: Actor = Actor_,
    ) -> Response:
        check_csrf(request, data, actor)
        web.service.resolve(app_key, form_key)
        try:
            made, record = web.process.make(app_key, form_key, record_id, key, actor)
        except RecordError as error:
            if error.status in (401, 404):
                raise
            errors = by_input(error.problems, None, translator(actor.language), actor.language)
            tried = (f"make:{key}", data)
            return _page(web, request, actor, app_key, form_key, record_id, tried, errors, error.status)
        if "created_at" not in record:  # made, but not readable by its maker: back to the source
            return RedirectResponse(f"/app/{app_key}/{form_key}/{record_id}?done=make", status_code=303)
        return RedirectResponse(f"/app/{app_key}/{made}/{record['id']}?made=1", status_code=303)

    prefix = "/app/{app_key}/{form_key}/{record_id:int}"
    router.add_api_route(prefix, show, methods=["GET"])
    router.add_api_route(prefix + "/make/{key}", make, methods=["POST"])
    router.add_api_route(prefix + "/do/{action}", take, methods=["POST"])
    router.add_api_route(prefix + "/approvals/{instance_id:int}/{verb}", approval_action, methods=["POST"])
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
    failure: Failure | None = None,
) -> Response:
    app, form = web.service.resolve(app_key, form_key)
    record = web.service.get(app_key, form_key, record_id, actor)
    access = web.service.access(app_key, form_key, actor)
    ctx = web.input_context(app, form, actor, creating=False)
    actions = _actions(web, app, form, record, actor, ctx, tried, errors)
    makes = _makes(web, app, form, record, actor, ctx.language)
    blocks = related_blocks(web, app, form, record_id, actor, ctx, request.query_params)
    shown = _sections(form, record, ctx, blocks)
    found = web.process.approvals(app_key, form_key, record_id, actor)
    approvals = _labelled(app, form, found, actor, ctx.language)
    history = web.service.history(app_key, form_key, record_id, actor)
    done = request.query_params.get("done")
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
        makes=makes,
        made=request.query_params.get("made") == "1",
        action_error=errors.get("", []) if tried else [],
        tried=tried[0] if tried else None,
        approvals=approvals,
        routes=_routes(web, app, record_id, form, approvals, actor, ctx.language),
        documents=_documents(web, app, form, record_id, actor, ctx.language),
        failure=failure,
        timeline=timeline(app.app, form, history, ctx, record, _names(web, user_ids(history))),
        can_edit=access.can("update"),
        saved=request.query_params.get("saved") == "1",
        done=done if done in ("withdraw", "nudge", "make") else None,
    )


def _documents(
    web: Web, app: CompiledApp, form: CompiledForm, record_id: int, actor: Actor, language: str
) -> list[Record]:
    """The documents the user may render from this record, titled in their language; their
    links go to the API's document routes, which take the web session too."""
    if not app.app.documents_of(form.key):
        return []
    found = documents_for(web.service).available(app.app.app, form.key, record_id, actor)
    return [{**item, "title": Labels(**item["label"]).text(language)} for item in found]


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


def _makes(
    web: Web, app: CompiledApp, form: CompiledForm, record: Record, actor: Actor, language: str
) -> list[dict[str, Any]]:
    """The make actions the user may take, each with its button title and, when it is not
    ready, why (in the user's language where the definition says it)."""
    if not form.form.actions:
        return []
    found = []
    workflow = app.app.workflow_of(form.key)
    for item in web.process.actions(app.app.app, form.key, record["id"], actor):
        spec = form.form.action(item["key"])
        if spec is None:
            continue
        reason = item["reason"] or ""
        if not item["ready"] and spec.states and workflow is not None:
            state = record.get(workflow.field) or workflow.initial().key
            if state not in spec.states:
                field = form.form.field(workflow.field)
                names = [option_label(field, s, language) for s in spec.states]
                reason = translator(language)("record.make_states", states=", ".join(names))
            elif spec.when is not None:
                reason = when_message(spec, language)
        elif not item["ready"] and spec.when is not None:
            reason = when_message(spec, language)
        found.append({**item, "title": spec.title(language), "reason": reason})
    return found


def _sections(
    form: CompiledForm, record: Record, ctx: Context, blocks: dict[str, Block] | None = None
) -> list[dict[str, Any]]:
    """The sections of fields and the related lists, in layout order (fields placed in no
    section follow the last section)."""
    groups: list[Any] = []
    last = -1
    for item in form.form.layout:
        if isinstance(item, RelatedList):
            if blocks and item.related in blocks:
                groups.append(blocks[item.related])
            continue
        tab = item.tab.text(ctx.language) if item.tab else ""
        groups.append((item.section.text(ctx.language), item.columns, list(item.fields), tab))
        last = len(groups) - 1
    placed = {k for s in form.form.sections() for k in s.fields}
    rest = [f.key for f in form.form.fields if f.key not in placed]
    if rest:
        groups.insert(last + 1, ("", 2, rest, ""))
    sections: list[dict[str, Any]] = []
    for group in groups:
        if isinstance(group, dict):  # a related list, drawn by _related.html
            sections.append({**group, "related": True})
            continue
        title, columns, keys, tab = group
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


def _labelled(
    app: CompiledApp, form: CompiledForm, approvals: list[Record], actor: Actor, language: str
) -> list[Record]:
    """The record's approvals with the labels of the approval and of each task's step, and what
    the submitter of a running one may do: nudge, and withdraw while nobody has decided."""
    for approval in approvals:
        approval["label"] = approval_labels(app.app, approval["approval"], None, language)[0]
        for task in approval["tasks"]:
            task["step_label"] = approval_labels(app.app, approval["approval"], task["step"], language)[1]
        spec = app.app.approval(approval["approval"])
        submitter = approval["submitted_by"]
        mine = approval["state"] == "running" and submitter is not None and submitter["id"] == actor.user_id
        decided = any(task["status"] in DECISIONS for task in approval["tasks"])
        approval["can_nudge"] = mine
        in_workflow = app.app.workflow_of(form.key) is not None
        approval["can_withdraw"] = mine and not decided and withdrawable(spec, in_workflow)
    return approvals


def _routes(
    web: Web,
    app: CompiledApp,
    record_id: int,
    form: CompiledForm,
    approvals: list[Record],
    actor: Actor,
    language: str,
) -> list[Record]:
    """The route ahead of each approval that runs, or could start, on the record.

    An approval whose last run approved the record (and still holds) has no route ahead;
    one never run, rejected, withdrawn or released shows the route it would take if
    submitted now.
    """
    try:
        found = web.process.route(app.app.app, form.key, record_id, actor)
    except RecordError:  # a step nobody could approve: the route cannot be told
        return []
    last = {a["approval"]: a for a in approvals}
    routes = []
    for item in found:
        latest = last.get(item["approval"])
        holding = latest is not None and latest["state"] == "approved" and latest["released_at"] is None
        if holding and not item["running"]:
            continue
        spec = app.app.approval(item["approval"])
        steps = []
        for step in item["steps"]:
            definition = next((s for s in spec.steps if s.name == step["step"]), None) if spec else None
            names = step["label"] or {}
            people = [str(a["display"] or f"#{a['id']}") for a in step["approvers"]]
            steps.append(
                {
                    "label": names.get(language) or names.get("en") or names.get("zh") or step["step"],
                    "current": step["current"],
                    "people": people,
                    "mode": _mode(definition, step["mode"], language) if len(people) > 1 else "",
                }
            )
        label = approval_labels(app.app, item["approval"], None, language)[0]
        routes.append(
            {"approval": item["approval"], "label": label, "running": item["running"], "steps": steps}
        )
    return routes


def _mode(step: Any, mode: str, language: str) -> str:
    """How a step with several approvers is decided, in words."""
    t = translator(language)
    if mode == "percent":
        return t("route.mode_percent", n=getattr(step, "percent", None) or 100)
    if mode == "count":
        return t("route.mode_count", n=getattr(step, "count", None) or 1)
    return t("route.mode_all") if mode == "all" else t("route.mode_any")


def _names(web: Web, ids: set[int]) -> dict[int, str]:
    """Display names of the users the timeline names (one query)."""
    if not ids:
        return {}
    with web.service.engine.connect() as conn:
        rows = conn.execute(select(users.c.id, users.c.display_name).where(users.c.id.in_(ids)))
        return {int(row[0]): str(row[1]) for row in rows}
