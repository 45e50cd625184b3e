"""Pages need a signed-in user; every POST needs the session's CSRF token."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from runtime.boot import Runtime
from runtime.identity.actor import SYSTEM
from tests.runtime.web.pack import deal_pack
from tests.support import serve, web_client


@pytest.fixture
def crm(db_url: str, tmp_path: Path) -> Runtime:
    runtime, _ = serve(deal_pack(tmp_path / "pack"), db_url, tmp_path / "files")
    return runtime


@pytest.mark.parametrize("path", ["/", "/app/crm/deal", "/app/crm/deal/new", "/tasks", "/notifications"])
def test_a_page_without_a_session_redirects_to_sign_in_and_back(crm: Runtime, path: str) -> None:
    answer = TestClient(crm.api).get(path + "?x=1", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login?next=" + (path + "?x=1").replace("/", "%2F").replace(
        "?", "%3F"
    ).replace("=", "%3D")


def test_an_htmx_request_without_a_session_moves_the_whole_page(crm: Runtime) -> None:
    answer = TestClient(crm.api).get("/app/crm/deal/_pick/account?q=a", headers={"HX-Request": "true"})
    assert answer.status_code == 401
    assert answer.headers["HX-Redirect"].startswith("/login?next=")


def test_a_post_without_the_csrf_token_changes_nothing(crm: Runtime) -> None:
    rep = web_client(crm, "rita", ("rep",))
    answer = rep.post("/app/crm/deal/new", data={"title": "Forged"}, follow_redirects=False)
    assert answer.status_code == 403
    assert "expired" in answer.text
    wrong = rep.post(
        "/app/crm/deal/new", data={"title": "Forged", "csrf_token": "guess"}, follow_redirects=False
    )
    assert wrong.status_code == 403
    assert crm.service.list_page("crm", "deal", [], SYSTEM)["items"] == []


def test_signing_out_ends_the_session(crm: Runtime) -> None:
    rep = web_client(crm, "rita", ("rep",))
    assert rep.post_form("/logout", {}).status_code == 303
    assert rep.get("/", follow_redirects=False).status_code == 303


def test_an_unknown_form_or_record_answers_a_page_not_json(crm: Runtime) -> None:
    rep = web_client(crm, "rita", ("rep",))
    for path in ("/app/crm/nothing", "/app/crm/deal/999"):
        answer = rep.get(path)
        assert answer.status_code == 404
        assert answer.headers["content-type"].startswith("text/html")
        assert "No such page or record" in answer.text
    assert rep.get("/api/v1/crm/deal/999").headers["content-type"].startswith("application/json")


def test_a_form_the_user_may_not_use_is_refused_and_left_out_of_the_navigation(crm: Runtime) -> None:
    nobody = web_client(crm, "nora", ())
    assert nobody.get("/app/crm/deal/new").status_code == 403
    assert 'href="/app/crm/deal"' not in nobody.get("/").text
    assert 'href="/app/crm/deal"' in web_client(crm, "rita", ("rep",)).get("/").text
