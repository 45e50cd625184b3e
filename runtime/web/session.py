"""Who is using the web pages: the session cookie, and the CSRF token every POST must carry.

Pages need a signed-in user; without one a page answers a redirect to the sign-in
form (htmx requests get `HX-Redirect`, so the whole page moves, not a fragment).
A POST is accepted only with the session's CSRF token, sent as the `csrf_token`
form field or the `X-CSRF-Token` header (htmx adds the header from the page).
"""

from __future__ import annotations

import secrets
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import Engine
from starlette.datastructures import FormData

from runtime.api.auth import CSRF_HEADER, SESSION_COOKIE
from runtime.identity.actor import Actor
from runtime.identity.directory import load_actor
from runtime.identity.sessions import session_user


class SignInRequired(Exception):
    """The page needs a signed-in user; `next` is where to come back after signing in."""

    def __init__(self, next_url: str) -> None:
        super().__init__(next_url)
        self.next_url = next_url


class FormExpired(Exception):
    """A POST without the session's CSRF token (an old page, or another site's form)."""


def page_actor(engine: Engine, request: Request) -> Actor:
    """The signed-in user of a web request; raises SignInRequired when there is none."""
    cookie = request.cookies.get(SESSION_COOKIE)
    actor = None
    if cookie:
        with engine.connect() as conn:
            found = session_user(conn, cookie)
            actor = load_actor(conn, found[0], "web", csrf_token=found[1]) if found else None
    if actor is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise SignInRequired(target)
    return actor


async def posted_form(request: Request) -> FormData:
    """The POSTed form, read once (a dependency: routes themselves stay synchronous).

    Its CSRF token is compared with the session's own in `check_csrf`.
    """
    return await request.form()


def check_csrf(request: Request, form: FormData, actor: Actor) -> None:
    """Raise FormExpired unless the request carries `actor`'s CSRF token."""
    given = request.headers.get(CSRF_HEADER) or str(form.get("csrf_token") or "")
    expected = actor.csrf_token or ""
    if not (given and expected and secrets.compare_digest(given, expected)):
        raise FormExpired()


def local_path(target: str) -> str:
    """`target` when it is a path on this site, else `/`: a form never redirects elsewhere."""
    return target if target.startswith("/") and not target.startswith("//") else "/"


def to_sign_in(request: Request, error: SignInRequired) -> Response:
    """The answer to a page that needs a user: a redirect to /login (HX-Redirect for htmx)."""
    target = f"/login?next={quote(error.next_url, safe='')}"
    if request.headers.get("hx-request"):
        return Response(status_code=401, headers={"HX-Redirect": target})
    return RedirectResponse(target, status_code=303)
