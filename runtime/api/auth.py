"""Who is calling: a bearer token, a session cookie (with its CSRF token), or nobody.

The actor found here is handed to the records service, which enforces every
permission. A caller with neither token nor session is anonymous: only what a
definition grants to the `public` role is open to them; everything else answers 401.
"""

from __future__ import annotations

import secrets

from fastapi import Request
from sqlalchemy import Engine

from runtime.identity.actor import ANONYMOUS, Actor
from runtime.identity.directory import actor_of_token, load_actor
from runtime.identity.sessions import session_user
from runtime.identity.tokens import digest
from runtime.records.errors import FieldProblem, RecordError, Unauthenticated
from runtime.schema.types import utcnow

SESSION_COOKIE = "formloom_session"
CSRF_HEADER = "x-csrf-token"
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}


class CsrfRejected(RecordError):
    """A cookie-authenticated write without the session's CSRF token (403)."""

    status = 403

    def __init__(self) -> None:
        super().__init__([FieldProblem(None, "csrf", "send the session's CSRF token in X-CSRF-Token")])


def authenticate(engine: Engine, request: Request) -> Actor:
    """The actor of a request; raises 401 for a bad token or an expired session."""
    header = request.headers.get("authorization", "")
    with engine.connect() as conn:
        if header:
            scheme, _, token = header.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise Unauthenticated("use Authorization: Bearer <token>")
            actor = actor_of_token(conn, digest(token.strip()), utcnow())
            if actor is None:
                raise Unauthenticated("the token is unknown, revoked or expired")
            return actor
        cookie = request.cookies.get(SESSION_COOKIE)
        if cookie:
            found = session_user(conn, cookie)
            actor = load_actor(conn, found[0], "web", csrf_token=found[1]) if found else None
            if actor is None:
                raise Unauthenticated("the session has ended; sign in again")
            if request.method in UNSAFE and not _same(request.headers.get(CSRF_HEADER), actor.csrf_token):
                raise CsrfRejected()
            return actor
    return ANONYMOUS


def require_user(actor: Actor) -> Actor:
    """Routes that are never public."""
    if actor.user_id is None and not actor.system:
        raise Unauthenticated()
    return actor


def _same(given: str | None, expected: str | None) -> bool:
    return bool(given and expected and secrets.compare_digest(given, expected))
