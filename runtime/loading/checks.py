"""Checks across fields and forms that the per-file model cannot make on its own."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from runtime.loading.backlink_checks import check_backlinks, check_rollup_circles
from runtime.loading.expression_checks import check_form_expressions
from runtime.loading.problems import Problem, did_you_mean
from runtime.loading.record_page_checks import check_record_page
from runtime.loading.salvage import NOTHING_BROKEN, Broken, is_stub
from runtime.loading.source import FormSource, PathKey
from runtime.model import App, Form
from runtime.model.fields import (
    NUMBER_TYPES,
    TITLE_TYPES,
    AutoNumberField,
    BaseField,
    DepartmentField,
    LinkField,
    MultiSelectField,
    SelectField,
    TableField,
    UserField,
    is_expression_default,
)
from runtime.model.record_page import RelatedList

MAX_TABLE_NAME = 63


def check_app(
    app: App, where: dict[str, FormSource], known_forms: set[str], broken: Broken = NOTHING_BROKEN
) -> list[Problem]:
    """Every cross-reference problem of an app, and of every form's expressions.

    `known_forms` are the keys of every form written, also those that failed to load;
    `broken` says what failed to load, so that references to it are not reported again.
    """
    problems: list[Problem] = []
    for form in app.forms:
        problems.extend(_check_form(app, form, where[form.form], known_forms, broken))
        problems.extend(check_record_page(app, form, where[form.form], known_forms, broken))
        problems.extend(check_backlinks(app, form, where[form.form], known_forms, broken))
        keys = [f.key for f in form.fields]
        if len(set(keys)) == len(keys):  # with a key given twice, expressions would guess which
            problems.extend(check_form_expressions(app, form, where[form.form]))
    problems.extend(check_rollup_circles(app, where))
    return problems


def _check_form(
    app: App, form: Form, at: FormSource, known: set[str], broken: Broken = NOTHING_BROKEN
) -> Iterator[Problem]:
    keys = [f.key for f in form.fields]
    if form.single and form.child:
        yield at.at(("single",), "a form cannot be both single and child")
    seen: dict[str, int] = {}
    for index, field in enumerate(form.fields):
        if field.key in seen:
            yield at.at(("fields", index, "key"), f"duplicate field key '{field.key}'")
        seen.setdefault(field.key, index)
        yield from _check_field(app, form, field, ("fields", index), at, known)
    yield from _check_access(app, form, at, broken)
    yield from _check_title(form, keys, at)
    yield from _check_layout(form, keys, at)
    yield from _check_list(form, keys, at)


BUILT_IN_ROLES = ("admin", "public")


def _check_access(app: App, form: Form, at: FormSource, broken: Broken) -> Iterator[Problem]:
    """Roles must be declared by the app; the owner field must be a user field."""
    known = [*BUILT_IN_ROLES, *(r.key for r in app.roles)]

    def roles(path: PathKey, names: list[str]) -> Iterator[Problem]:
        for i, name in enumerate(names):
            if name not in known and not broken.role_known(name):
                yield at.at(
                    (*path, i), f"unknown role '{name}'{did_you_mean(name, known)}; declare it in app.yaml"
                )

    for index, permission in enumerate(form.permissions):
        yield from roles(("permissions", index, "roles"), permission.roles)
    for index, field in enumerate(form.fields):
        yield from roles(("fields", index, "hidden_for"), field.hidden_for)
        yield from roles(("fields", index, "read_only_for"), field.read_only_for)
        if isinstance(field, UserField):
            yield from roles(("fields", index, "roles"), field.roles)
    if form.owner_field is not None:
        owner = form.field(form.owner_field)
        if not is_stub(owner) and (owner is None or owner.type != "user"):
            yield at.at(("owner_field",), f"the owner field must be a user field of {form.form}")
    if form.department_field is not None:
        unit = form.field(form.department_field)
        if not is_stub(unit) and (unit is None or unit.type != "department"):
            yield at.at(
                ("department_field",), f"the department field must be a department field of {form.form}"
            )
    if form.child and form.permissions:
        yield at.at(("permissions",), "child rows follow their parent's permissions")


def _check_title(form: Form, keys: list[str], at: FormSource) -> Iterator[Problem]:
    if form.title_field is None:
        return
    field = form.field(form.title_field)
    if field is None:
        yield at.at(
            ("title_field",),
            f"unknown field '{form.title_field}'{did_you_mean(form.title_field, keys)}",
        )
    elif field.type not in TITLE_TYPES:
        yield at.at(("title_field",), f"a {field.type} field cannot be the title field")


def _check_layout(form: Form, keys: list[str], at: FormSource) -> Iterator[Problem]:
    placed: set[str] = set()
    for s, section in enumerate(form.layout):
        if isinstance(section, RelatedList):
            continue  # checked with the record page (runtime/loading/record_page_checks.py)
        for i, name in enumerate(section.fields):
            path = ("layout", s, "fields", i)
            if name not in keys:
                yield at.at(path, f"unknown field '{name}'{did_you_mean(name, keys)}")
            elif name in placed:
                yield at.at(path, f"field '{name}' is placed twice in the layout")
            placed.add(name)


def _check_list(form: Form, keys: list[str], at: FormSource) -> Iterator[Problem]:
    sortable = [f.key for f in form.fields if f.type not in ("table", "multi_select")]
    sortable += ["id", "created_at", "updated_at", "created_by", "version"]
    for i, name in enumerate(form.list_view.columns):
        if name not in keys:
            yield at.at(("list", "columns", i), f"unknown field '{name}'{did_you_mean(name, keys)}")
    for i, item in enumerate(form.list_view.sort):
        name = item.lstrip("-")
        if name in keys and name not in sortable:
            yield at.at(("list", "sort", i), f"cannot sort on '{name}': it holds several values")
        elif name not in sortable:
            yield at.at(("list", "sort", i), f"unknown field '{name}'{did_you_mean(name, keys)}")


def _check_field(
    app: App, form: Form, field: Any, path: PathKey, at: FormSource, known: set[str]
) -> Iterator[Problem]:
    if isinstance(field, LinkField):
        yield from _check_link(app, form, field, path, at, known)
    elif isinstance(field, TableField):
        yield from _check_table(app, form, field, path, at, known)
    if form.child and isinstance(field, AutoNumberField | TableField):
        yield at.at((*path, "type"), f"a child form cannot have a {field.type} field")
    if isinstance(field, UserField | DepartmentField) and field.default is not None and form.child:
        yield at.at((*path, "default"), f"child rows have no {field.default} default")
    yield from _check_bounds(field, path, at)
    yield from _check_default(field, path, at)


def _check_link(
    app: App, form: Form, field: LinkField, path: PathKey, at: FormSource, known: set[str]
) -> Iterator[Problem]:
    target = app.form(field.to)
    if target is None and field.to not in known:
        yield at.at((*path, "to"), f"link to unknown form '{field.to}'{did_you_mean(field.to, known)}")
    elif target is not None and target.child:
        yield at.at((*path, "to"), f"cannot link to '{field.to}': it is a child form")
    if field.required and field.on_delete == "set_null":
        yield at.at((*path, "on_delete"), "a required link cannot use on_delete: set_null")


def _check_table(
    app: App, form: Form, field: TableField, path: PathKey, at: FormSource, known: set[str]
) -> Iterator[Problem]:
    target = app.form(field.form)
    if target is None:
        if field.form not in known:
            message = f"table of unknown form '{field.form}'{did_you_mean(field.form, known)}"
            yield at.at((*path, "form"), message)
        return
    if not target.child:
        yield at.at((*path, "form"), f"form '{field.form}' is not declared 'child: true'")
    name = f"{app.app}__{form.form}__{field.key}"
    if len(name) > MAX_TABLE_NAME:
        yield at.at((*path, "key"), f"child table name '{name}' is longer than 63 characters")


def _check_bounds(field: Any, path: PathKey, at: FormSource) -> Iterator[Problem]:
    low, high = getattr(field, "min", None), getattr(field, "max", None)
    if low is not None and high is not None and low > high:
        yield at.at((*path, "min"), f"min {low} is greater than max {high}")


def _check_default(field: BaseField, path: PathKey, at: FormSource) -> Iterator[Problem]:
    default = getattr(field, "default", None)
    if default is None or is_expression_default(default):
        return
    where = (*path, "default")
    if isinstance(field, SelectField | MultiSelectField):
        keys = field.option_keys()
        for value in default if isinstance(default, list) else [default]:
            if value not in keys:
                yield at.at(where, f"default '{value}' is not an option{did_you_mean(value, keys)}")
        return
    kind = getattr(field, "type", "")
    if kind in NUMBER_TYPES or kind in {"date", "datetime"}:
        low, high = getattr(field, "min", None), getattr(field, "max", None)
        if low is not None and default < low:
            yield at.at(where, f"default {default} is below min {low}")
        if high is not None and default > high:
            yield at.at(where, f"default {default} is above max {high}")
        return
    if isinstance(default, str):
        limit = getattr(field, "max_length", None)
        if limit is not None and len(default) > limit:
            yield at.at(where, f"default is longer than max_length {limit}")
        pattern = getattr(field, "pattern", None)
        if pattern is not None and not re.fullmatch(pattern, default):
            yield at.at(where, f"default does not match pattern '{pattern}'")
