"""Web sign-in and sign-out: a password form with a CSRF token, and a server-side session.

The login form is protected by a double-submit token (a cookie and a hidden field
that must match). A successful login always opens a new session (no fixation);
the session cookie is HttpOnly, SameSite=Lax, and Secure when the request came
over https or the server is https-only (`runtime.api.https`).

Each attempt is counted before its password is checked (`runtime.identity.throttle`:
per user name and address, per address, and a slower guard per user name), so
parallel guesses cannot pass the limits. The password check costs the same Argon2
work for unknown user names as for known ones. The address is the peer's, or the
one a trusted proxy forwarded (`serve --forwarded-allow-ips`; uvicorn sets it).
"""

from __future__ import annotations

import secrets
from pathlib import Path

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import Engine, select

from runtime.api.auth import SESSION_COOKIE
from runtime.api.https import secure_cookies
from runtime.db import write
from runtime.identity import passwords, throttle
from runtime.identity.directory import load_actor
from runtime.identity.sessions import SESSION_HOURS, close_session, open_session, session_user
from runtime.schema.system import users
from runtime.web.security import secured
from runtime.web.session import local_path

LOGIN_CSRF_COOKIE = "formloom_login_csrf"
TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).resolve().parents[1] / "web" / "templates"),
    autoescape=select_autoescape(["html"]),
)
TEXT = {
    "en": {
        "title": "Sign in",
        "username": "User name",
        "password": "Password",
        "submit": "Sign in",
        "failed": "Wrong user name or password.",
        "throttled": "Too many failed attempts; try again later.",
        "csrf": "The form expired; please try again.",
    },
    "zh": {
        "title": "登录",
        "username": "用户名",
        "password": "密码",
        "submit": "登录",
        "failed": "用户名或密码错误。",
        "throttled": "失败次数过多，请稍后再试。",
        "csrf": "表单已过期，请重试。",
    },
}


def auth_router(engine: Engine) -> APIRouter:
    """`GET /login`, `POST /login` and `POST /logout` (not part of the JSON API)."""
    router = APIRouter(include_in_schema=False)

    def login_page(request: Request, next: str = "/") -> Response:
        return _page(request, next, None, 200)

    def login(
        request: Request,
        username: str = Form(""),
        password: str = Form(""),
        csrf_token: str = Form(""),
        next: str = Form("/"),
    ) -> Response:
        cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
        if not cookie or not secrets.compare_digest(cookie, csrf_token):
            return _page(request, next, "csrf", 403)
        address = request.client.host if request.client else "unknown"
        verdict = throttle.reserve(engine, username, address)
        if not verdict.allowed:
            refused = _page(request, next, "throttled", 429)
            refused.headers["Retry-After"] = str(verdict.retry_after)
            return refused
        with engine.connect() as conn:
            row = conn.execute(
                select(users.c.id, users.c.password_hash, users.c.active).where(users.c.username == username)
            ).first()
        # Outside any transaction, so the slow check holds no connection. An unknown or inactive
        # user is checked against a dummy hash: the answer takes as long as for a real user.
        stored = row.password_hash if row is not None and row.active else None
        matched = passwords.verify_password(stored, password)  # False without a stored hash
        if row is None or not matched:
            return _page(request, next, "failed", 401)  # the attempt stays counted, as a failure
        with write(engine) as conn:
            throttle.succeeded(conn, username, address)
            actor = load_actor(conn, row.id, "web")
            value, _ = open_session(conn, row.id)
        old = request.cookies.get(SESSION_COOKIE)
        if old:
            with write(engine) as conn:
                close_session(conn, old)
        response = RedirectResponse(local_path(next), status_code=303)
        response.set_cookie(
            SESSION_COOKIE,
            value,
            max_age=SESSION_HOURS * 3600,
            httponly=True,
            samesite="lax",
            secure=secure_cookies(request),
            path="/",
        )
        response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
        if actor is not None:
            response.set_cookie("formloom_language", actor.language, samesite="lax", path="/")
        return response

    def logout(request: Request, csrf_token: str = Form("")) -> Response:
        value = request.cookies.get(SESSION_COOKIE)
        if value:
            with write(engine) as conn:
                found = session_user(conn, value)
                given = csrf_token or request.headers.get("x-csrf-token", "")
                if found is not None and not secrets.compare_digest(found[1], given):
                    return Response("the form expired; reload the page", status_code=403)
                close_session(conn, value)
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    router.add_api_route("/login", login_page, methods=["GET"], response_class=HTMLResponse)
    router.add_api_route("/login", login, methods=["POST"])
    router.add_api_route("/logout", logout, methods=["POST"])
    return router


def _page(request: Request, next: str, error: str | None, status: int) -> Response:
    language = "en" if request.cookies.get("formloom_language") == "en" else "zh"
    text = TEXT[language]
    token = secrets.token_urlsafe(32)
    html = TEMPLATES.get_template("login.html").render(
        language=language,
        text=text,
        csrf_token=token,
        next=local_path(next),
        error=text[error] if error else None,
    )
    response = HTMLResponse(html, status_code=status)
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=secure_cookies(request),
        path="/login",
    )
    return secured(response)
