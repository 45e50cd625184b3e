"""Load-time checks of what a record page offers: related lists and make actions.

A related list (`{related: quote.opportunity}` in a form's layout) must name a top-level
form and a link field of it that points at this form; its columns and sort keys must be
fields of that form that hold one value. A make action (`actions:`) must create a
top-level form from values that are fields of it, with expressions of fitting types over
the source record, child rows from table fields of both, and states of the form's
workflow. Every problem points at its place as `file:line:col`.
"""

from __future__ import annotations

from runtime.loading.problems import Problem, did_you_mean
from runtime.loading.process_checks import Checker
from runtime.loading.salvage import NOTHING_BROKEN, Broken, is_stub
from runtime.loading.source import FormSource, PathKey
from runtime.model import App, Form
from runtime.model.fields import LinkField, TableField
from runtime.model.record_page import MakeAction, RelatedList

SYSTEM_SORT = ("id", "created_at", "updated_at", "created_by", "version")


def check_record_page(
    app: App, form: Form, at: FormSource, known: set[str], broken: Broken = NOTHING_BROKEN
) -> list[Problem]:
    """Every problem of the form's related lists and make actions."""
    problems: list[Problem] = []
    checker = Checker(app, at, problems, broken)
    seen: set[str] = set()
    for index, item in enumerate(form.layout):
        if isinstance(item, RelatedList):
            _related(app, form, item, ("layout", index), checker, known, seen)
    if form.actions and form.child:
        checker.fail(("actions",), "a child form has no record page of its own: it cannot have actions")
        return problems
    keys: set[str] = set()
    for index, action in enumerate(form.actions):
        if action.key in keys:
            checker.fail(("actions", index, "key"), f"action '{action.key}' is given twice")
        keys.add(action.key)
        _action(app, form, action, ("actions", index), checker)
    return problems


def _related(
    app: App,
    form: Form,
    item: RelatedList,
    path: PathKey,
    checker: Checker,
    known: set[str],
    seen: set[str],
) -> None:
    where: PathKey = (*path, "related")
    if form.child:
        checker.fail(where, "a child form has no record page of its own: it cannot list related records")
        return
    if item.related in seen:
        checker.fail(where, f"related list '{item.related}' is given twice")
    seen.add(item.related)
    target = app.form(item.form_key)
    if target is None:
        if item.form_key not in known and not checker.broken.quiet(item.form_key):
            names = [f.form for f in app.top_forms()]
            checker.fail(where, f"unknown form '{item.form_key}'{did_you_mean(item.form_key, names)}")
        return
    if target.child:
        checker.fail(where, f"'{item.form_key}' is a child form: its rows are listed inside their record")
        return
    link = target.field(item.link)
    if is_stub(link) or (link is None and checker.broken.quiet(item.link)):
        pass
    elif link is None:
        links = [f.key for f in target.link_fields()]
        checker.fail(where, f"unknown field '{item.link}' of {target.form}{did_you_mean(item.link, links)}")
    elif not isinstance(link, LinkField):
        checker.fail(where, f"'{item.link}' is not a link field of {target.form}")
    elif link.to != form.form:
        checker.fail(where, f"'{item.related}' links to {link.to}, not to {form.form}")
    keys = [f.key for f in target.fields]
    for i, name in enumerate(item.columns):
        spec = target.field(name)
        if spec is None:
            if not checker.broken.quiet(name):
                checker.fail((*path, "columns", i), f"unknown field '{name}'{did_you_mean(name, keys)}")
        elif isinstance(spec, TableField):
            checker.fail((*path, "columns", i), f"'{name}' holds child rows: it cannot be a column")
    sortable = [f.key for f in target.fields if f.type not in ("table", "multi_select")]
    for i, entry in enumerate(item.sort):
        name = entry.lstrip("-")
        if name in keys and name not in sortable:
            checker.fail((*path, "sort", i), f"cannot sort on '{name}': it holds several values")
        elif name not in sortable and name not in SYSTEM_SORT and not checker.broken.quiet(name):
            checker.fail((*path, "sort", i), f"unknown field '{name}'{did_you_mean(name, keys)}")


def _action(app: App, form: Form, action: MakeAction, path: PathKey, checker: Checker) -> None:
    scope = checker.scope(form)
    target = checker.top_form(action.make, (*path, "make"))
    if target is not None:
        checker.mapping(target, action.values, scope, (*path, "values"))
        _unfilled(app, target, action, path, checker)
    for key, copy in action.children.items():
        target_child = checker.child_form(target, key, (*path, "children", key))
        source_child = checker.child_form(form, copy.from_, (*path, "children", key, "from"))
        if target_child is not None:
            child_scope = checker.scope(source_child) if source_child is not None else None
            checker.mapping(target_child, copy.values, child_scope, (*path, "children", key, "values"))
    if action.store_in is not None and target is not None:
        link = form.field(action.store_in)
        if not is_stub(link) and getattr(link, "to", None) != target.form:
            checker.fail(
                (*path, "store_in"),
                f"'{action.store_in}' is not a link field of {form.form} to {target.form}",
            )
    checker.roles(action.roles, (*path, "roles"))
    workflow = app.workflow_of(form.form)
    if action.states and workflow is None:
        if checker.workflow_known(form.form):
            checker.fail((*path, "states"), f"form '{form.form}' has no workflow: its states cannot be named")
    elif workflow is not None:
        states = [s.key for s in workflow.states]
        for i, state in enumerate(action.states):
            if state not in states:
                checker.missing((*path, "states", i), "state", state, states)
    checker.condition(action.when, scope, (*path, "when"))


def _unfilled(app: App, target: Form, action: MakeAction, path: PathKey, checker: Checker) -> None:
    """A required field of the new record that nothing fills would refuse every creation."""
    workflow = app.workflow_of(target.form)
    for spec in target.stored_fields():
        filled = (
            spec.key in action.values
            or getattr(spec, "default", None) is not None
            or spec.formula is not None
            or spec.fetch is not None
            or spec.type == "auto_number"
            or (workflow is not None and spec.key == workflow.field)
        )
        if spec.required and not filled and not is_stub(spec):
            checker.fail(
                (*path, "values"), f"'{spec.key}' of {target.form} is required: give it a value in values"
            )
