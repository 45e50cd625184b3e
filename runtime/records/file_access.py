"""Who may read a stored file, and which files a write may attach.

A file is readable by

- admins and system callers: every file;
- anyone who may read a record holding it: the record (or, for a child row, its parent
  record) within their read scope, and the attachment field — and for a child row the
  table field too — not hidden from them;
- its uploader, while no record holds it.

Anyone else is answered 404, exactly as for a file that does not exist.

A write may set an attachment field only to a file its writer may read by the same rule
(their own upload not yet attached, or a file on a record they can read); any other
file is refused as `not_found`, with the message of a missing file, so a write cannot
probe for files either. The API names files by their random public id; the internal
integer id is taken only from the process engine and system callers (imports, demo
data), whose values come from stored records.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from typing import Any

from sqlalchemy import Connection, Select, case, literal, select, union_all
from sqlalchemy.sql.elements import ColumnElement

from runtime.identity.actor import Actor
from runtime.records.access import access_for, hidden_fields
from runtime.records.compiled import CompiledApp, CompiledForm, child_field
from runtime.records.errors import FieldProblem, NotFound
from runtime.records.hooks import ENGINE_WRITE
from runtime.records.values import FILE_ID
from runtime.records.writer import Prepared
from runtime.schema.system import files

Item = tuple[str, Prepared]  # (path prefix, prepared input)
Slot = tuple[str, dict[str, Any], str]  # (input path, the values holding it, field key)


def readable_file(
    conn: Connection,
    apps: Iterable[CompiledApp],
    actor: Actor,
    public_id: str,
    dialect: str,
    now: dt.datetime,
) -> dict[str, Any]:
    """The stored row of a file the actor may read; NotFound (404) otherwise."""
    row = None
    if FILE_ID.fullmatch(public_id):
        row = conn.execute(select(files).where(files.c.public_id == public_id)).mappings().first()
    if row is None or not readable_ids(conn, apps, actor, {row["id"]: row["created_by"]}, dialect, now):
        raise NotFound("file", public_id)
    return dict(row)


def readable_ids(
    conn: Connection,
    apps: Iterable[CompiledApp],
    actor: Actor,
    uploaders: dict[int, int | None],
    dialect: str,
    now: dt.datetime,
) -> set[int]:
    """Of these files (internal id → uploader), the ones the actor may read: one query."""
    if actor.admin or not uploaders:
        return set(uploaders)
    ids = set(uploaders)
    forms = [form for app in apps for form in app.forms.values()]
    statements = [stmt for form in forms for stmt in _holders(form, actor, ids, dialect, now)]
    held: set[int] = set()
    readable: set[int] = set()
    if statements:
        query = statements[0] if len(statements) == 1 else union_all(*statements)
        for file_id, shown in conn.execute(query):
            held.add(file_id)
            if shown:
                readable.add(file_id)
    own = {i for i, by in uploaders.items() if by is not None and by == actor.user_id and i not in held}
    return readable | own


def attachment_access_problems(
    conn: Connection,
    apps: Iterable[CompiledApp],
    form: CompiledForm,
    items: list[Item],
    actor: Actor,
    dialect: str,
    now: dt.datetime,
    own_id: int | None = None,
) -> list[FieldProblem]:
    """Check the files a write attaches, and turn their public ids into stored ids (in place).

    Refused, each as `not_found` "no file with id …": an unknown id; a whole number from
    anyone but the engine and system callers; a file the actor may not read. Files the
    record being changed (`own_id`) already holds may stay. A refused value is removed
    from the input, so the later checks never see it.
    """
    slots = list(_attachment_slots(form, items))
    if not slots:
        return []
    trusted = actor.system or ENGINE_WRITE.get()
    named = {values[key] for _, values, key in slots if isinstance(values[key], str)}
    found: dict[str, tuple[int, int | None]] = {}
    if named:
        stmt = select(files.c.public_id, files.c.id, files.c.created_by).where(files.c.public_id.in_(named))
        found = {row.public_id: (row.id, row.created_by) for row in conn.execute(stmt)}
    problems: list[FieldProblem] = []
    chosen: list[tuple[Slot, str]] = []
    uploaders: dict[int, int | None] = {}
    for slot in slots:
        path, values, key = slot
        value = values[key]
        if isinstance(value, str) and value in found:
            file_id, uploader = found[value]
            values[key] = file_id
            uploaders[file_id] = uploader
            chosen.append((slot, value))
        elif not (isinstance(value, int) and trusted):  # stored ids of trusted callers: reference checks
            values.pop(key)
            problems.append(_missing(path, value))
    if actor.admin or not chosen:
        return problems
    allowed = readable_ids(conn, apps, actor, uploaders, dialect, now)
    if own_id is not None and set(uploaders) - allowed:
        allowed |= _held_by(conn, form, own_id, set(uploaders) - allowed)
    for (path, values, key), public_id in chosen:
        if values[key] not in allowed:
            values.pop(key)
            problems.append(_missing(path, public_id))
    return problems


def _holders(
    form: CompiledForm, actor: Actor, ids: set[int], dialect: str, now: dt.datetime
) -> Iterator[Select[Any]]:
    """Per attachment column of a form and its child forms: (file id, readable by the actor)."""
    subs = (form, *form.children.values())
    if not any(f.type == "attachment" for sub in subs for f in sub.fields.values()):
        return
    access = access_for(form, actor)
    may_read = access.can("read")
    condition = access.condition("read", dialect, now) if may_read else None
    for key, field in form.fields.items():
        if field.type == "attachment":
            column = form.table.c[key]
            shown = _shown(may_read and key not in access.hidden, condition)
            yield select(column.label("file_id"), shown).where(column.in_(ids))
    for table_key, child in form.children.items():
        table_shown = may_read and not (actor.roles & set(child_field(form, table_key).hidden_for))
        hidden = hidden_fields(child, actor)
        for key, field in child.fields.items():
            if field.type != "attachment":
                continue
            column = child.table.c[key]
            visible = table_shown and key not in hidden
            stmt = select(column.label("file_id"), _shown(visible, condition)).where(column.in_(ids))
            if visible and condition is not None:  # the scope is a condition on the parent's row
                parent = child.table.join(form.table, child.table.c.parent_id == form.table.c.id)
                stmt = stmt.select_from(parent)
            yield stmt


def _shown(visible: bool, condition: ColumnElement[bool] | None) -> ColumnElement[Any]:
    if not visible:
        return literal(0).label("shown")
    if condition is None:
        return literal(1).label("shown")
    return case((condition, 1), else_=0).label("shown")


def _held_by(conn: Connection, form: CompiledForm, record_id: int, ids: set[int]) -> set[int]:
    """Which of these files the record already holds (in its fields or its child rows)."""
    statements: list[Select[Any]] = []
    for sub in (form, *form.children.values()):
        own = sub.table.c.id if sub is form else sub.table.c.parent_id
        for key, field in sub.fields.items():
            if field.type == "attachment":
                column = sub.table.c[key]
                statements.append(select(column.label("file_id")).where(own == record_id, column.in_(ids)))
    if not statements:
        return set()
    query = statements[0] if len(statements) == 1 else union_all(*statements)
    return set(conn.execute(query).scalars())


def _attachment_slots(form: CompiledForm, items: list[Item]) -> Iterator[Slot]:
    for prefix, prepared in items:
        yield from _slots(form, prefix, prepared.values)
        for table_key, rows in prepared.children.items():
            child = form.children[table_key]
            for index, row in enumerate(rows):
                yield from _slots(child, f"{prefix}{table_key}[{index}].", row.values)


def _slots(form: CompiledForm, prefix: str, values: dict[str, Any]) -> Iterator[Slot]:
    for key, field in form.fields.items():
        if field.type == "attachment" and values.get(key) is not None:
            yield f"{prefix}{key}", values, key


def _missing(path: str, value: Any) -> FieldProblem:
    return FieldProblem(path, "not_found", f"no file with id {str(value)[:40]}")
