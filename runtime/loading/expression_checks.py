"""Load-time checks of a form's expressions: syntax, names, types, formula cycles, duplicates.

Every problem points inside the expression text, as `file:line:col`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from runtime.expressions.checker import Checked, check
from runtime.expressions.parser import parse
from runtime.expressions.syntax import ExpressionError
from runtime.expressions.types import BOOLEAN, NULL, Scope, Type, field_type, scope_for
from runtime.loading.problems import Problem, did_you_mean
from runtime.loading.source import FormSource, PathKey
from runtime.model import App, Form
from runtime.model.fields import is_expression_default

DUPLICATE_TYPES = frozenset({"text", "email", "phone", "url", "integer", "select", "date", "link"})


def check_form_expressions(app: App, form: Form, at: FormSource) -> list[Problem]:
    """All expression problems of one form (an empty list when it is sound)."""
    scope = scope_for(app, form)
    problems: list[Problem] = []
    formulas: dict[str, tuple[Checked, PathKey]] = {}
    for index, spec in enumerate(form.fields):
        path: PathKey = ("fields", index)
        wanted = field_type(spec) if spec.type != "table" else None
        if spec.formula is not None and wanted is not None:
            checked = _checked(spec.formula, scope, wanted, (*path, "formula"), at, problems, default=False)
            if checked is not None:
                formulas[spec.key] = (checked, (*path, "formula"))
        default = getattr(spec, "default", None)
        if isinstance(default, str) and is_expression_default(default) and wanted is not None:
            _checked(default, scope, wanted, (*path, "default"), at, problems, default=True)
        for key in ("visible_when", "required_when"):
            condition = getattr(spec, key)
            if condition is not None:
                _checked(condition, scope, BOOLEAN, (*path, key), at, problems, default=False)
    for index, rule in enumerate(form.rules):
        _checked(rule.check, scope, BOOLEAN, ("rules", index, "check"), at, problems, default=False)
        for i, key in enumerate(rule.fields):
            if form.field(key) is None:
                problems.append(at.at(("rules", index, "fields", i), _unknown(key, form)))
    for index, permission in enumerate(form.permissions):
        if permission.scope not in ("own", "team", "all"):
            path = ("permissions", index, "scope")
            _checked(permission.scope, scope, BOOLEAN, path, at, problems, default=False)
    problems.extend(_cycles(formulas, at))
    problems.extend(_duplicate_groups(form, at))
    return problems


def check_expression(
    text: str, scope: Scope, wanted: Type, path: PathKey, at: FormSource, problems: list[Problem]
) -> Checked | None:
    """Check one expression for a value of type `wanted`; problems point inside its text."""
    return _checked(text, scope, wanted, path, at, problems, default=False)


def expression_problem(text: str, scope: Scope, wanted: Type) -> tuple[str, int] | None:
    """What is wrong with one expression for a value of type `wanted`, and at which
    0-based character; None when it is sound (the designer checks as the admin types)."""
    try:
        checked = check(parse(text), scope, text)
    except ExpressionError as exc:
        return exc.message, exc.offset
    if not _assignable(checked.type, wanted):
        return f"the expression gives a {checked.type} value; this needs a {wanted} value", _first_char(text)
    return None


def _checked(
    text: str,
    scope: Scope,
    wanted: Type,
    path: PathKey,
    at: FormSource,
    problems: list[Problem],
    *,
    default: bool,
) -> Checked | None:
    """Check one expression; only a default starts with '=' (a formula is always an expression)."""
    body, shift = _strip_equals(text) if default else (text, 0)
    try:
        checked = check(parse(body), scope, body)
    except ExpressionError as exc:
        problems.append(at.inside(path, exc.offset + shift, text, exc.message))
        return None
    if not _assignable(checked.type, wanted):
        message = f"the expression gives a {checked.type} value; this needs a {wanted} value"
        problems.append(at.inside(path, shift + _first_char(body), text, message))
        return None
    return checked


def _strip_equals(text: str) -> tuple[str, int]:
    """Defaults carry a leading '=': drop it, remembering how far the expression moved."""
    stripped = text.lstrip()
    if stripped.startswith("="):
        shift = len(text) - len(stripped) + 1
        return text[shift:], shift
    return text, 0


def _first_char(text: str) -> int:
    return len(text) - len(text.lstrip())


def _assignable(given: Type, wanted: Type) -> bool:
    if given == NULL or wanted.kind == "any":
        return True
    if wanted.numeric:
        return given.numeric
    if wanted.kind == "ref":
        return given.kind in ("ref", "integer")
    return given.kind == wanted.kind


def _cycles(formulas: dict[str, tuple[Checked, PathKey]], at: FormSource) -> Iterator[Problem]:
    """Formulas may use each other, but not in a circle."""
    state: dict[str, str] = {}
    reported: set[str] = set()

    def visit(key: str, trail: list[str]) -> Iterator[Problem]:
        state[key] = "open"
        for used in sorted(formulas[key][0].fields):
            if used not in formulas:
                continue
            if state.get(used) == "open" and used not in reported:
                circle = [*trail[trail.index(used) :], used] if used in trail else [key, used]
                reported.update(circle)
                path = formulas[used][1]
                yield at.at(path, "formulas refer to each other in a circle: " + " → ".join(circle))
            elif used not in state:
                yield from visit(used, [*trail, used])
        state[key] = "done"

    for key in sorted(formulas):
        if key not in state:
            yield from visit(key, [key])


def formula_order(formulas: dict[str, set[str]]) -> list[str]:
    """Formula fields so that each comes after the formulas it reads (no cycles assumed)."""
    order: list[str] = []
    seen: set[str] = set()

    def place(key: str) -> None:
        if key in seen:
            return
        seen.add(key)
        for used in sorted(formulas[key]):
            if used in formulas:
                place(used)
        order.append(key)

    for key in sorted(formulas):
        place(key)
    return order


def _duplicate_groups(form: Form, at: FormSource) -> Iterator[Problem]:
    for g, group in enumerate(form.duplicates):
        if not group:
            yield at.at(("duplicates", g), "a duplicate group needs at least one field")
        for i, key in enumerate(group):
            spec: Any = form.field(key)
            if spec is None:
                yield at.at(("duplicates", g, i), _unknown(key, form))
            elif spec.type not in DUPLICATE_TYPES:
                yield at.at(("duplicates", g, i), f"a {spec.type} field cannot be compared for duplicates")


def _unknown(key: str, form: Form) -> str:
    return f"unknown field '{key}'{did_you_mean(key, [f.key for f in form.fields])}"
