"""Dashboards for a viewer: their specs, and each widget's data from one statement.

Every widget runs with the viewer's read scope on its form (a rep's dashboard counts only
the rep's records); a widget on a form the viewer may not read answers 403. Nothing is
aggregated in Python: rows come back grouped, and are only labelled here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection

from runtime.identity.actor import Actor
from runtime.identity.directory import subtree
from runtime.model.dashboard import Dashboard, Widget
from runtime.model.fields import SelectField
from runtime.records.access import access_for, link_guard
from runtime.records.compiled import CompiledApp, CompiledForm
from runtime.records.errors import NotAllowed, missing
from runtime.records.service import RecordsService
from runtime.reports.drill import Drill
from runtime.reports.funnel import funnel_statement
from runtime.reports.params import Params, parse_params
from runtime.reports.widgets import Column, WidgetCompiler, checked_on

OTHER_LABEL = {"zh": "其他", "en": "Other"}


class ReportsService:
    """The dashboards of the apps a records service serves."""

    def __init__(self, records: RecordsService) -> None:
        self.records = records
        self.engine = records.engine

    # -- specs -------------------------------------------------------------------------

    def dashboards(self, app_key: str, actor: Actor) -> list[dict[str, Any]]:
        """The dashboards the viewer may open."""
        app = self._app(app_key)
        return [self._summary(app, d, actor) for d in app.app.dashboards if _may_open(d, actor)]

    def spec(self, app_key: str, key: str, actor: Actor) -> dict[str, Any]:
        """A dashboard's widgets, as the definition gives them, with their data URLs."""
        app = self._app(app_key)
        dashboard = self._dashboard(app, key, actor)
        summary = self._summary(app, dashboard, actor)
        base = f"/api/v1/{app_key}/dashboards/{key}/widgets"
        summary["widgets"] = [
            {**w.model_dump(mode="json", exclude_none=True), "data": f"{base}/{w.key}/data"}
            for w in dashboard.widgets
        ]
        return summary

    # -- data --------------------------------------------------------------------------

    def data(
        self, app_key: str, key: str, widget_key: str, pairs: Iterable[tuple[str, str]], actor: Actor
    ) -> dict[str, Any]:
        """A widget's rows, labelled in the viewer's language, each with its drill-down URL."""
        app = self._app(app_key)
        return self.widget_data(app, self._widget(app, key, widget_key, actor), pairs, actor)

    def widget_data(
        self, app: CompiledApp, widget: Widget, pairs: Iterable[tuple[str, str]], actor: Actor
    ) -> dict[str, Any]:
        """The rows of any widget of `app` (a published one, or a draft being designed)."""
        for source in _sources(widget):
            access_for(app.form(source), actor).require("read")
        _require_visible(app, widget, actor)
        app_key = app.app.app
        now = self.records.clock()
        dialect = self.engine.dialect.name
        with self.engine.connect() as conn:
            params = parse_params(conn, pairs)
            team = subtree(conn, params.department) if params.department is not None else ()
            if widget.chart == "funnel":
                return self._funnel(conn, app, widget, params, team, actor, now)
            form = app.form(str(widget.source))
            compiler = WidgetCompiler(app, form, widget, dialect, now, link_guard(app, actor, dialect, now))
            compiled = compiler.compile(self._scope(form, actor, "read", now), params, team)
            rows = conn.execute(compiled.statement).mappings().all()
        columns = [
            {"key": d.key, "label": _label(d.spec, d.key, actor), "kind": "dimension"}
            for d in compiled.dimensions
        ]
        columns += [
            {"key": m.key, "label": _label(m.spec, m.key, actor), "kind": "measure"}
            for m in compiled.measures
        ]
        types = _field_types(app, form, widget)
        drills = Drill(app_key, form.key, widget, params, app.app.zone(), types)
        specs = [
            _field_spec(app, form, str(getattr(d.spec, "field", "") or ""))
            if d.field_type != "bucket"
            else None
            for d in compiled.dimensions
        ]
        shaped = []
        for row in rows:
            other = widget.top is not None and widget.other and row.get("rank", 0) > widget.top
            dims = [
                _cell(d, spec, row, actor, other) for d, spec in zip(compiled.dimensions, specs, strict=True)
            ]
            values = [_number(row[f"m_{m.key}"], m) for m in compiled.measures]
            drill = None if other else drills.url(compiled.dimensions, [c["value"] for c in dims])
            shaped.append({"dimensions": dims, "values": values, "drill": drill})
        return {"widget": widget.key, "chart": widget.chart, "columns": columns, "rows": shaped}

    def table(
        self, app_key: str, key: str, widget_key: str, pairs: Iterable[tuple[str, str]], actor: Actor
    ) -> tuple[list[tuple[str, str]], list[list[Any]]]:
        """A widget's data as plain columns and rows, for CSV and XLSX; needs the export permission."""
        app = self._app(app_key)
        widget = self._widget(app, key, widget_key, actor)
        for source in _sources(widget):
            access_for(app.form(source), actor).require("export")
        data = self.data(app_key, key, widget_key, pairs, actor)
        columns = [(c["key"], c["label"]) for c in data["columns"]]
        rows = [[d["display"] for d in r["dimensions"]] + list(r["values"]) for r in data["rows"]]
        return columns, rows

    def _funnel(
        self,
        conn: Connection,
        app: CompiledApp,
        widget: Widget,
        params: Params,
        team: tuple[int, ...],
        actor: Actor,
        now: dt.datetime,
    ) -> dict[str, Any]:
        scopes = {s: self._scope(app.form(s), actor, "read", now) for s in _sources(widget)}
        dialect = self.engine.dialect.name
        guard = link_guard(app, actor, dialect, now)
        statement = funnel_statement(app, widget, scopes, params, team, dialect, now, guard)
        counts = {row.stage: int(row.reached) for row in conn.execute(statement)}
        rows = []
        first = counts.get(0, 0)
        for index, stage in enumerate(widget.stages):
            reached = counts.get(index, 0)
            before = counts.get(index - 1) if index else None
            rows.append(
                {
                    "dimensions": [{"value": index, "display": stage.label.text(actor.language)}],
                    "values": [reached, _rate(reached, before), _rate(reached, first) if index else None],
                    "drill": None,
                }
            )
        columns = [
            {"key": "stage", "label": "阶段" if actor.language == "zh" else "Stage", "kind": "dimension"},
            {"key": "reached", "label": "数量" if actor.language == "zh" else "Reached", "kind": "measure"},
            {
                "key": "conversion",
                "label": "转化率" if actor.language == "zh" else "Conversion",
                "kind": "measure",
            },
            {
                "key": "of_first",
                "label": "占首阶段" if actor.language == "zh" else "Of the first",
                "kind": "measure",
            },
        ]
        return {"widget": widget.key, "chart": "funnel", "columns": columns, "rows": rows}

    # -- lookups -----------------------------------------------------------------------

    def _app(self, app_key: str) -> CompiledApp:
        app = self.records.apps.get(app_key)
        if app is None:
            raise missing("app", app_key)
        return app

    def _dashboard(self, app: CompiledApp, key: str, actor: Actor) -> Dashboard:
        dashboard = app.app.dashboard(key)
        if dashboard is None:
            raise missing("dashboard", key)
        if not _may_open(dashboard, actor):
            raise NotAllowed(f"you may not open dashboard '{key}'")
        return dashboard

    def _widget(self, app: CompiledApp, key: str, widget_key: str, actor: Actor) -> Widget:
        widget = self._dashboard(app, key, actor).widget(widget_key)
        if widget is None:
            raise missing("widget", widget_key)
        for source in _sources(widget):
            access_for(app.form(source), actor).require("read")
        _require_visible(app, widget, actor)
        return widget

    def _scope(self, form: CompiledForm, actor: Actor, operation: str, now: dt.datetime) -> Any:
        return access_for(form, actor).condition(operation, self.engine.dialect.name, now)

    def _summary(self, app: CompiledApp, dashboard: Dashboard, actor: Actor) -> dict[str, Any]:
        return {
            "key": dashboard.dashboard,
            "label": dashboard.label.text(actor.language),
            "url": f"/api/v1/{app.app.app}/dashboards/{dashboard.dashboard}",
        }


def _may_open(dashboard: Dashboard, actor: Actor) -> bool:
    return not dashboard.roles or actor.admin or bool(set(dashboard.roles) & set(actor.roles))


def _sources(widget: Widget) -> list[str]:
    if widget.chart == "funnel":
        return list(dict.fromkeys(s.source for s in widget.stages))
    return [str(widget.source)]


def _label(spec: Any, key: str, actor: Actor) -> str:
    label = getattr(spec, "label", None)
    return label.text(actor.language) if label is not None else key


def _cell(column: Column, spec: Any, row: Any, actor: Actor, other: bool) -> dict[str, Any]:
    """One dimension value of a row, with the text to show for it (`spec`: its field, if any)."""
    if other:
        return {"value": None, "display": OTHER_LABEL.get(actor.language, "Other"), "other": True}
    value = row[f"d_{column.key}"]
    if column.display is not None:
        display = row[f"s_{column.key}"]
        return {"value": value, "display": None if display is None else str(display)}
    if isinstance(value, dt.date):
        value = value.isoformat()
    elif isinstance(value, Decimal):
        value = str(value)
    if spec is not None and isinstance(spec.spec, SelectField) and value is not None:
        option = next((o for o in spec.spec.options if o.key == value), None)
        label = option.label.text(actor.language) if option is not None and option.label else value
        return {"value": value, "display": label}
    if isinstance(value, bool):
        return {"value": value, "display": "true" if value else "false"}
    return {"value": value, "display": None if value is None else str(value)}


def _field_spec(app: CompiledApp, form: CompiledForm, path: str) -> Any:
    """The compiled field at `field` or `link.field`, if there is one."""
    if not path:
        return None
    head, _, tail = path.partition(".")
    spec = form.fields.get(head)
    if spec is None or not tail:
        return spec
    return app.form(spec.spec.to).fields.get(tail)


def _number(value: Any, column: Column) -> Any:
    agg = getattr(column.spec, "agg", "")
    if value is None:
        return 0 if agg in ("count", "count_distinct") else None
    if agg in ("count", "count_distinct"):
        return int(value)
    if agg == "ratio":
        return round(float(value), 4)
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def _rate(part: int, whole: int | None) -> float | None:
    if not whole:
        return None
    return round(part / whole, 4)


def _field_types(app: CompiledApp, form: CompiledForm, widget: Widget) -> dict[str, str]:
    """Field types by key (and by `link.field` for the widget's dimensions), for drill-down."""
    types = {key: f.type for key, f in form.fields.items()}
    types.update({"created_at": "datetime", "updated_at": "datetime"})
    for dimension in widget.dimensions:
        spec = _field_spec(app, form, dimension.field) if dimension.field else None
        if spec is not None:
            types[str(dimension.field)] = spec.type
    types["__owner__"] = form.form.owner_field or "created_by"
    return types


def _require_visible(app: CompiledApp, widget: Widget, actor: Actor) -> None:
    """403 unless every field the widget reads is visible to the viewer, on every form it reads."""
    for form_key, fields in widget_reads(app, widget).items():
        access = access_for(app.form(form_key), actor)
        access.require("read")
        hidden = sorted(fields & access.hidden)
        if hidden:
            raise NotAllowed(f"the widget '{widget.key}' reads fields hidden from you: {', '.join(hidden)}")


def widget_reads(app: CompiledApp, widget: Widget) -> dict[str, set[str]]:
    """The fields a widget reads, by form (linked forms included)."""
    reads: dict[str, set[str]] = {}

    def note(form_key: str, texts: Iterable[str | None], fields: Iterable[str | None]) -> None:
        model = app.form(form_key).form
        found = reads.setdefault(form_key, set())
        found.update(f for f in fields if f)
        for text in texts:
            if text is None:
                continue
            checked = checked_on(app.form(form_key), text)
            found.update(checked.fields)
            for link, field in checked.links:
                found.add(link)
                target = getattr(model.field(link), "to", None)
                if target:
                    reads.setdefault(target, set()).add(field)
            for key, column in checked.backlinks:  # the records linking here: their form too
                backlink = model.backlink(key)
                if backlink is not None:
                    columns = [backlink.link] if column is None else [backlink.link, column]
                    reads.setdefault(backlink.form, set()).update(columns)

    if widget.chart == "funnel":
        for stage in widget.stages:
            workflow = app.app.workflow_of(stage.source)
            note(stage.source, [stage.where], [workflow.field if workflow and stage.reached else None])
        return reads
    source = str(widget.source)
    note(
        source,
        [widget.where, *(m.where for m in widget.measures), *(d.expression for d in widget.dimensions)],
        [*(m.field for m in widget.measures), widget.date_field, widget.owner_field],
    )
    for dimension in widget.dimensions:
        if dimension.field is None:
            continue
        head, _, tail = dimension.field.partition(".")
        reads[source].add(head)
        spec = app.form(source).form.field(head)
        target = getattr(spec, "to", None)
        if (
            target and spec is not None and (tail or spec.type == "link")
        ):  # a linked field, or the linked record's title
            reads.setdefault(target, set()).add(tail or app.form(target).title_field)
    return reads
