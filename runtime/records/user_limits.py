"""User fields limited to some roles (`roles`) or departments (`within`): who may be chosen.

The department keys of `within` are data, not definitions: they are looked up when a
value is written or a picker is drawn, each with every department below it. A key that
names no department adds nobody (the field's message names the keys, so the cause shows).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import Connection, and_, exists, false, select
from sqlalchemy.sql.elements import ColumnElement

from runtime.schema.system import departments, user_roles, users


def limited(spec: Any) -> bool:
    """True for a user field that only some users may fill."""
    return spec.type == "user" and bool(getattr(spec, "roles", None) or getattr(spec, "within", None))


def eligible(conn: Connection, spec: Any) -> ColumnElement[bool] | None:
    """The condition on `formloom_users` of the users a field accepts (None: anyone)."""
    if not limited(spec):
        return None
    conditions: list[ColumnElement[bool]] = []
    if spec.roles:
        held = select(user_roles.c.user_id).where(
            user_roles.c.user_id == users.c.id, user_roles.c.role.in_(spec.roles)
        )
        conditions.append(exists(held))
    if spec.within:
        units = departments_within(conn, spec.within)
        conditions.append(users.c.department_id.in_(units) if units else false())
    return and_(*conditions)


def departments_within(conn: Connection, keys: list[str]) -> set[int]:
    """The ids of the departments named by `keys` and of every department below them."""
    rows = conn.execute(select(departments.c.id, departments.c.key, departments.c.parent_id)).all()
    below: dict[int | None, list[int]] = defaultdict(list)
    for row in rows:
        below[row.parent_id].append(row.id)
    found: set[int] = set()
    todo = [row.id for row in rows if row.key in keys]
    while todo:
        current = todo.pop()
        if current not in found:
            found.add(current)
            todo.extend(below.get(current, []))
    return found


def limit_message(spec: Any) -> str:
    """What a refused user lacks, in the words of the definition."""
    parts = []
    if spec.roles:
        parts.append(f"holding the role {' or '.join(spec.roles)}")
    if spec.within:
        parts.append(f"in the department {' or '.join(spec.within)} (or one below it)")
    return "choose a user " + " and ".join(parts)
