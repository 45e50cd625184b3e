"""Load-time check that computed values do not reveal hidden ones.

A formula (or an expression default) is computed by the system, which reads every
field. When a role may read the computed field but not a field it is computed from,
the value can give the hidden one away (`margin_pct` reveals a hidden `line_cost`; a sum
of payments reveals a hidden `amount` of theirs, a count the records of a form the role
cannot read). Such a field must be hidden from that role too, or say `reveals_hidden:
true` on purpose.
"""

from __future__ import annotations

from collections.abc import Iterator

from runtime.expressions.checker import Checked
from runtime.loading.problems import Problem
from runtime.loading.source import FormSource, PathKey
from runtime.model import App, Form

READ = "read"


def check_reveals(
    app: App, form: Form, computed: dict[str, tuple[Checked, PathKey]], at: FormSource
) -> list[Problem]:
    """A problem for each computed field that a role reads while it reads a field hidden from them."""
    problems: list[Problem] = []
    readers = readers_of(app, form)
    for key, (checked, path) in computed.items():
        spec = form.field(key)
        if spec is None or spec.reveals_hidden:
            continue
        for role in sorted(readers - set(spec.hidden_for)):
            source = next(_hidden_sources(app, form, checked, role), None)
            if source is not None:
                message = (
                    f"'{key}' is shown to role '{role}' but is computed from {source}, which is hidden "
                    f"from '{role}'; hide '{key}' from '{role}' too, or mark it reveals_hidden: true"
                )
                problems.append(at.at(path, message))
                break
    return problems


def readers_of(app: App, form: Form) -> set[str]:
    """The roles that may read a form's records (a child form: those of the forms holding it)."""
    if not form.child:
        return {role for p in form.permissions if READ in p.can for role in p.roles}
    holders = [f for f in app.forms if any(getattr(t, "form", None) == form.form for t in f.table_fields())]
    return {role for holder in holders for role in readers_of(app, holder)}


def _hidden_sources(app: App, form: Form, checked: Checked, role: str) -> Iterator[str]:
    """What `checked` reads that `role` may not: fields, linked fields, child fields, the
    records linking here (a form the role cannot read, a link or column hidden from it),
    settings."""
    for key in sorted(checked.fields):
        if _hidden(form, key, role):
            yield f"'{key}'"
    for link, key in sorted(checked.links):
        target = app.form(str(getattr(form.field(link), "to", "")))
        if target is not None and (role not in readers_of(app, target) or _hidden(target, key, role)):
            yield f"'{link}.{key}'"
    for table, column in sorted(checked.children, key=str):
        child = app.form(str(getattr(form.field(table), "form", "")))
        if child is not None and column is not None and _hidden(child, column, role):
            yield f"'{table}.{column}'"
    for link, table, column in sorted(checked.link_children):
        target = app.form(str(getattr(form.field(link), "to", "")))
        if target is None:
            continue
        child = app.form(str(getattr(target.field(table), "form", "")))
        unreadable = role not in readers_of(app, target) or _hidden(target, table, role)
        if unreadable or (child is not None and _hidden(child, column, role)):
            yield f"'{link}.{table}.{column}'"
    for name, column in sorted(checked.backlinks, key=str):
        backlink = form.backlink(name)
        source = app.form(backlink.form) if backlink is not None else None
        if backlink is None or source is None:
            continue
        unreadable = role not in readers_of(app, source) or _hidden(source, backlink.link, role)
        if unreadable or (column is not None and _hidden(source, column, role)):
            yield f"'{name}.{column}'" if column is not None else f"'{name}'"
    for name, key in sorted(checked.singles):
        single = app.form(name)
        if single is not None and (role not in readers_of(app, single) or _hidden(single, key, role)):
            yield f"'{name}.{key}'"


def _hidden(form: Form, key: str, role: str) -> bool:
    spec = form.field(key)
    return spec is not None and role in spec.hidden_for
