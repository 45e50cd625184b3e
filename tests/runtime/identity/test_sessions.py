"""Sign-in, sessions, CSRF, throttling, API tokens, and no route open without a sign-in."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from runtime.boot import start
from runtime.db import write
from runtime.identity.directory import create_user
from runtime.identity.tokens import create_token, revoke_token
from runtime.schema.system import tokens
from tests.support import SALES

PASSWORD = "correct horse"


@pytest.fixture
def sales(db_url: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    runtime = start([SALES], db_url, tmp_path / "files")
    with write(runtime.engine) as conn:
        create_user(conn, "li", PASSWORD, roles=("sales_rep",))
    yield runtime
    runtime.engine.dispose()


def sign_in(client: TestClient, username: str = "li", password: str = PASSWORD) -> int:
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token is not None
    answer = client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": token.group(1)},
        follow_redirects=False,
    )
    return answer.status_code


def test_a_password_sign_in_opens_a_session_cookie(sales) -> None:  # type: ignore[no-untyped-def]
    client = TestClient(sales.api, base_url="https://testserver")
    assert sign_in(client) == 303
    cookie = next(c for c in client.cookies.jar if c.name == "formloom_session")
    assert cookie.secure and cookie.has_nonstandard_attr("HttpOnly")
    assert client.get("/api/v1/sales/lead").status_code == 200
    assert client.post("/logout").status_code == 403  # a sign-out form carries the CSRF token too
    from runtime.identity.sessions import session_user

    with sales.engine.connect() as conn:
        found = session_user(conn, client.cookies["formloom_session"])
    assert found is not None
    client.post("/logout", data={"csrf_token": found[1]})
    assert client.get("/api/v1/sales/lead").status_code == 401


def test_login_without_the_forms_csrf_token_is_refused(sales) -> None:  # type: ignore[no-untyped-def]
    client = TestClient(sales.api)
    client.get("/login")
    answer = client.post("/login", data={"username": "li", "password": PASSWORD, "csrf_token": "forged"})
    assert answer.status_code == 403
    assert client.get("/api/v1/sales/lead").status_code == 401


def test_cookie_writes_need_the_sessions_csrf_header(sales) -> None:  # type: ignore[no-untyped-def]
    client = TestClient(sales.api)
    assert sign_in(client) == 303
    lead = {"company": "X", "contact_name": "Y", "source": "seo", "email": "x@y.cn"}
    refused = client.post("/api/v1/sales/lead", json=lead)
    assert refused.status_code == 403 and refused.json()["errors"][0]["code"] == "csrf"
    from runtime.identity.sessions import session_user

    with sales.engine.connect() as conn:
        found = session_user(conn, client.cookies["formloom_session"])
    assert found is not None
    accepted = client.post("/api/v1/sales/lead", json=lead, headers={"X-CSRF-Token": found[1]})
    assert accepted.status_code == 201


def test_a_sign_in_never_keeps_a_session_id_it_was_given(sales) -> None:  # type: ignore[no-untyped-def]
    client = TestClient(sales.api)
    client.cookies.set("formloom_session", "planted-by-an-attacker")
    assert sign_in(client) == 303
    issued = [c.value for c in client.cookies.jar if c.name == "formloom_session" and c.domain]
    assert issued and "planted-by-an-attacker" not in issued


def test_repeated_failures_are_throttled(sales) -> None:  # type: ignore[no-untyped-def]
    client = TestClient(sales.api)
    codes = [sign_in(client, password="wrong") for _ in range(5)]
    assert codes == [401] * 5
    assert sign_in(client) == 429  # even the right password waits now


def test_tokens_expire_and_can_be_revoked(sales) -> None:  # type: ignore[no-untyped-def]
    with write(sales.engine) as conn:
        live, old = create_token(conn, "li", "live"), create_token(conn, "li", "old", days=1)
        conn.execute(
            update(tokens)
            .where(tokens.c.name == "old")
            .values(expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1))
        )
    client = TestClient(sales.api)
    assert client.get("/api/v1/sales/lead", headers={"Authorization": f"Bearer {live}"}).status_code == 200
    assert client.get("/api/v1/sales/lead", headers={"Authorization": f"Bearer {old}"}).status_code == 401
    assert client.get("/api/v1/sales/lead", headers={"Authorization": "Bearer nonsense"}).status_code == 401
    assert client.get("/api/v1/sales/lead", headers={"Authorization": "Basic abc"}).status_code == 401
    with write(sales.engine) as conn:
        assert revoke_token(conn, "li", "live") == 1
    assert client.get("/api/v1/sales/lead", headers={"Authorization": f"Bearer {live}"}).status_code == 401


def test_no_route_of_the_spec_answers_without_a_sign_in(sales) -> None:  # type: ignore[no-untyped-def]
    client = TestClient(sales.api)
    spec = client.get("/openapi.json").json()
    checked = 0
    public = []
    for path, operations in spec["paths"].items():
        concrete = re.sub(r"\{[^}]+\}", "1", path)
        for method, operation in operations.items():
            if operation.get("security") == []:  # says so in the spec: a public intake, and nothing else
                public.append((method, path))
                continue
            body = {} if method in ("post", "patch") else None
            answer = client.request(method.upper(), concrete, json=body)
            assert answer.status_code == 401, (method, path, answer.status_code)
            checked += 1
    assert checked > 40
    assert public == [("post", "/api/v1/public/sales/web_lead")]  # the sales pack's web-to-lead form
