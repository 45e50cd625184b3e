"""The dashboard designer: add a widget (source, measure, dimension, chart), preview it with live
data, reorder or remove widgets.

A preview runs the draft widget through the reports service against the served app's
tables, with the loader's checks first: a widget the loader would refuse is explained,
not run. Only published fields can be previewed (the tables hold nothing else yet).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from starlette.datastructures import FormData

from builder.designer.keys import key_from_label
from builder.designer.pages import Designer, json_answer, require_token
from builder.designer.roundtrip import merge, open_document
from builder.designer.workspace import StaleDraft
from runtime.identity.actor import Actor
from runtime.loading.loader import load_pack
from runtime.loading.problems import DefinitionError
from runtime.records.errors import RecordError
from runtime.reports.service import ReportsService
from runtime.web.session import posted_form

CHARTS = ("bar", "line", "pie", "number", "table")
AGGREGATES = ("count", "count_distinct", "sum", "avg", "min", "max")
BUCKETS = ("", "day", "week", "month", "quarter", "year")
Record = dict[str, Any]


def dashboard_designer_router(designer: Designer) -> APIRouter:
    """`/designer/{app}/dashboards/{key}`: the widgets, the new-widget form and its preview."""
    router = APIRouter(include_in_schema=False)
    Admin = Depends(designer.admin)
    space = designer.workspace

    def page(request: Request, app_key: str, key: str, actor: Actor = Admin) -> Response:
        return _page(designer, request, actor, app_key, key, space.load(app_key, "dashboards", key), [], None)

    def change(
        request: Request, app_key: str, key: str, data: FormData = Depends(posted_form), actor: Actor = Admin
    ) -> Response:
        require_token(request, actor, data)
        board = space.load(app_key, "dashboards", key)
        widgets = [w for w in board.get("widgets", []) if isinstance(w, dict)]
        action, target = str(data.get("action") or ""), str(data.get("widget") or "")
        keys = [str(w.get("key")) for w in widgets]
        if action == "add":
            widgets.append(widget_from_form(data, keys))
        elif target in keys:
            index = keys.index(target)
            if action == "remove":
                widgets.pop(index)
            elif action in ("up", "down"):
                other = index - 1 if action == "up" else index + 1
                if 0 <= other < len(widgets):
                    widgets[index], widgets[other] = widgets[other], widgets[index]
        board["widgets"] = widgets
        given = data.get("revision")
        try:
            saved = space.save(
                app_key, "dashboards", key, board, given if isinstance(given, str) and given else None
            )
        except StaleDraft as stale:
            fresh = space.load(app_key, "dashboards", key)
            return _page(designer, request, actor, app_key, key, fresh, [str(stale)], None, 409)
        status = 422 if saved.problems else 200
        return _page(designer, request, actor, app_key, key, board, saved.problems, saved.path.name, status)

    def preview(request: Request, app_key: str, key: str, actor: Actor = Admin) -> Response:
        board = space.load(app_key, "dashboards", key)
        widget = widget_from_form(request.query_params, [])
        problem, draft = _checked_widget(space.folder(app_key), board, widget)
        served = designer.service.apps.get(app_key)
        if problem or draft is None or served is None:
            return json_answer({"problems": [problem or "the app is not served"]}, 422)
        try:
            data = ReportsService(designer.service).widget_data(served, draft, [], actor)
        except RecordError as error:
            return json_answer({"problems": [p.message for p in error.problems]}, error.status)
        except Exception as error:  # a field that is not published yet has no column to count
            return json_answer(
                {"problems": [f"publish the fields this widget reads first ({error.__class__.__name__})"]},
                422,
            )
        return json_answer(data)

    router.add_api_route("/designer/{app_key}/dashboards/{key}", page, methods=["GET"])
    router.add_api_route("/designer/{app_key}/dashboards/{key}", change, methods=["POST"])
    router.add_api_route("/designer/{app_key}/dashboards/{key}/preview", preview, methods=["GET"])
    return router


def widget_from_form(data: Any, taken: list[str]) -> Record:
    """A widget definition from the new-widget form (or the preview's query string)."""
    zh, en = str(data.get("label_zh") or "").strip(), str(data.get("label_en") or "").strip()
    key = str(data.get("key") or "").strip() or key_from_label(en or zh or "widget", taken)
    chart = str(data.get("chart") or "bar")
    agg = str(data.get("agg") or "count")
    measure: Record = {"key": agg, "agg": agg}
    if data.get("measure_field"):
        measure["field"] = str(data.get("measure_field"))
        measure["key"] = f"{agg}_{measure['field']}"
    widget: Record = {
        "key": key,
        "label": {k: v for k, v in (("zh", zh), ("en", en)) if v} or {"en": key},
        "chart": chart,
        "source": str(data.get("source") or ""),
        "measures": [measure],
    }
    if data.get("dimension_field") and chart != "number":
        path = str(data.get("dimension_field"))
        dimension: Record = {"key": path.replace(".", "_"), "field": path}
        if data.get("bucket"):
            dimension["bucket"] = str(data.get("bucket"))
        widget["dimensions"] = [dimension]
    top = str(data.get("top") or "")
    if top.isdigit():
        widget["top"] = int(top)
    return widget


def _checked_widget(folder: Path, board: Record, widget: Record) -> tuple[str | None, Any]:
    """The loader's verdict on the dashboard with `widget` added, on a copy of the pack."""
    with tempfile.TemporaryDirectory() as scratch:
        copy = Path(scratch) / "pack"
        shutil.copytree(folder, copy)
        name = str(board.get("dashboard"))
        draft = {**board, "widgets": [widget]}
        document = open_document(copy / "dashboards" / "_preview.yaml", {})
        merge(document.data, {**draft, "dashboard": f"{name}_preview"})
        document.save()
        try:
            app = load_pack(copy)
        except DefinitionError as error:
            mine = [str(p).split("/pack/", 1)[-1] for p in error.problems if "_preview.yaml" in str(p)]
            return (mine or [str(error.problems[0])])[0], None
    dashboard = app.dashboard(f"{name}_preview")
    return None, dashboard.widgets[0] if dashboard else None


def _page(
    designer: Designer,
    request: Request,
    actor: Actor,
    app_key: str,
    key: str,
    board: Record,
    problems: list[str],
    saved: str | None,
    status: int = 200,
) -> Response:
    served = designer.service.apps.get(app_key)
    sources = []
    if served is not None:
        for form in served.app.forms:
            if not form.child:
                fields = [(f.key, f.title(actor.language), f.type) for f in form.fields if f.type != "table"]
                sources.append((form.form, form.label.text(actor.language), fields))
    return designer.render(
        request,
        actor,
        "designer_dashboard.html",
        status=status,
        app_key=app_key,
        key=key,
        board=board,
        sources=sources,
        charts=CHARTS,
        aggregates=AGGREGATES,
        buckets=BUCKETS,
        problems=problems,
        saved=saved,
        revision=designer.workspace.revision(app_key, "dashboards", key),
        title=key,
    )
