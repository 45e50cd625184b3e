"""Load-time checks of a form's expressions: syntax, names, types, formula cycles, duplicates.

Every problem points inside the expression text, as `file:line:col`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from runtime.expressions.checker import Checked, check
from runtime.expressions.parser import parse
from runtime.expressions.syntax import ExpressionError
from runtime.expressions.types import BOOLEAN, NULL, Scope, Type, field_type, filter_scope, scope_for
from runtime.loading.problems import Problem, did_you_mean
from runtime.loading.reveal_checks import check_reveals
from runtime.loading.source import FormSource, PathKey
from runtime.model import App, Form
from runtime.model.fields import is_expression_default

NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
DUPLICATE_TYPES = frozenset({"text", "email", "phone", "url", "integer", "select", "date", "link"})
UNFETCHED_TYPES = frozenset({"table", "auto_number", "attachment"})


def check_form_expressions(app: App, form: Form, at: FormSource) -> list[Problem]:
    """All expression problems of one form (an empty list when it is sound)."""
    scope = scope_for(app, form)
    problems: list[Problem] = []
    formulas: dict[str, tuple[Checked, PathKey]] = {}
    computed: dict[str, tuple[Checked, PathKey]] = {}
    fetches: dict[str, tuple[Checked, PathKey]] = {}
    for index, spec in enumerate(form.fields):
        path: PathKey = ("fields", index)
        wanted = field_type(spec) if spec.type != "table" else None
        if spec.formula is not None and wanted is not None:
            checked = _checked(spec.formula, scope, wanted, (*path, "formula"), at, problems, default=False)
            if checked is not None:
                formulas[spec.key] = computed[spec.key] = (checked, (*path, "formula"))
        default = getattr(spec, "default", None)
        if isinstance(default, str) and is_expression_default(default) and wanted is not None:
            found = _checked(default, scope, wanted, (*path, "default"), at, problems, default=True)
            if found is not None:
                computed[spec.key] = (found, (*path, "default"))
        for key in ("visible_when", "required_when"):
            condition = getattr(spec, key)
            if condition is not None:
                _checked(condition, scope, BOOLEAN, (*path, key), at, problems, default=False)
        fetched = _fetch(spec, scope, wanted, path, at, problems)
        if fetched is not None:
            fetches[spec.key] = computed[spec.key] = (fetched, (*path, "fetch"))
        link_filter = getattr(spec, "filter", None)
        if link_filter is not None:
            _filter(app, form, spec, link_filter, (*path, "filter"), at, problems)
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
    problems.extend(_cycles(fetches, at, "fetches"))
    problems.extend(_fetch_reads(form, fetches, set(formulas), at))
    problems.extend(check_reveals(app, form, computed, at))
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
        if not _names_stub(body, scope):
            problems.append(at.inside(path, exc.offset + shift, text, exc.message))
        return None
    if not _assignable(checked.type, wanted):
        if not _names_stub(body, scope):
            message = f"the expression gives a {checked.type} value; this needs a {wanted} value"
            problems.append(at.inside(path, shift + _first_char(body), text, message))
        return None
    return checked


def _names_stub(text: str, scope: Scope) -> bool:
    """True when the expression names a field that failed to load: its mistakes may be that one's."""
    return bool(scope.stubs) and not scope.stubs.isdisjoint(NAME.findall(text))


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
    if given == NULL or wanted.kind in ("any", "null"):  # null: the type of a field that failed to load
        return True
    if wanted.numeric:
        return given.numeric
    if wanted.kind == "ref":
        return given.kind in ("ref", "integer")
    return given.kind == wanted.kind


def _fetch(
    spec: Any, scope: Scope, wanted: Type | None, path: PathKey, at: FormSource, problems: list[Problem]
) -> Checked | None:
    """A field's `fetch`: an expression of the field's type, on a field that has no other source."""
    where = (*path, "fetch")
    if spec.fetch is None:
        if spec.fetch_mode != "follow":  # (`follow`, the default, may be written out anywhere)
            problems.append(at.at((*path, "fetch_mode"), "fetch_mode needs a fetch"))
        return None
    if spec.type in UNFETCHED_TYPES or wanted is None:
        problems.append(at.at(where, f"a {spec.type} field cannot fetch a value"))
        return None
    for other in ("formula", "default"):
        if getattr(spec, other, None) is not None:
            problems.append(at.at(where, f"a field with a fetch cannot also have a {other}"))
            return None
    checked = _checked(spec.fetch, scope, wanted, where, at, problems, default=False)
    if checked is not None and (checked.children or checked.backlinks):
        table = sorted(t for t, _ in (*checked.children, *checked.backlinks))[0]
        kind = "own rows" if any(t == table for t, _ in checked.children) else "backlinked records"
        message = f"a fetch cannot read the record's {kind} ('{table}'); use a formula"
        problems.append(at.inside(where, _first_char(spec.fetch), spec.fetch, message))
        return None
    return checked


def fetch_order(fetches: dict[str, set[str]]) -> list[str]:
    """Fetched fields so that each comes after the fetched fields it reads (no cycles assumed)."""
    return formula_order(fetches)


def _fetch_reads(
    form: Form, fetches: dict[str, tuple[Checked, PathKey]], formulas: set[str], at: FormSource
) -> Iterator[Problem]:
    """Fetches run before formulas: they cannot read a formula's value."""
    for key, (checked, path) in fetches.items():
        late = sorted(checked.fields & formulas)
        if late:
            text = str(getattr(form.field(key), "fetch", ""))
            message = f"a fetch cannot read the formula '{late[0]}': fetches are computed before formulas"
            yield at.inside(path, _first_char(text), text, message)


def _filter(
    app: App, form: Form, spec: Any, text: str, path: PathKey, at: FormSource, problems: list[Problem]
) -> None:
    """A link's `filter`: a condition on the linked form, with `record.` (and `parent.` in rows)."""
    target = app.form(spec.to)
    if target is None:
        return
    holders = _holders(app, form) if form.child else [None]
    for parent in holders:  # a child form no table field holds has nothing to check against
        before = len(problems)
        _checked(text, filter_scope(app, target, form, parent), BOOLEAN, path, at, problems, default=False)
        if len(problems) > before:
            return


def _holders(app: App, child: Form) -> list[Form | None]:
    """The forms whose table fields hold rows of `child`."""
    return [f for f in app.forms if any(t.form == child.form for t in f.table_fields())]


def _cycles(
    formulas: dict[str, tuple[Checked, PathKey]], at: FormSource, noun: str = "formulas"
) -> Iterator[Problem]:
    """Formulas may use each other, but not in a circle (nor may fetches)."""
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
                yield at.at(path, f"{noun} refer to each other in a circle: " + " → ".join(circle))
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
            if getattr(spec, "stub", False):  # failed to load: reported where it is written
                continue
            if spec is None:
                yield at.at(("duplicates", g, i), _unknown(key, form))
            elif spec.type not in DUPLICATE_TYPES:
                yield at.at(("duplicates", g, i), f"a {spec.type} field cannot be compared for duplicates")


def _unknown(key: str, form: Form) -> str:
    return f"unknown field '{key}'{did_you_mean(key, [f.key for f in form.fields])}"
