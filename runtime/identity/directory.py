"""Users, departments and roles: creating them, and loading the actor of a user.

Changing a password, taking a role away or deactivating a user ends that user's web
sessions at once (they sign in again, with the new password and roles); deactivating
also revokes their API tokens, so activating the user again does not revive them.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from runtime.identity.actor import Actor
from runtime.identity.passwords import check_strength, hash_password
from runtime.schema.system import departments, sessions, tokens, user_roles, users
from runtime.schema.types import utcnow


class DirectoryError(Exception):
    """A user, role or department request that cannot be done."""


def create_user(
    conn: Connection,
    username: str,
    password: str | None,
    display_name: str | None = None,
    roles: tuple[str, ...] = (),
    department: str | None = None,
    language: str = "zh",
    email: str | None = None,
) -> int:
    """Create a user with roles, an optional department and e-mail address; answers the id."""
    if conn.execute(select(users.c.id).where(users.c.username == username)).first():
        raise DirectoryError(f"user '{username}' exists already")
    if password is not None and (weak := check_strength(password)):
        raise DirectoryError(weak)
    department_id = department_id_of(conn, department) if department else None
    user_id = conn.execute(
        insert(users)
        .values(
            username=username,
            display_name=display_name or username,
            created_at=utcnow(),
            password_hash=hash_password(password) if password else None,
            department_id=department_id,
            language=language,
            email=email,
            active=True,
        )
        .returning(users.c.id)
    ).scalar_one()
    for role in roles:
        add_role(conn, username, role)
    return int(user_id)


def user_id_of(conn: Connection, username: str) -> int:
    """The id of a user; DirectoryError when unknown."""
    found = conn.execute(select(users.c.id).where(users.c.username == username)).scalar_one_or_none()
    if found is None:
        raise DirectoryError(f"no user '{username}'")
    return int(found)


def add_role(conn: Connection, username: str, role: str) -> None:
    """Give a user a role (idempotent)."""
    user_id = user_id_of(conn, username)
    present = conn.execute(
        select(user_roles.c.role).where(user_roles.c.user_id == user_id, user_roles.c.role == role)
    ).first()
    if not present:
        conn.execute(insert(user_roles).values(user_id=user_id, role=role))


def remove_role(conn: Connection, username: str, role: str) -> None:
    """Take a role from a user."""
    user_id = user_id_of(conn, username)
    taken = conn.execute(delete(user_roles).where(user_roles.c.user_id == user_id, user_roles.c.role == role))
    if taken.rowcount:
        sign_out(conn, user_id)


def set_password(conn: Connection, username: str, password: str) -> None:
    """Replace a user's password."""
    if weak := check_strength(password):
        raise DirectoryError(weak)
    user_id = user_id_of(conn, username)
    conn.execute(update(users).where(users.c.id == user_id).values(password_hash=hash_password(password)))
    sign_out(conn, user_id)


def set_active(conn: Connection, username: str, active: bool) -> None:
    """Activate or deactivate a user; deactivating ends their sessions and revokes their tokens."""
    user_id = user_id_of(conn, username)
    conn.execute(update(users).where(users.c.id == user_id).values(active=active))
    if not active:
        sign_out(conn, user_id, revoke_tokens=True)


def sign_out(conn: Connection, user_id: int, *, revoke_tokens: bool = False) -> None:
    """End every web session of a user (and, with `revoke_tokens`, revoke their live API tokens)."""
    conn.execute(delete(sessions).where(sessions.c.user_id == user_id))
    if revoke_tokens:
        conn.execute(
            update(tokens)
            .where(tokens.c.user_id == user_id, tokens.c.revoked_at.is_(None))
            .values(revoked_at=utcnow())
        )


def create_department(
    conn: Connection, key: str, name: str, parent: str | None = None, manager: str | None = None
) -> int:
    """Create a department under `parent`, managed by `manager`; answers the id."""
    if conn.execute(select(departments.c.id).where(departments.c.key == key)).first():
        raise DirectoryError(f"department '{key}' exists already")
    values: dict[str, Any] = {"key": key, "name": name}
    if parent:
        values["parent_id"] = department_id_of(conn, parent)
    if manager:
        values["manager_id"] = user_id_of(conn, manager)
    return int(conn.execute(insert(departments).values(**values).returning(departments.c.id)).scalar_one())


def set_manager(conn: Connection, department: str, manager: str) -> None:
    """Make a user the manager of a department."""
    conn.execute(
        update(departments)
        .where(departments.c.id == department_id_of(conn, department))
        .values(manager_id=user_id_of(conn, manager))
    )


def department_id_of(conn: Connection, key: str) -> int:
    """The id of a department; DirectoryError when unknown."""
    found = conn.execute(select(departments.c.id).where(departments.c.key == key)).scalar_one_or_none()
    if found is None:
        raise DirectoryError(f"no department '{key}'")
    return int(found)


def subtree(conn: Connection, department_id: int | None) -> tuple[int, ...]:
    """The department and every department below it."""
    if department_id is None:
        return ()
    children: dict[int | None, list[int]] = defaultdict(list)
    for row in conn.execute(select(departments.c.id, departments.c.parent_id)):
        children[row.parent_id].append(row.id)
    found, todo = [], [department_id]
    while todo:
        current = todo.pop()
        if current in found:
            continue
        found.append(current)
        todo.extend(children.get(current, []))
    return tuple(sorted(found))


def actor_of_token(conn: Connection, token_hash: str, now: Any) -> Actor | None:
    """The actor behind a live API token, read with its user and roles in one query."""
    stmt = (
        select(
            users.c.id,
            users.c.username,
            users.c.active,
            users.c.department_id,
            users.c.language,
            user_roles.c.role,
            tokens.c.revoked_at,
            tokens.c.expires_at,
        )
        .select_from(
            tokens.join(users, users.c.id == tokens.c.user_id).outerjoin(
                user_roles, user_roles.c.user_id == users.c.id
            )
        )
        .where(tokens.c.token_hash == token_hash)
    )
    rows = conn.execute(stmt).mappings().all()
    if not rows:
        return None
    row = rows[0]
    expired = row["expires_at"] is not None and row["expires_at"] <= now
    if row["revoked_at"] is not None or expired or not row["active"]:
        return None
    roles = frozenset(r["role"] for r in rows if r["role"] is not None)
    return Actor(
        row["id"],
        row["username"],
        roles,
        subtree(conn, row["department_id"]),
        "api",
        language=row["language"] or "zh",
        department_id=row["department_id"],
    )


def load_actor(
    conn: Connection, user_id: int, channel: str = "api", csrf_token: str | None = None
) -> Actor | None:
    """The actor of an active user, or None."""
    stmt = (
        select(users.c.username, users.c.active, users.c.department_id, users.c.language, user_roles.c.role)
        .select_from(users.outerjoin(user_roles, user_roles.c.user_id == users.c.id))
        .where(users.c.id == user_id)
    )
    rows = conn.execute(stmt).mappings().all()  # one row per role: the user and roles in one query
    if not rows or not rows[0]["active"]:
        return None
    row = rows[0]
    roles = frozenset(r["role"] for r in rows if r["role"] is not None)
    return Actor(
        user_id,
        row["username"],
        roles,
        subtree(conn, row["department_id"]),
        channel,
        language=row["language"] or "zh",
        csrf_token=csrf_token,
        department_id=row["department_id"],
    )
