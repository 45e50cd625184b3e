"""Load-time checks of backlinks: the records of another form that link to a form's records.

A backlink (`backlinks: [{key: payments, form: payment, link: account}]`) must name a
top-level form and a link field of it that points at this form, under a key that no field,
other backlink or settings form of the form already uses. Formulas that aggregate a
backlink may read each other across forms, but never in a circle: the rollups of a record
are recomputed when the records linking to it change, and a circle would never settle.
Every problem points at its place as `file:line:col`.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import pairwise

from runtime.expressions.checker import Checked, check
from runtime.expressions.parser import parse
from runtime.expressions.syntax import ExpressionError
from runtime.expressions.types import Scope, scope_for
from runtime.loading.problems import Problem, did_you_mean
from runtime.loading.salvage import NOTHING_BROKEN, Broken, is_stub
from runtime.loading.source import FormSource, PathKey
from runtime.model import App, Form
from runtime.model.fields import LinkField

Node = tuple[str, str]  # (form, formula field)


def check_backlinks(
    app: App, form: Form, at: FormSource, known: set[str], broken: Broken = NOTHING_BROKEN
) -> list[Problem]:
    """Every problem of the form's backlink declarations."""
    if form.backlinks and form.child:
        return [at.at(("backlinks",), "a child form's rows cannot be linked to: it cannot have backlinks")]
    problems: list[Problem] = []
    fields = {f.key for f in form.fields}
    singles = {f.form for f in app.forms if f.single}
    seen: set[str] = set()
    for index, backlink in enumerate(form.backlinks):
        path: PathKey = ("backlinks", index)
        key = backlink.key
        if key in fields:
            problems.append(at.at((*path, "key"), f"'{key}' is already a field of {form.form}"))
        elif key in seen:
            problems.append(at.at((*path, "key"), f"backlink '{key}' is given twice"))
        elif key in singles:
            message = f"'{key}' names the settings form {key} in expressions; choose another key"
            problems.append(at.at((*path, "key"), message))
        seen.add(key)
        problems.extend(_source(app, form, backlink.form, backlink.link, path, at, known, broken))
    return problems


def _source(
    app: App,
    form: Form,
    source_key: str,
    link_key: str,
    path: PathKey,
    at: FormSource,
    known: set[str],
    broken: Broken,
) -> Iterator[Problem]:
    source = app.form(source_key)
    if source is None:
        if source_key not in known and not broken.quiet(source_key):
            names = [f.form for f in app.top_forms()]
            yield at.at((*path, "form"), f"unknown form '{source_key}'{did_you_mean(source_key, names)}")
        return
    if source.child:
        yield at.at((*path, "form"), f"'{source_key}' is a child form: its rows cannot link to records")
        return
    link = source.field(link_key)
    where = (*path, "link")
    if is_stub(link) or (link is None and broken.quiet(link_key)):
        return
    if link is None:
        links = [f.key for f in source.link_fields()]
        yield at.at(where, f"unknown field '{link_key}' of {source_key}{did_you_mean(link_key, links)}")
    elif not isinstance(link, LinkField):
        yield at.at(where, f"'{link_key}' is not a link field of {source_key}")
    elif link.to != form.form:
        yield at.at(where, f"'{source_key}.{link_key}' links to {link.to}, not to {form.form}")


def check_rollup_circles(app: App, where: dict[str, FormSource]) -> list[Problem]:
    """Formulas that read each other in a circle through backlinks (a circle within one form
    without a backlink is reported with the form's expressions)."""
    reads, positions = _formula_graph(app)
    problems: list[Problem] = []
    state: dict[Node, str] = {}
    reported: set[Node] = set()

    def visit(node: Node, trail: list[Node]) -> None:
        state[node] = "open"
        for used, _ in sorted(reads.get(node, set())):
            if state.get(used) == "open" and used in trail:
                circle = [*trail[trail.index(used) :], used]
                steps = pairwise(circle)
                if any(_through(reads, a, b) for a, b in steps) and not reported & set(circle):
                    reported.update(circle)
                    names = " → ".join(f"{form}.{key}" for form, key in circle)
                    message = f"formulas refer to each other in a circle through backlinks: {names}"
                    problems.append(where[used[0]].at(positions[used], message))
            elif used not in state:
                visit(used, [*trail, used])
        state[node] = "done"

    for node in sorted(reads):
        if node not in state:
            visit(node, [node])
    return problems


def _through(reads: dict[Node, set[tuple[Node, bool]]], a: Node, b: Node) -> bool:
    """True when `a` reads `b` through a backlink."""
    return (b, True) in reads.get(a, set())


def _formula_graph(app: App) -> tuple[dict[Node, set[tuple[Node, bool]]], dict[Node, PathKey]]:
    """Which formula reads which (and whether through a backlink), and where each is written."""
    reads: dict[Node, set[tuple[Node, bool]]] = {}
    positions: dict[Node, PathKey] = {}
    formulas = {(f.form, s.key) for f in app.forms for s in f.stored_fields() if s.formula is not None}
    for form in app.forms:
        scope = scope_for(app, form)
        sources = {b.key: b.form for b in form.backlinks}
        for index, spec in enumerate(form.fields):
            if spec.formula is None or spec.type == "table":
                continue
            node = (form.form, spec.key)
            positions[node] = ("fields", index, "formula")
            checked = _checked(spec.formula, scope)
            if checked is None:
                continue
            edges = {((form.form, key), False) for key in checked.fields}
            edges |= {((sources[key], c), True) for key, c in checked.backlinks if c is not None}
            reads[node] = {edge for edge in edges if edge[0] in formulas}
    return reads, positions


def _checked(text: str, scope: Scope) -> Checked | None:
    try:
        return check(parse(text), scope, text)
    except ExpressionError:
        return None  # reported with the form's expressions
