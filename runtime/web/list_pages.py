"""The list view of a form, saved views, and the type-ahead pickers of link, user and department fields.

The list reads one page through the records service (one statement with the link
display values joined, plus one count), so scope and hidden fields apply as in the
API. Its query string is the API's own (`where`, `sort`, field filters), plus
`q` (search in the text columns), `columns` and `offset`; a drill-down from a
dashboard lands here with the same `where`.

A link picker offers only the records its field's `filter` accepts. A filter reading
the record being entered (`record.account`) is asked with a POST of the whole form,
which the service evaluates as a save would (`RecordsService.link_filter`).
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlencode, urlsplit

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import RedirectResponse
from sqlalchemy import or_, select, true
from starlette.datastructures import FormData

from runtime.identity.actor import Actor
from runtime.records.compiled import CompiledApp, CompiledForm
from runtime.records.errors import InvalidRecord, NotFound
from runtime.records.user_limits import eligible
from runtime.schema.system import departments, users
from runtime.web.context import Web
from runtime.web.form_data import ROW_INPUT, record_from_form
from runtime.web.formats import display, record_title
from runtime.web.i18n import language_of, translator
from runtime.web.problems import by_input
from runtime.web.saved_views import clean_query, delete_view, save_view, views_of
from runtime.web.session import check_csrf, posted_form

OWN_PARAMS = {"q", "columns", "offset", "saved"}
SEARCHED = ("text", "email", "phone", "url", "long_text", "auto_number")
PICKS = 10


def list_router(web: Web) -> APIRouter:
    """List pages, saved views and pickers."""
    router = APIRouter(include_in_schema=False)
    Actor_ = Depends(web.actor)

    def list_page(request: Request, app_key: str, form_key: str, actor: Actor = Actor_) -> Response:
        app, form = web.service.resolve(app_key, form_key)
        access = web.service.access(app_key, form_key, actor)
        access.require("read")
        language = language_of(actor.language)
        params = request.query_params
        columns = _columns(form, params.getlist("columns"), access.hidden)
        offset = params.get("offset", "0")
        query = [(k, v) for k, v in params.multi_items() if k not in OWN_PARAMS and k != "where"]
        where = _combined(params.get("where", ""), _search(form, params.get("q", ""), columns, access.hidden))
        if where:
            query.append(("where", where))
        query += [("offset", offset if offset.isdigit() else "0"), ("count", "true")]
        errors: dict[str, list[str]] = {}
        page: dict[str, Any] = {"items": [], "total": 0, "next_offset": None, "offset": 0, "limit": 0}
        try:
            page = web.service.list_page(app_key, form_key, query, actor)
        except InvalidRecord as error:
            errors = by_input(error.problems, form, translator(language), language)
        ctx = web.input_context(app, form, actor, creating=False)
        rows = [
            [display(form.fields[k].spec, r.get(k), language, ctx.currency, ctx.zone) for k in columns]
            for r in page["items"]
        ]
        return web.pages.render(
            request,
            actor,
            "list.html",
            status=422 if errors else 200,
            app=app,
            form=form,
            title=form.form.label.text(language),
            columns=[(k, form.fields[k].spec.title(language), form.fields[k].type) for k in columns],
            chosen=set(columns),
            choices=[
                (k, f.spec.title(language), f.type) for k, f in form.fields.items() if k not in access.hidden
            ],
            records=list(zip(page["items"], rows, strict=True)),
            page=page,
            errors=errors,
            where=params.get("where", ""),
            q=params.get("q", ""),
            sort=params.get("sort", ",".join(form.form.list_view.sort)),
            paging=_paging(params, page),
            sort_links=_sort_links(params, columns),
            views=views_of(web.service.engine, actor.user_id, app_key, form_key) if actor.user_id else [],
            view_query=clean_query(str(request.url.query)),
            can_create=access.can("create"),
            can_export=access.can("export"),
            export_query=urlencode([(k, v) for k, v in query if k not in ("offset", "count")]),
        )

    def save(
        request: Request,
        app_key: str,
        form_key: str,
        data: FormData = Depends(posted_form),
        actor: Actor = Actor_,
    ) -> Response:
        check_csrf(request, data, actor)
        web.service.access(app_key, form_key, actor).require("read")
        name = str(data.get("name") or "").strip()[:100]
        query = str(data.get("query") or "")
        if name and actor.user_id is not None:
            save_view(web.service.engine, actor.user_id, app_key, form_key, name, query)
        return RedirectResponse(f"/app/{app_key}/{form_key}?{clean_query(query)}", status_code=303)

    def remove(
        request: Request,
        app_key: str,
        form_key: str,
        view_id: int,
        data: FormData = Depends(posted_form),
        actor: Actor = Actor_,
    ) -> Response:
        check_csrf(request, data, actor)
        if actor.user_id is not None:
            delete_view(web.service.engine, actor.user_id, view_id)
        return RedirectResponse(f"/app/{app_key}/{form_key}", status_code=303)

    def pick(request: Request, app_key: str, form_key: str, field: str, actor: Actor = Actor_) -> Response:
        return pick_with(request, app_key, form_key, field, actor, None)

    def pick_for_record(
        request: Request,
        app_key: str,
        form_key: str,
        field: str,
        data: FormData = Depends(posted_form),
        actor: Actor = Actor_,
    ) -> Response:
        check_csrf(request, data, actor)
        return pick_with(request, app_key, form_key, field, actor, data)

    def pick_with(
        request: Request, app_key: str, form_key: str, field: str, actor: Actor, data: FormData | None
    ) -> Response:
        """The options of a picker; with `data` (the whole form), those its filter accepts for it."""
        app, form = web.service.resolve(app_key, form_key)
        spec = _picked_field(form, field)
        trigger = request.headers.get("HX-Trigger-Name", "")
        text = _typed(request, data, trigger)
        if spec.type == "user":
            options = _users(web, text, spec)
        elif spec.type == "department":
            options = _departments(web, text)
        else:
            condition = _link_filter(web, request, app, form, field, actor, data, trigger)
            options = _records(web, app, spec.to, text, actor, condition)
        return web.pages.render(request, actor, "_picks.html", options=options, fragment=True)

    def pick_user(request: Request, actor: Actor = Actor_) -> Response:
        options = _users(web, _typed(request))
        return web.pages.render(request, actor, "_picks.html", options=options, fragment=True)

    prefix = "/app/{app_key}/{form_key}"
    router.add_api_route(prefix, list_page, methods=["GET"])
    router.add_api_route(prefix + "/views", save, methods=["POST"])
    router.add_api_route(prefix + "/views/{view_id:int}/delete", remove, methods=["POST"])
    router.add_api_route(prefix + "/_pick/{field}", pick, methods=["GET"])
    router.add_api_route(prefix + "/_pick/{field}", pick_for_record, methods=["POST"])
    router.add_api_route("/users/_pick", pick_user, methods=["GET"])
    return router


def _columns(form: CompiledForm, asked: list[str], hidden: frozenset[str]) -> list[str]:
    usable = [k for k, f in form.fields.items() if k not in hidden and f.type != "table"]
    wanted = [k for k in asked if k in usable] or [k for k in form.form.list_view.columns if k in usable]
    return wanted or usable[:6]


def _search(form: CompiledForm, text: str, columns: list[str], hidden: frozenset[str]) -> str:
    """`q` as a condition: any searched column (or the title) contains it, ignoring ASCII case."""
    text = text.strip()[:100]
    if not text:
        return ""
    keys = [k for k in dict.fromkeys([form.title_field, *columns]) if k in form.fields and k not in hidden]
    keys = [k for k in keys if form.fields[k].type in SEARCHED]
    literal = "'" + text.lower().replace("\\", "\\\\").replace("'", "\\'") + "'"
    parts = [f"CONTAINS(LOWER({k}), {literal})" for k in keys]
    return " or ".join(parts) if parts else "false"


def _combined(where: str, search: str) -> str:
    if where.strip() and search:
        return f"({where}) and ({search})"
    return where.strip() or search


def _paging(params: Any, page: dict[str, Any]) -> dict[str, str | None]:
    def at(offset: int) -> str:
        pairs = [(k, v) for k, v in params.multi_items() if k != "offset"] + [("offset", str(offset))]
        return "?" + urlencode(pairs)

    previous = page["offset"] - page["limit"] if page["offset"] else None
    return {
        "previous": at(max(previous, 0)) if previous is not None else None,
        "next": at(page["next_offset"]) if page.get("next_offset") is not None else None,
    }


def _sort_links(params: Any, columns: list[str]) -> dict[str, str]:
    current = params.get("sort", "")
    links = {}
    for key in columns:
        value = f"-{key}" if current == key else key
        pairs = [(k, v) for k, v in params.multi_items() if k not in ("sort", "offset")] + [("sort", value)]
        links[key] = "?" + urlencode(pairs)
    return links


def _link_filter(
    web: Web,
    request: Request,
    app: CompiledApp,
    form: CompiledForm,
    field: str,
    actor: Actor,
    data: FormData | None,
    trigger: str,
) -> Any:
    """The link's filter as SQL for the record the form holds (None: the link has none)."""
    record_id = _record_id(app.app.app, form.key, request, data)
    entered: dict[str, Any] = {}
    if data is not None:
        ctx = web.input_context(app, form, actor, creating=record_id is None)
        entered = record_from_form(form, data, ctx.zone, web.editable(form, ctx))
    row = ROW_INPUT.match(trigger.removesuffix("._search"))
    index = int(row.group(2)) if row else None
    return web.service.link_filter(app.app.app, form.key, field, entered, actor, record_id, index)


def _record_id(app_key: str, form_key: str, request: Request, data: FormData | None) -> int | None:
    """The record being edited: the form's `record_id`, else the record page the picker is on
    (a workflow action's form)."""
    raw = str(data.get("record_id") or "") if data is not None else ""
    if raw.isdigit() and len(raw) < 19:
        return int(raw)
    page = urlsplit(request.headers.get("HX-Current-URL", "")).path
    record_page = rf"/app/{re.escape(app_key)}/{re.escape(form_key)}/([0-9]{{1,18}})(?:/edit)?/?"
    found = re.fullmatch(record_page, page)
    return int(found.group(1)) if found else None


def _typed(request: Request, data: FormData | None = None, trigger: str = "") -> str:
    """What the user typed into a picker: `q`, or the picker's own `<name>._search` input."""
    if data is not None and trigger.endswith("._search") and isinstance(data.get(trigger), str):
        return str(data.get(trigger))
    for name, value in [*request.query_params.items(), *(data.multi_items() if data is not None else [])]:
        if (name == "q" or name.endswith("._search")) and isinstance(value, str):
            return value
    return ""


def _picked_field(form: CompiledForm, field: str) -> Any:
    """A link or user field of the form, or of one of its tables (`lines.product`)."""
    table, _, column = field.partition(".")
    owner = form.children.get(table) if column else form
    spec = owner.fields[column or field].spec if owner and (column or field) in owner.fields else None
    if spec is None or spec.type not in ("link", "user", "department"):
        raise NotFound("field", field)
    return spec


def _records(
    web: Web, app: CompiledApp, target: str, text: str, actor: Actor, condition: Any = None
) -> list[tuple[str, str]]:
    """Up to ten records of the linked form the user may read (and the link's filter accepts,
    `condition`), whose title contains `text`."""
    form = app.forms[target]
    title = form.title_field
    params = [("limit", str(PICKS)), ("sort", title)]
    search = _search(form, text, [], frozenset())
    if search:
        params.append(("where", search))
    page = web.service.list_page(app.app.app, target, params, actor, condition)
    return [(str(r["id"]), record_title(r, title)) for r in page["items"]]


def _users(web: Web, text: str, spec: Any = None) -> list[tuple[str, str]]:
    """Up to ten active users whose name or user name contains `text` (and whom `spec`, a user
    field limited by `roles` or `within`, accepts)."""
    text = text.strip()[:100]
    with web.service.engine.connect() as conn:
        limit = eligible(conn, spec) if spec is not None else None
        stmt = _user_picks(text, true() if limit is None else limit)
        return [(str(r.id), f"{r.display_name} ({r.username})") for r in conn.execute(stmt)]


def _user_picks(text: str, limit: Any) -> Any:
    """The SELECT of the active users matching `text` and the condition `limit`."""
    return (
        select(users.c.id, users.c.display_name, users.c.username)
        .where(users.c.active.is_(True), limit)
        .where(
            or_(
                users.c.display_name.icontains(text, autoescape=True),
                users.c.username.icontains(text, autoescape=True),
            )
        )
        .order_by(users.c.display_name)
        .limit(PICKS)
    )


def _departments(web: Web, text: str) -> list[tuple[str, str]]:
    """Up to ten departments whose name or key contains `text`."""
    text = text.strip()[:100]
    stmt = (
        select(departments.c.id, departments.c.name)
        .where(
            or_(
                departments.c.name.icontains(text, autoescape=True),
                departments.c.key.icontains(text, autoescape=True),
            )
        )
        .order_by(departments.c.name, departments.c.id)
        .limit(PICKS)
    )
    with web.service.engine.connect() as conn:
        return [(str(r.id), str(r.name)) for r in conn.execute(stmt)]
