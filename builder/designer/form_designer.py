"""The form designer: a palette, a canvas of sections, a property panel and a live preview.

The browser holds the form being designed as plain data (what the YAML file says) and
sends it whole: to save it (`POST …/forms/{key}`), to draw the preview with the app's
own form templates, and to check an expression with the loader's type checker. Keys
for new fields come from their labels (`POST …/key`).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import ValidationError
from starlette.datastructures import FormData

from builder.designer.keys import key_from_label
from builder.designer.pages import Designer, json_answer, require_token
from builder.designer.workspace import NoSuchDefinition, StaleDraft
from runtime.expressions.types import BOOLEAN, field_type, filter_scope, scope_for
from runtime.identity.actor import Actor
from runtime.loading.checks import check_app
from runtime.loading.expression_checks import expression_problem
from runtime.loading.source import FormSource, SourceFile
from runtime.model import App, Form
from runtime.model.fields import FIELD_TYPES
from runtime.records.compiled import compile_app
from runtime.records.preview import Preview, RowPreview
from runtime.schema.tables import build_tables
from runtime.web.form_view import Context, build_view, state_of_defaults
from runtime.web.i18n import language_of
from runtime.web.session import posted_form

CONDITIONS = ("visible_when", "required_when")


def form_designer_router(designer: Designer) -> APIRouter:
    """The designer's home and the form designer."""
    router = APIRouter(include_in_schema=False)
    Admin = Depends(designer.admin)
    space = designer.workspace

    def home(request: Request, actor: Actor = Admin) -> Response:
        apps = []
        for app_key in space.packs:
            apps.append(
                {
                    "key": app_key,
                    "kinds": {kind: [k for k, _ in space.definitions(app_key, kind)] for kind in KIND_PAGES},
                    "problems": space.problems(app_key),
                }
            )
        return designer.render(request, actor, "designer_home.html", apps=apps, title="Designer")

    def new_form(
        request: Request, app_key: str, data: FormData = Depends(posted_form), actor: Actor = Admin
    ) -> Response:
        require_token(request, actor, data)
        zh, en = str(data.get("label_zh") or "").strip(), str(data.get("label_en") or "").strip()
        taken = {k for k, _ in space.definitions(app_key, "forms")} | _served_forms(designer, app_key)
        key = key_from_label(en or zh or "form", taken)
        label = {k: v for k, v in (("zh", zh), ("en", en)) if v} or {"en": key}
        form = {
            "form": key,
            "label": label,
            "fields": [{"key": "name", "type": "text", "label": {"zh": "名称", "en": "Name"}}],
        }
        space.save(app_key, "forms", key, form)
        return RedirectResponse(f"/designer/{app_key}/forms/{key}", status_code=303)

    def page(request: Request, app_key: str, key: str, actor: Actor = Admin) -> Response:
        space.load(app_key, "forms", key)  # 404 when there is no such form
        return designer.render(
            request,
            actor,
            "designer_form.html",
            app_key=app_key,
            key=key,
            title=key,
            field_types=FIELD_TYPES,
        )

    def model(app_key: str, key: str, actor: Actor = Admin) -> Response:
        draft = space.load(app_key, "forms", key)
        forms = sorted({k for k, _ in space.definitions(app_key, "forms")} | _served_forms(designer, app_key))
        return json_answer(
            {
                "form": draft,
                "field_types": list(FIELD_TYPES),
                "forms": forms,
                "published_keys": sorted(space.published_fields(app_key, key)),
                "revision": space.revision(app_key, "forms", key),
                "problems": space.problems(app_key),
            }
        )

    def save(
        request: Request, app_key: str, key: str, body: Any = Body(...), actor: Actor = Admin
    ) -> Response:
        require_token(request, actor)
        form = body.get("form") if isinstance(body, dict) else None
        if not isinstance(form, dict) or form.get("form") != key:
            return json_answer({"problems": [f"the body must hold the form '{key}'"]}, 422)
        revision = body.get("revision")
        try:
            saved = space.save(app_key, "forms", key, form, revision if isinstance(revision, str) else None)
        except StaleDraft as stale:
            return json_answer({"problems": [str(stale)], "stale": True}, 409)
        return json_answer(
            {
                "file": saved.path.name,
                "problems": saved.problems,
                "plan": f"/designer/{app_key}/publish",
                "revision": saved.revision,
            }
        )

    def preview(
        request: Request, app_key: str, key: str, body: Any = Body(...), actor: Actor = Admin
    ) -> Response:
        require_token(request, actor)
        language = language_of(actor.language)
        try:
            app, form = _draft(designer, app_key, body.get("form") if isinstance(body, dict) else None)
            _check_draft(app, form)
            compiled = compile_app(
                app, build_tables(app), designer.service.engine.dialect.name, designer.service.clock
            )
            target = compiled.forms.get(form.form)
            if target is None:
                raise ValueError("a child form is previewed inside the form that holds it")
            ctx = Context(language, app.currency, app.zone(), frozenset(), set())
            required = [f.key for f in form.fields if f.required]
            view = build_view(
                target, state_of_defaults(target, None), Preview(RowPreview(required=required)), ctx, {}
            )
        except (ValidationError, ValueError, KeyError) as error:
            return designer.render(
                request,
                actor,
                "designer_preview.html",
                status=422,  # the designer shows the notice all the same
                fragment=True,
                view=None,
                error=_short(error),
            )
        return designer.render(
            request,
            actor,
            "designer_preview.html",
            fragment=True,
            view=view,
            error="",
            app_key=app_key,
            form_key=key,
        )

    def check(request: Request, app_key: str, body: Any = Body(...), actor: Actor = Admin) -> Response:
        require_token(request, actor)
        if not isinstance(body, dict) or not isinstance(body.get("text"), str):
            return json_answer({"ok": False, "message": "send {form, field, kind, text}"}, 422)
        try:
            app, form = _draft(designer, app_key, body.get("form"))
        except (ValidationError, ValueError, KeyError) as error:
            return json_answer({"ok": False, "message": f"fix the form first: {_short(error)}"})
        spec = form.field(str(body.get("field") or ""))
        kind = str(body.get("kind") or "formula")
        wanted = BOOLEAN if kind in CONDITIONS or spec is None or spec.type == "table" else field_type(spec)
        scope = scope_for(app, form)
        if kind == "filter":  # a link's filter: on the linked form, with record. (and parent.)
            target = app.form(str(getattr(spec, "to", "")))
            if target is None:
                return json_answer({"ok": False, "message": "choose the form the link points at first"})
            holder = next((f for f in app.forms if any(t.form == form.form for t in f.table_fields())), None)
            scope, wanted = filter_scope(app, target, form, holder if form.child else None), BOOLEAN
        text = body["text"]
        shift = 0
        if kind == "default":
            stripped = text.lstrip()
            shift = len(text) - len(stripped) + 1
            text = stripped[1:]
        found = expression_problem(text, scope, wanted)
        if found is None:
            return json_answer({"ok": True, "message": ""})
        message, offset = found
        return json_answer({"ok": False, "message": message, "column": offset + shift + 1})

    def new_key(request: Request, app_key: str, body: Any = Body(...), actor: Actor = Admin) -> Response:
        require_token(request, actor)
        label = str(body.get("label") or "") if isinstance(body, dict) else ""
        taken = [str(k) for k in body.get("taken", [])] if isinstance(body, dict) else []
        return json_answer({"key": key_from_label(label, taken)})

    router.add_api_route("/designer", home, methods=["GET"])
    router.add_api_route("/designer/{app_key}/forms", new_form, methods=["POST"])
    router.add_api_route("/designer/{app_key}/forms/{key}", page, methods=["GET"])
    router.add_api_route("/designer/{app_key}/forms/{key}/model", model, methods=["GET"])
    router.add_api_route("/designer/{app_key}/forms/{key}", save, methods=["POST"])
    router.add_api_route("/designer/{app_key}/forms/{key}/preview", preview, methods=["POST"])
    router.add_api_route("/designer/{app_key}/check", check, methods=["POST"])
    router.add_api_route("/designer/{app_key}/key", new_key, methods=["POST"])
    return router


KIND_PAGES = ("forms", "workflows", "approvals", "dashboards")


def _served_forms(designer: Designer, app_key: str) -> set[str]:
    app = designer.service.apps.get(app_key)
    return set(app.forms) if app else set()


def _draft(designer: Designer, app_key: str, data: Any) -> tuple[App, Form]:
    """The served app with the form being designed in place of (or beside) its published one."""
    if not isinstance(data, dict):
        raise ValueError("no form given")
    served = designer.service.apps.get(app_key)
    if served is None:
        raise NoSuchDefinition(app_key)
    form = Form.model_validate(data)
    forms = [form if f.form == form.form else f for f in served.app.forms]
    if form.form not in {f.form for f in served.app.forms}:
        forms.append(form)
    return served.app.model_copy(update={"forms": forms}), form


def _check_draft(app: App, form: Form) -> None:
    """Raise ValueError with the first problem the loader's cross-checks find in the draft form
    (an unknown field in its layout or expressions, a link to no form), which compiling it
    assumes away; the served forms were checked when they were loaded."""
    at = FormSource(SourceFile(f"forms/{form.form}.yaml"), ())
    problems = check_app(app, {f.form: at for f in app.forms}, {f.form for f in app.forms})
    if problems:
        raise ValueError(problems[0].message)


def _short(error: Exception) -> str:
    if isinstance(error, ValidationError):
        first = error.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        return f"{where}: {first.get('msg', 'invalid')}"
    return str(error)
