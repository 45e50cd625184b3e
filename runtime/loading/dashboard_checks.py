"""Load-time checks of dashboards: sources, fields, measures, dimensions, funnel stages, filters."""

from __future__ import annotations

from runtime.expressions.types import BOOLEAN, Type, scope_for
from runtime.loading.expression_checks import check_expression
from runtime.loading.problems import Problem, did_you_mean
from runtime.loading.salvage import NOTHING_BROKEN, Broken, is_stub
from runtime.loading.source import FormSource, PathKey
from runtime.model import App, Form
from runtime.model.dashboard import Dashboard, Dimension, Measure, Widget
from runtime.model.fields import NUMBER_TYPES, TableField

BUILT_IN_ROLES = ("admin", "public")
DATE_TYPES = ("date", "datetime")
SYSTEM_DATES = ("created_at", "updated_at")
ANY = Type("any")  # a dimension expression may give a value of any type


def check_dashboard(
    app: App, dashboard: Dashboard, at: FormSource, problems: list[Problem], broken: Broken = NOTHING_BROKEN
) -> None:
    """Note every problem of one dashboard at its place (what failed to load is not unknown)."""

    def fail(path: PathKey, message: str) -> None:
        problems.append(at.at(path, message))

    if app.form("dashboards") is not None:
        fail(("dashboard",), "a form named 'dashboards' would hide the dashboards' routes: rename the form")
    declared = [r.key for r in app.roles] + list(BUILT_IN_ROLES)
    for index, role in enumerate(dashboard.roles):
        if role not in declared and not broken.role_known(role):
            fail(("roles", index), f"unknown role '{role}'{did_you_mean(role, declared)}")
    seen: set[str] = set()
    for index, widget in enumerate(dashboard.widgets):
        path: PathKey = ("widgets", index)
        if widget.key in seen:
            fail((*path, "key"), f"widget '{widget.key}' is given twice")
        seen.add(widget.key)
        if widget.chart == "funnel":
            _check_stages(app, widget, path, at, problems, broken)
        else:
            _check_widget(app, widget, path, at, problems, broken)


def _top_form(
    app: App, key: str, path: PathKey, at: FormSource, problems: list[Problem], broken: Broken
) -> Form | None:
    form = app.form(key)
    if form is None and key in broken.forms:
        return None  # its own problems are reported where it is written
    if form is None or form.child:
        names = [f.form for f in app.top_forms()]
        problems.append(at.at(path, f"unknown form '{key}'{did_you_mean(key, names)}"))
        return None
    return form


def _check_stages(
    app: App, widget: Widget, path: PathKey, at: FormSource, problems: list[Problem], broken: Broken
) -> None:
    for index, stage in enumerate(widget.stages):
        where: PathKey = (*path, "stages", index)
        form = _top_form(app, stage.source, (*where, "source"), at, problems, broken)
        if form is None:
            continue
        if stage.where is not None:
            check_expression(stage.where, scope_for(app, form), BOOLEAN, (*where, "where"), at, problems)
        if stage.reached is not None:
            workflow = app.workflow_of(form.form)
            states = [s.key for s in workflow.states] if workflow else []
            lost = form.form in broken.workflow_forms or broken.quiet(stage.reached)
            if stage.reached not in states and not lost:
                message = (
                    f"unknown state '{stage.reached}' of {form.form}{did_you_mean(stage.reached, states)}"
                )
                problems.append(at.at((*where, "reached"), message))


def _check_widget(
    app: App, widget: Widget, path: PathKey, at: FormSource, problems: list[Problem], broken: Broken
) -> None:
    keys = [m.key for m in widget.measures] + [d.key for d in widget.dimensions]
    if len(set(keys)) != len(keys):
        problems.append(at.at(path, "measures and dimensions need keys of their own"))
    if widget.sort is not None and widget.sort.lstrip("-") not in keys:
        message = (
            f"sort by an unknown key '{widget.sort.lstrip('-')}'{did_you_mean(widget.sort.lstrip('-'), keys)}"
        )
        problems.append(at.at((*path, "sort"), message))
    for index, measure in enumerate(widget.measures):
        _check_ratio(widget, measure, (*path, "measures", index), at, problems)
    form = _top_form(app, str(widget.source), (*path, "source"), at, problems, broken)
    if form is None:
        return
    scope = scope_for(app, form)
    if widget.where is not None:
        check_expression(widget.where, scope, BOOLEAN, (*path, "where"), at, problems)
    for index, measure in enumerate(widget.measures):
        _check_measure(app, form, widget, measure, (*path, "measures", index), at, problems)
    for index, dimension in enumerate(widget.dimensions):
        _check_dimension(app, form, dimension, (*path, "dimensions", index), at, problems)
    if widget.date_field is not None:
        spec = form.field(widget.date_field)
        wrong = spec is None or spec.type not in DATE_TYPES
        if widget.date_field not in SYSTEM_DATES and wrong and not is_stub(spec):
            problems.append(
                at.at((*path, "date_field"), f"'{widget.date_field}' is not a date field of {form.form}")
            )
    if widget.owner_field is not None:
        spec = form.field(widget.owner_field)
        wrong = spec is None or spec.type != "user"
        if widget.owner_field != "created_by" and wrong and not is_stub(spec):
            problems.append(
                at.at((*path, "owner_field"), f"'{widget.owner_field}' is not a user field of {form.form}")
            )


def _check_measure(
    app: App,
    form: Form,
    widget: Widget,
    measure: Measure,
    path: PathKey,
    at: FormSource,
    problems: list[Problem],
) -> None:
    if measure.where is not None:
        check_expression(measure.where, scope_for(app, form), BOOLEAN, (*path, "where"), at, problems)
    if measure.agg == "ratio" or measure.field is None:
        return
    spec = form.field(measure.field)
    if is_stub(spec):
        return
    if spec is None or isinstance(spec, TableField):
        names = [f.key for f in form.stored_fields()]
        problems.append(
            at.at((*path, "field"), f"unknown field '{measure.field}'{did_you_mean(measure.field, names)}")
        )
    elif measure.agg in ("sum", "avg") and spec.type not in NUMBER_TYPES:
        problems.append(
            at.at((*path, "field"), f"{measure.agg} needs a number field; '{measure.field}' is {spec.type}")
        )
    elif measure.agg in ("min", "max") and spec.type not in (*NUMBER_TYPES, *DATE_TYPES):
        problems.append(at.at((*path, "field"), f"{measure.agg} needs a number or date field"))


def _check_ratio(
    widget: Widget, measure: Measure, path: PathKey, at: FormSource, problems: list[Problem]
) -> None:
    """A ratio divides two other measures of the widget (no form needed to tell)."""
    if measure.agg != "ratio":
        return
    plain = [m.key for m in widget.measures if m.agg != "ratio"]
    for side in ("numerator", "denominator"):
        name = str(getattr(measure, side))
        if name not in plain:
            problems.append(at.at((*path, side), f"unknown measure '{name}'{did_you_mean(name, plain)}"))


def _check_dimension(
    app: App, form: Form, dimension: Dimension, path: PathKey, at: FormSource, problems: list[Problem]
) -> None:
    if dimension.expression is not None:
        check_expression(dimension.expression, scope_for(app, form), ANY, (*path, "expression"), at, problems)
        return
    head, _, tail = str(dimension.field).partition(".")
    spec = form.field(head)
    if is_stub(spec):
        return
    if head in SYSTEM_DATES and not tail:
        kind = "datetime"
    elif spec is None or isinstance(spec, TableField):
        names = [f.key for f in form.stored_fields()]
        problems.append(at.at((*path, "field"), f"unknown field '{head}'{did_you_mean(head, names)}"))
        return
    else:
        kind = spec.type
    if tail:
        target = app.form(getattr(spec, "to", "")) if kind == "link" else None
        inner = target.field(tail) if target is not None else None
        if is_stub(inner) or (kind == "link" and target is None):  # the link's form: reported at the link
            return
        if inner is None or isinstance(inner, TableField):
            problems.append(at.at((*path, "field"), f"'{dimension.field}' is not a field of a linked form"))
            return
        if inner.type in ("link", "user", "department", "attachment"):
            message = (
                f"'{dimension.field}' refers on to another form: group by a field of this form or its link"
            )
            problems.append(at.at((*path, "field"), message))
            return
        kind = inner.type
    if dimension.bucket is not None and kind not in DATE_TYPES:
        problems.append(
            at.at((*path, "bucket"), f"a bucket needs a date field; '{dimension.field}' is {kind}")
        )
    if dimension.department and kind != "user":
        problems.append(
            at.at((*path, "department"), f"department needs a user field; '{dimension.field}' is {kind}")
        )
