"""The audit trail: who changed what, when and through which channel — append-only.

Every create, update, delete and merge writes one row in the same transaction as
the change, with a field-level diff (old → new) that includes child rows. No route
edits or deletes the trail; `GET …/{id}/history` reads it with hidden fields removed.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, insert, select

from runtime.db import now_of
from runtime.identity.actor import Actor
from runtime.ops.request_id import REQUEST_ID
from runtime.schema.system import audit, users

Record = dict[str, Any]
IGNORED = {"id", "created_at", "updated_at", "version", "created_by"}


def diff(before: Record | None, after: Record | None, children: set[str]) -> dict[str, Any]:
    """Changed fields as `{field: [old, new]}`; a table field lists rows added, removed and changed."""
    old, new = before or {}, after or {}
    changes: dict[str, Any] = {}
    for key in sorted(set(old) | set(new)):
        if key in IGNORED:
            continue
        if key in children:
            rows = _row_changes(old.get(key) or [], new.get(key) or [])
            if rows:
                changes[key] = rows
        elif old.get(key) != new.get(key):
            changes[key] = [old.get(key), new.get(key)]
    return changes


def _row_changes(old: list[Record], new: list[Record]) -> dict[str, Any]:
    before = {row["id"]: row for row in old}
    after = {row["id"]: row for row in new}
    found: dict[str, Any] = {}
    added = [_plain(after[i]) for i in after if i not in before]
    removed = [_plain(before[i]) for i in before if i not in after]
    changed = [{"id": i, **diff(before[i], after[i], set())} for i in after if i in before]
    changed = [c for c in changed if len(c) > 1]
    if added:
        found["added"] = added
    if removed:
        found["removed"] = removed
    if changed:
        found["changed"] = changed
    return found


def _plain(row: Record) -> Record:
    return {k: v for k, v in row.items() if k != "position"}


def record(
    conn: Connection, app: str, form: str, record_id: int, action: str, actor: Actor, changes: dict[str, Any]
) -> None:
    """Append one entry to the trail (with the id of the request, or job, that made the change)."""
    conn.execute(
        insert(audit).values(
            app=app,
            form=form,
            record_id=record_id,
            action=action,
            channel=actor.channel,
            user_id=actor.user_id,
            at=now_of(conn),
            changes=changes,
            request_id=REQUEST_ID.get(),
        )
    )


def history(conn: Connection, app: str, form: str, record_id: int, hidden: frozenset[str]) -> list[Record]:
    """The trail of one record, oldest first, without the fields hidden from the reader."""
    who = users.alias("who")
    stmt = (
        select(audit, who.c.display_name)
        .select_from(audit.outerjoin(who, audit.c.user_id == who.c.id))
        .where(audit.c.app == app, audit.c.form == form, audit.c.record_id == record_id)
        .order_by(audit.c.id)
    )
    entries = []
    for row in conn.execute(stmt).mappings():
        changes = {k: v for k, v in (row["changes"] or {}).items() if k not in hidden}
        user = None if row["user_id"] is None else {"id": row["user_id"], "display": row["display_name"]}
        entries.append(
            {
                "id": row["id"],
                "action": row["action"],
                "channel": row["channel"],
                "user": user,
                "at": row["at"].isoformat().replace("+00:00", "Z"),
                "changes": changes,
            }
        )
    return entries
