"""Enter and edit records: the generated form, its live preview, and saving through the service.

`GET /app/{app}/{form}/new` and `…/{id}/edit` draw the form; a POST saves through the
records service and goes to the record page, or draws the form again with the
user's input, each error beside its input (422), a duplicate warning with links to
the possible duplicates (409), or a note that someone else saved meanwhile.
`POST …/_live` answers the live preview as an htmx event (`formloom:live`).
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import RedirectResponse
from sqlalchemy import select
from starlette.datastructures import FormData, UploadFile

from runtime.db import write
from runtime.identity.actor import Actor
from runtime.records.compiled import CompiledApp, CompiledForm
from runtime.records.errors import Conflict, InvalidRecord, RecordError
from runtime.records.preview import Preview, RowPreview
from runtime.schema.system import departments, users
from runtime.web.context import Web
from runtime.web.fetched import Titles, fetched_payload, fill_fetched, link_titles
from runtime.web.form_data import cleared, record_from_form, uploads
from runtime.web.form_view import (
    Context,
    build_view,
    state_of_defaults,
    state_of_form,
    state_of_record,
)
from runtime.web.formats import display
from runtime.web.i18n import translator
from runtime.web.problems import by_input, held_message
from runtime.web.related_view import given_links
from runtime.web.session import check_csrf, posted_form

Record = dict[str, Any]
HELD = ("material", "locked")


def record_router(web: Web) -> APIRouter:
    """The form pages of every top-level form."""
    router = APIRouter(include_in_schema=False)
    Actor_ = Depends(web.actor)
    Posted = Depends(posted_form)

    def new_record(request: Request, app_key: str, form_key: str, actor: Actor = Actor_) -> Response:
        app, form = web.service.resolve(app_key, form_key)
        web.service.access(app_key, form_key, actor).require("create")
        user = (actor.user_id, _name(web, actor)) if actor.user_id else None
        state = state_of_defaults(form, user, _department(web, form, actor))
        ctx = web.input_context(app, form, actor, creating=True)  # `?account=3` fills a link (related lists)
        state.update(given_links(web, app, form, request.query_params, actor, web.editable(form, ctx)))
        return _draw(web, request, actor, app, form, state, None, {}, status=200)

    def create(
        request: Request, app_key: str, form_key: str, data: FormData = Posted, actor: Actor = Actor_
    ) -> Response:
        check_csrf(request, data, actor)
        app, form = web.service.resolve(app_key, form_key)
        ctx = web.input_context(app, form, actor, creating=True)
        try:
            record = _input_record(web, form, data, ctx, actor)
            saved = web.service.create(
                app_key, form_key, record, actor, allow_duplicate=data.get("allow_duplicate") == "true"
            )
        except (InvalidRecord, Conflict) as error:
            return _refused(web, request, actor, app, form, data, error, None)
        return RedirectResponse(f"/app/{app_key}/{form_key}/{saved['id']}?saved=1", status_code=303)

    def edit_record(
        request: Request, app_key: str, form_key: str, record_id: int, actor: Actor = Actor_
    ) -> Response:
        app, form = web.service.resolve(app_key, form_key)
        web.service.access(app_key, form_key, actor).require("update")
        record = web.service.get(app_key, form_key, record_id, actor)
        state = state_of_record(form, record, app.app.zone())
        return _draw(web, request, actor, app, form, state, record, {}, status=200)

    def update(
        request: Request,
        app_key: str,
        form_key: str,
        record_id: int,
        data: FormData = Posted,
        actor: Actor = Actor_,
    ) -> Response:
        check_csrf(request, data, actor)
        app, form = web.service.resolve(app_key, form_key)
        ctx = web.input_context(app, form, actor, creating=False)
        version = str(data.get("version") or "")
        try:
            record = _input_record(web, form, data, ctx, actor)
            web.service.update(
                app_key,
                form_key,
                record_id,
                record,
                int(version) if version.isdigit() else None,
                actor,
                allow_duplicate=data.get("allow_duplicate") == "true",
            )
        except (InvalidRecord, Conflict) as error:
            stored = web.service.get(app_key, form_key, record_id, actor)
            return _refused(web, request, actor, app, form, data, error, stored)
        return RedirectResponse(f"/app/{app_key}/{form_key}/{record_id}?saved=1", status_code=303)

    def live(
        request: Request, app_key: str, form_key: str, data: FormData = Posted, actor: Actor = Actor_
    ) -> Response:
        check_csrf(request, data, actor)
        app, form = web.service.resolve(app_key, form_key)
        raw_id = str(data.get("record_id") or "")
        record_id = int(raw_id) if raw_id.isdigit() else None
        ctx = web.input_context(app, form, actor, creating=record_id is None)
        entered = record_from_form(form, data, ctx.zone, web.editable(form, ctx))
        found = web.service.preview(app_key, form_key, entered, actor, record_id)
        event = {"formloom:live": live_payload(form, found, ctx, link_titles(web, app, form, found, actor))}
        return Response(status_code=204, headers={"HX-Trigger": json.dumps(event, ensure_ascii=True)})

    prefix = "/app/{app_key}/{form_key}"
    router.add_api_route(prefix + "/new", new_record, methods=["GET"])
    router.add_api_route(prefix + "/new", create, methods=["POST"])
    router.add_api_route(prefix + "/_live", live, methods=["POST"])
    router.add_api_route(prefix + "/{record_id:int}/edit", edit_record, methods=["GET"])
    router.add_api_route(prefix + "/{record_id:int}/edit", update, methods=["POST"])
    return router


def live_payload(
    form: CompiledForm, found: Preview, ctx: Context, titles: Titles | None = None
) -> dict[str, Any]:
    """The preview as the page applies it: formatted values, visibility, required fields, and
    the inputs filled by their fetch (`titles` names the linked records those give)."""
    return {
        "record": _row_payload(form, found.record, ctx, "", titles),
        "rows": [
            _row_payload(form.children[key], row, ctx, f"{key}[{index}].", titles)
            for key, rows in found.children.items()
            for index, row in enumerate(rows)
        ],
    }


def _row_payload(
    form: CompiledForm, row: RowPreview, ctx: Context, prefix: str, titles: Titles | None = None
) -> dict[str, Any]:
    values = {
        f"{prefix}{key}": display(form.fields[key].spec, value, ctx.language, ctx.currency, ctx.zone)
        for key, value in row.values.items()
        if key in form.fields
    }
    visible = {f"{prefix}{key}": shown for key, shown in row.visible.items()}
    optional = [f"{prefix}{k}" for k, f in form.fields.items() if k not in row.required and f.type != "table"]
    return {
        "values": values,
        "visible": visible,
        "required": [f"{prefix}{k}" for k in row.required],
        "optional": optional,
        "fetched": fetched_payload(form, row, ctx, prefix, titles),
    }


def _input_record(web: Web, form: CompiledForm, data: FormData, ctx: Context, actor: Actor) -> Record:
    editable = web.editable(form, ctx)
    record = record_from_form(form, data, ctx.zone, editable)
    for key in cleared(form, data, editable):
        record[key] = None
    chosen = uploads(form, data, editable)
    if chosen:
        with write(web.service.engine) as conn:
            for key, upload in chosen.items():
                info = web.store.save(
                    conn,
                    upload.file,
                    upload.filename or "file",
                    upload.content_type or "application/octet-stream",
                    actor.user_id,
                )
                record[key] = info["id"]
    return record


def _refused(
    web: Web,
    request: Request,
    actor: Actor,
    app: CompiledApp,
    form: CompiledForm,
    data: FormData,
    error: RecordError,
    stored: Record | None,
) -> Response:
    """The form again, as the user left it, with the service's answer."""
    t = translator(actor.language)
    duplicates = [p for p in error.problems if p.code == "duplicate"]
    stale = any(p.code == "version_conflict" for p in error.problems)
    # A change the approval or the state does not allow (409 `material`, `locked`) is about the
    # record, not the value typed: it goes to the top of the form, where it is seen at once.
    held = [held_message(p, form, t, actor.language) for p in error.problems if p.code in HELD]
    problems = [p for p in error.problems if p.code not in ("duplicate", "version_conflict", *HELD)]
    errors = by_input(problems, form, t, actor.language)
    if held:
        errors[""] = held + errors.get("", [])
    if stale:
        errors.setdefault("", []).append(t("form.stale"))
    found = [(i, f"/app/{app.app.app}/{form.key}/{i}") for p in duplicates for i in p.candidates]
    state = state_of_form(form, data)
    if stored is not None:  # files are not sent back by the browser: show the stored ones
        for key, item in form.fields.items():
            if item.type == "attachment":
                state[key] = stored.get(key)
    status = 409 if found or stale or held else 422
    return _draw(web, request, actor, app, form, state, stored, errors, status, found)


def _draw(
    web: Web,
    request: Request,
    actor: Actor,
    app: CompiledApp,
    form: CompiledForm,
    state: Record,
    stored: Record | None,
    errors: dict[str, list[str]],
    status: int,
    duplicates: list[tuple[int, str]] | None = None,
) -> Response:
    creating = stored is None
    ctx = web.input_context(app, form, actor, creating=creating)
    entered = _preview_input(form, state, ctx, web)
    record_id = None if stored is None else stored["id"]
    preview = web.service.preview(app.app.app, form.key, entered, actor, record_id)
    fill_fetched(state, form, preview, ctx, link_titles(web, app, form, preview, actor))
    view = build_view(form, state, preview, ctx, errors)
    return web.pages.render(
        request,
        actor,
        "form.html",
        status=status,
        app=app,
        form=form,
        view=view,
        record=stored,
        duplicates=duplicates or [],
        title=form.form.label.text(ctx.language),
    )


def _preview_input(form: CompiledForm, state: Record, ctx: Context, web: Web) -> Record:
    """The drawn state as the preview reads it (same conversion as a submitted form)."""
    pairs: list[tuple[str, str | UploadFile]] = []
    for key, value in state.items():
        if key in form.children:
            for index, row in enumerate(value or []):
                pairs.extend(_row_pairs(key, index, row))
        elif isinstance(value, list):
            pairs.extend((key, str(v)) for v in value)
        elif isinstance(value, bool):
            pairs.append((key, "true" if value else "false"))
        elif isinstance(value, str):
            pairs.append((key, value))
    pairs.extend(("_present", key) for key in form.children)
    return record_from_form(form, FormData(pairs), ctx.zone, web.editable(form, ctx))


def _row_pairs(key: str, index: int, row: Record) -> list[tuple[str, str | UploadFile]]:
    pairs: list[tuple[str, str | UploadFile]] = []
    for column, value in row.items():
        name = f"{key}[{index}].{column}"
        if isinstance(value, list):
            pairs.extend((name, str(v)) for v in value)
        elif isinstance(value, bool):
            pairs.append((name, "true" if value else "false"))
        elif value is not None and not column.endswith("._display"):
            pairs.append((name, str(value)))
    return pairs


def _department(web: Web, form: CompiledForm, actor: Actor) -> tuple[int, str] | None:
    """The writer's department, when they have one and the form fills one in by default."""
    defaults = (getattr(f.spec, "default", None) for f in form.fields.values())
    if actor.department_id is None or "current_user_department" not in defaults:
        return None
    with web.service.engine.connect() as conn:
        found = conn.execute(select(departments.c.name).where(departments.c.id == actor.department_id))
        name = found.scalar()
    return (actor.department_id, str(name)) if name is not None else None


def _name(web: Web, actor: Actor) -> str:
    with web.service.engine.connect() as conn:
        found = conn.execute(select(users.c.display_name).where(users.c.id == actor.user_id)).scalar()
    return str(found or actor.username)
