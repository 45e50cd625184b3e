"""Turn a recipient definition (role, users, user field, manager N levels up, expression) into users.

Only active users are returned, each once, in a stable order. The org chart is the
departments tree: a user's manager is their department's manager, or — for the
manager themselves — the manager of the department above.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, select

from runtime.model.process import ASSIGNEES, Recipient
from runtime.schema.system import departments, user_roles, users

Record = dict[str, Any]
Evaluate = Callable[[str], Any]


def resolve(
    conn: Connection,
    recipients: list[Recipient],
    record: Record,
    evaluate: Evaluate,
    submitter: int | None = None,
    assignees: list[int] | None = None,
) -> list[int]:
    """The active users the recipients name, for `record`; `evaluate` runs an expression on it.

    `submitter` is whoever started the approval; `assignees` hold its step's open tasks.
    """
    found: list[int] = []
    for recipient in recipients:
        found.extend(_one(conn, recipient, record, evaluate, submitter, assignees or []))
    return active(conn, list(dict.fromkeys(found)))


def _one(
    conn: Connection,
    recipient: Recipient,
    record: Record,
    evaluate: Evaluate,
    submitter: int | None,
    assignees: list[int],
) -> list[int]:
    if recipient.assignees:
        return list(assignees)
    if recipient.submitter:
        return [] if submitter is None else [submitter]
    if recipient.manager is not None and recipient.of == ASSIGNEES:
        managers = [manager_of(conn, person, recipient.manager) for person in assignees]
        return [m for m in managers if m is not None]
    if recipient.role is not None:
        stmt = (
            select(user_roles.c.user_id)
            .where(user_roles.c.role == recipient.role)
            .order_by(user_roles.c.user_id)
        )
        return list(conn.execute(stmt).scalars())
    if recipient.users is not None:
        stmt = select(users.c.id, users.c.username).where(users.c.username.in_(recipient.users))
        by_name = {row.username: row.id for row in conn.execute(stmt)}
        return [by_name[name] for name in recipient.users if name in by_name]
    if recipient.user_field is not None:
        return _ids(record.get(recipient.user_field))
    if recipient.manager is not None:
        start = record.get(recipient.of) if recipient.of else (submitter or record.get("created_by"))
        manager = manager_of(conn, start, recipient.manager) if start is not None else None
        return [] if manager is None else [manager]
    assert recipient.expression is not None
    return _ids(evaluate(recipient.expression))


def _ids(value: Any) -> list[int]:
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return [int(v) for v in value if v is not None]
    return [int(value)]


def manager_of(conn: Connection, user_id: int, levels: int = 1) -> int | None:
    """The manager `levels` steps up the org chart from a user, if there is one."""
    rows = conn.execute(select(departments.c.id, departments.c.parent_id, departments.c.manager_id)).all()
    tree = {row.id: (row.parent_id, row.manager_id) for row in rows}
    current: int | None = user_id
    for _ in range(levels):
        if current is None:
            return None
        department = conn.execute(select(users.c.department_id).where(users.c.id == current)).scalar()
        current = _manager_above(tree, department, current)
    return current


def _manager_above(
    tree: dict[int, tuple[int | None, int | None]], department: int | None, user: int
) -> int | None:
    seen: set[int] = set()
    while department is not None and department not in seen:
        seen.add(department)
        parent, manager = tree.get(department, (None, None))
        if manager is not None and manager != user:
            return manager
        department = parent
    return None


def active(conn: Connection, ids: list[int]) -> list[int]:
    """The ids, in order, of the users that exist and are active."""
    if not ids:
        return []
    stmt = select(users.c.id).where(users.c.id.in_(ids), users.c.active.is_(True))
    alive = set(conn.execute(stmt).scalars())
    return [i for i in ids if i in alive]
