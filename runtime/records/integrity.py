"""Checks that need the database: referenced records exist, unique values are free."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import Connection, Table, func, select
from sqlalchemy.sql.elements import ColumnElement

from runtime.records.compiled import CompiledApp, CompiledForm
from runtime.records.errors import FieldProblem
from runtime.records.user_limits import eligible, limit_message, limited
from runtime.records.writer import Prepared
from runtime.schema.system import users

Item = tuple[str, Prepared]  # (path prefix, prepared input)
_MISSING = {"not_found": "no record with id %s", "link_out_of_scope": "no record you may link to has id %s"}
REFERENCES = ("link", "user", "department", "attachment")
DEPARTMENTS = "formloom_departments"
# The writer's read condition on a linked form (None: every record), for `reference_problems`.
LinkScope = Callable[[CompiledForm], "ColumnElement[bool] | None"]


def reference_problems(
    conn: Connection,
    app: CompiledApp,
    form: CompiledForm,
    items: list[Item],
    link_scope: LinkScope | None = None,
) -> list[FieldProblem]:
    """Links, users and attachments must name existing rows: one query per target table.

    With `link_scope`, a link must also name a record the writer may read, unless the
    record being changed links to it already. For a writer whose read scope on the linked
    form is limited, a missing record and one out of scope get the same answer
    (`link_out_of_scope`), so a write reveals nothing about records they cannot read.
    """
    wanted: dict[str, list[tuple[str, int]]] = defaultdict(list)
    targets: dict[str, Table] = {}
    linked: dict[str, CompiledForm] = {}
    for prefix, values, sub in _all_values(form, items):
        for key, field in sub.fields.items():
            ref = values.get(key)
            if ref is None or field.type not in REFERENCES:
                continue
            table = _target(app, field)
            targets[table.name] = table
            if field.type == "link":
                linked[table.name] = app.form(field.spec.to)
            wanted[table.name].append((f"{prefix}{key}", ref))
    problems: list[FieldProblem] = []
    record_id = items[0][1].record_id if len(items) == 1 else None
    for name, refs in wanted.items():
        table = targets[name]
        ids = {ref for _, ref in refs}
        found = set(conn.execute(select(table.c.id).where(table.c.id.in_(ids))).scalars())
        condition = link_scope(linked[name]) if link_scope is not None and name in linked else None
        if condition is not None:
            found = _readable_or_kept(conn, form, linked[name], found, condition, record_id)
        code = "not_found" if condition is None else "link_out_of_scope"
        missing = "no department with id %s" if name == DEPARTMENTS else _MISSING[code]
        problems.extend(FieldProblem(path, code, missing % ref) for path, ref in refs if ref not in found)
    return problems


def user_limit_problems(
    conn: Connection, form: CompiledForm, items: list[Item], own_id: int | None = None
) -> list[FieldProblem]:
    """User fields limited by `roles` or `within` take only users who qualify: one query per field.

    A user the record (or, for child rows, one of its rows) holds already may stay, so a
    record is not refused for a value nobody changed after a user moved department.
    """
    wanted: dict[tuple[str, str], list[tuple[str, int]]] = defaultdict(list)
    subs: dict[str, CompiledForm] = {}
    for prefix, values, sub in _all_values(form, items):
        subs[sub.key] = sub
        for key, field in sub.fields.items():
            if values.get(key) is not None and limited(field.spec):
                wanted[(sub.key, key)].append((f"{prefix}{key}", values[key]))
    problems: list[FieldProblem] = []
    for (sub_key, key), refs in wanted.items():
        sub = subs[sub_key]
        condition = eligible(conn, sub.fields[key].spec)
        ids = {ref for _, ref in refs}
        stmt = select(users.c.id).where(users.c.id.in_(ids))
        found = set(conn.execute(stmt if condition is None else stmt.where(condition)).scalars())
        if own_id is not None and ids - found:
            column = sub.table.c[key]
            own = sub.table.c.parent_id if sub.parent is not None else sub.table.c.id
            found |= set(conn.execute(select(column).where(own == own_id, column.in_(ids - found))).scalars())
        message = limit_message(sub.fields[key].spec)
        problems.extend(
            FieldProblem(path, "not_eligible", f"user {ref} may not be chosen here: {message}")
            for path, ref in refs
            if ref not in found
        )
    return problems


def _readable_or_kept(
    conn: Connection,
    form: CompiledForm,
    target: CompiledForm,
    ids: set[int],
    condition: ColumnElement[bool],
    record_id: int | None,
) -> set[int]:
    """The ids among `ids` the writer may read, or that the record already links to."""
    if not ids:
        return ids
    table = target.table
    readable = set(conn.execute(select(table.c.id).where(table.c.id.in_(ids), condition)).scalars())
    rest = ids - readable
    if rest and record_id is not None:
        readable |= already_linked(conn, form, record_id, target.key, rest)
    return readable


def already_linked(
    conn: Connection, form: CompiledForm, record_id: int, target: str, ids: set[int]
) -> set[int]:
    """The ids among `ids` that a stored record or its child rows link to (links to `target`)."""
    found: set[int] = set()
    for sub in (form, *form.children.values()):
        columns = [sub.table.c[k] for k, f in sub.fields.items() if f.type == "link" and f.spec.to == target]
        if not columns:
            continue
        own = sub.table.c.parent_id if sub.parent is not None else sub.table.c.id
        for column in columns:
            stmt = select(column).where(own == record_id, column.in_(ids))
            found.update(conn.execute(stmt).scalars())
    return found


def attachment_problems(
    conn: Connection, app: CompiledApp, form: CompiledForm, items: list[Item]
) -> list[FieldProblem]:
    """Attached files must respect their field's `max_size` and `accept`: one query in all."""
    wanted = [
        (f"{prefix}{key}", values[key], field.spec)
        for prefix, values, sub in _all_values(form, items)
        for key, field in sub.fields.items()
        if field.type == "attachment"
        and values.get(key) is not None
        and (field.spec.max_size or field.spec.accept)
    ]
    if not wanted:
        return []
    files = app.tables.metadata.tables["formloom_files"]
    stmt = select(files.c.id, files.c.size, files.c.content_type)
    facts = {row.id: row for row in conn.execute(stmt.where(files.c.id.in_({w[1] for w in wanted})))}
    problems = []
    for path, file_id, spec in wanted:
        fact = facts.get(file_id)
        if fact is None:
            continue  # reported as not_found by reference_problems
        if spec.max_size and fact.size > spec.max_size:
            problems.append(FieldProblem(path, "max_size", f"the file is larger than {spec.max_size} bytes"))
        if spec.accept and not _accepted(fact.content_type, spec.accept):
            problems.append(
                FieldProblem(path, "file_type", f"only {', '.join(spec.accept)} files are accepted")
            )
    return problems


def _accepted(content_type: str, accept: list[str]) -> bool:
    kind = content_type.split(";")[0].strip().lower()
    for pattern in accept:
        pattern = pattern.lower()
        if kind == pattern or (pattern.endswith("/*") and kind.startswith(pattern[:-1])):
            return True
    return False


def unique_problems(
    conn: Connection, form: CompiledForm, items: list[Item], own_id: int | None = None
) -> list[FieldProblem]:
    """Unique fields must not repeat a stored value nor each other within one request.

    `own_id` is the record being changed: its own values (and, for a child form, the
    rows of that parent, which the request replaces) do not count as taken.
    """
    problems = []
    for key, field in form.fields.items():
        if not getattr(field.spec, "unique", False):
            continue
        given = [(f"{prefix}{key}", p.values[key]) for prefix, p in items if p.values.get(key) is not None]
        if not given:
            continue
        column = form.table.c[key]
        stmt = select(column).where(column.in_({v for _, v in given}))
        if own_id is not None:
            own = form.table.c.parent_id if form.parent is not None else form.table.c.id
            stmt = stmt.where(own != own_id)
        taken = set(conn.execute(stmt).scalars())
        seen: set[Any] = set()
        for path, value in given:
            if value in taken or value in seen:
                problems.append(FieldProblem(path, "unique", f"the value {value!s:.60} is already used"))
            seen.add(value)
    return problems


def restricting_references(
    conn: Connection, app: CompiledApp, form: CompiledForm, record_id: int
) -> list[FieldProblem]:
    """Records whose restrict-links point at this record (they block its deletion)."""
    problems = []
    for other in app.forms.values():
        for sub in (other, *other.children.values()):
            for key, field in sub.fields.items():
                if field.type != "link" or field.spec.to != form.key:
                    continue
                if field.spec.on_delete != "restrict":
                    continue
                column = sub.table.c[key]
                count = conn.execute(select(func.count()).where(column == record_id)).scalar_one()
                if count:
                    problems.append(
                        FieldProblem(
                            None, "referenced", f"{count} {other.key} record(s) refer to it through '{key}'"
                        )
                    )
    return problems


def _target(app: CompiledApp, field: Any) -> Table:
    if field.type == "link":
        return app.form(field.spec.to).table
    name = {"user": "formloom_users", "department": DEPARTMENTS}.get(field.type, "formloom_files")
    return app.tables.metadata.tables[name]


def _all_values(form: CompiledForm, items: list[Item]) -> Iterable[tuple[str, dict[str, Any], CompiledForm]]:
    for prefix, prepared in items:
        yield prefix, prepared.values, form
        for key, rows in prepared.children.items():
            for index, row in enumerate(rows):
                yield f"{prefix}{key}[{index}].", row.values, form.children[key]
