"""Web sessions: a random cookie value (stored hashed), a CSRF token, an expiry.

Sign-in throttling is in `runtime.identity.throttle`.
"""

from __future__ import annotations

import datetime as dt
import secrets

from sqlalchemy import Connection, delete, insert, select

from runtime.identity.tokens import digest
from runtime.schema.system import sessions
from runtime.schema.types import utcnow

SESSION_HOURS = 12


def open_session(conn: Connection, user_id: int) -> tuple[str, str]:
    """A new session (a new id at every login: no fixation); answers (cookie value, CSRF token)."""
    value = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    now = utcnow()
    conn.execute(
        insert(sessions).values(
            id=digest(value),
            user_id=user_id,
            csrf_token=csrf,
            created_at=now,
            expires_at=now + dt.timedelta(hours=SESSION_HOURS),
        )
    )
    return value, csrf


def session_user(conn: Connection, value: str) -> tuple[int, str] | None:
    """(user id, CSRF token) of a live session, or None."""
    row = conn.execute(select(sessions).where(sessions.c.id == digest(value))).mappings().first()
    if row is None or row["expires_at"] <= utcnow():
        return None
    return int(row["user_id"]), str(row["csrf_token"])


def close_session(conn: Connection, value: str) -> None:
    """Log out: the session id stops working at once."""
    conn.execute(delete(sessions).where(sessions.c.id == digest(value)))
