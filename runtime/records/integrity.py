"""Checks that need the database: referenced records exist, unique values are free."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, Table, func, select

from runtime.records.compiled import CompiledApp, CompiledForm
from runtime.records.errors import FieldProblem
from runtime.records.writer import Prepared

Item = tuple[str, Prepared]  # (path prefix, prepared input)


def reference_problems(
    conn: Connection, app: CompiledApp, form: CompiledForm, items: list[Item]
) -> list[FieldProblem]:
    """Links, users and attachments must name existing rows: one query per target table."""
    wanted: dict[str, list[tuple[str, int]]] = defaultdict(list)
    targets: dict[str, Table] = {}
    for prefix, values, sub in _all_values(form, items):
        for key, field in sub.fields.items():
            ref = values.get(key)
            if ref is None or field.type not in ("link", "user", "attachment"):
                continue
            table = _target(app, field)
            targets[table.name] = table
            wanted[table.name].append((f"{prefix}{key}", ref))
    problems: list[FieldProblem] = []
    for name, refs in wanted.items():
        table = targets[name]
        ids = {ref for _, ref in refs}
        found = set(conn.execute(select(table.c.id).where(table.c.id.in_(ids))).scalars())
        problems.extend(
            FieldProblem(path, "not_found", f"no record with id {ref}")
            for path, ref in refs
            if ref not in found
        )
    return problems


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
    name = "formloom_users" if field.type == "user" else "formloom_files"
    return app.tables.metadata.tables[name]


def _all_values(form: CompiledForm, items: list[Item]) -> Iterable[tuple[str, dict[str, Any], CompiledForm]]:
    for prefix, prepared in items:
        yield prefix, prepared.values, form
        for key, rows in prepared.children.items():
            for index, row in enumerate(rows):
                yield f"{prefix}{key}[{index}].", row.values, form.children[key]
