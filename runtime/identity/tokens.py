"""API tokens: random, stored only as a SHA-256 hash, named, revocable, with an optional expiry."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

from sqlalchemy import Connection, insert, select, update

from runtime.identity.directory import user_id_of
from runtime.schema.system import tokens
from runtime.schema.types import utcnow

PREFIX = "flm_"


def digest(secret: str) -> str:
    """The stored form of a token or session id."""
    return hashlib.sha256(secret.encode()).hexdigest()


def create_token(conn: Connection, username: str, name: str = "api", days: int | None = None) -> str:
    """Create a token for a user; answers the token itself, which is never stored."""
    token = PREFIX + secrets.token_urlsafe(32)
    now = utcnow()
    expires = now + dt.timedelta(days=days) if days else None
    conn.execute(
        insert(tokens).values(
            user_id=user_id_of(conn, username),
            name=name[:100],
            token_hash=digest(token),
            created_at=now,
            expires_at=expires,
        )
    )
    return token


def user_of_token(conn: Connection, token: str, now: dt.datetime | None = None) -> int | None:
    """The user id a live token belongs to, or None (unknown, revoked or expired)."""
    row = conn.execute(select(tokens).where(tokens.c.token_hash == digest(token))).mappings().first()
    moment = now or utcnow()
    if row is None or row["revoked_at"] is not None:
        return None
    if row["expires_at"] is not None and row["expires_at"] <= moment:
        return None
    return int(row["user_id"])


def revoke_token(conn: Connection, username: str, name: str) -> int:
    """Revoke a user's tokens of that name; answers how many."""
    result = conn.execute(
        update(tokens)
        .where(
            tokens.c.user_id == user_id_of(conn, username),
            tokens.c.name == name,
            tokens.c.revoked_at.is_(None),
        )
        .values(revoked_at=utcnow())
    )
    return int(result.rowcount or 0)
