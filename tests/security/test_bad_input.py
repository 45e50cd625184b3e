"""Text no database can store (NUL, lone surrogates) is refused with 4xx where it enters, never a 500."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from runtime.boot import Runtime, start
from runtime.records.text import BAD_TEXT_MESSAGE
from runtime.records.values import ValueProblem, converter_for
from runtime.seed import demo_file, seed_demo, seed_users
from tests.builder.designer.pack import serve_designer, write_crm
from tests.support import SALES, admin_token, web_client

JSON = {"content-type": "application/json"}
ACCOUNT = {"name": "杭州云帆科技", "industry": "finance"}


@pytest.fixture
def sales(db_url: str, tmp_path: Path) -> Iterator[tuple[Runtime, TestClient]]:
    runtime = start([SALES], db_url, tmp_path / "files")
    people, data = demo_file(SALES, "users.yaml"), demo_file(SALES)
    assert people is not None and data is not None
    seed_users(runtime.service, people)
    seed_demo(runtime.service, "sales", data)
    client = TestClient(
        runtime.api,
        headers={"Authorization": f"Bearer {admin_token(runtime.engine)}"},
        raise_server_exceptions=False,
    )
    yield runtime, client
    runtime.engine.dispose()


def refused(answer: Any, field: str | None, status: int = 422) -> None:
    assert answer.status_code == status, answer.text
    problems = answer.json()["errors"]
    assert problems[0]["field"] == field, problems


def raw_json(**values: str) -> bytes:
    """A JSON object whose values are written as they are (escapes included)."""
    return ("{" + ", ".join(f'"{k}": {v}' for k, v in values.items()) + "}").encode()


def test_lone_surrogates_and_nul_in_json_bodies_answer_422_with_their_path(
    sales: tuple[Runtime, TestClient],
) -> None:
    _, client = sales
    post = "/api/v1/sales/account"
    refused(
        client.post(post, content=raw_json(name='"\\ud800x"', industry='"finance"'), headers=JSON), "name"
    )
    refused(
        client.post(post, content=raw_json(name='"a\\u0000"', industry='"finance"'), headers=JSON), "name"
    )
    refused(client.post(post, content=b'{"\\udfff": 1}', headers=JSON), "\\udfff")
    nested = b'[{"subject": "q"}, {"lines": [{"description": "x\\uDBFF"}]}]'
    refused(client.post("/api/v1/sales/quote/bulk", content=nested, headers=JSON), "[1].lines[0].description")
    refused(client.patch("/api/v1/sales/account/1", content=b'{"notes": "\\u0000"}', headers=JSON), "notes")
    not_utf8 = client.post(post, content=b'{"name": "\xed\xa0\x80"}', headers=JSON)
    assert not_utf8.status_code == 422 and not_utf8.json()["errors"][0]["code"] == "json_invalid"
    # what is not a lone surrogate is text like any other
    pair = client.post(
        post, content=raw_json(name='"\\ud83d\\ude00 云帆"', industry='"finance"'), headers=JSON
    )
    assert pair.status_code == 201 and pair.json()["name"] == "😀 云帆"
    escaped = client.post(
        post, content=raw_json(name='"\\\\u0000 \\\\ud800"', industry='"finance"'), headers=JSON
    )
    assert escaped.status_code == 201 and escaped.json()["name"] == "\\u0000 \\ud800"
    assert client.get("/api/v1/sales/account", params={"name": "😀 云帆"}).json()["items"]


def test_comments_of_transitions_and_tasks_refuse_nul_and_surrogates(
    sales: tuple[Runtime, TestClient],
) -> None:
    runtime, client = sales
    submit = "/api/v1/sales/contract/1/transitions/submit"
    for comment in ('"ok \\u0000"', '"\\ud800"'):
        refused(client.post(submit, content=raw_json(comment=comment), headers=JSON), "comment")
    assert client.get("/api/v1/sales/contract/1").json()["status"] == "draft"
    assert client.post(submit, json={"comment": "ready"}).status_code == 200
    manager = TestClient(runtime.api, raise_server_exceptions=False)
    manager.headers["Authorization"] = f"Bearer {admin_token(runtime.engine, 'qian.manager')}"
    task = manager.get("/api/v1/tasks").json()["items"][0]["id"]
    for verb in ("approve", "reject"):
        answer = manager.post(
            f"/api/v1/tasks/{task}/{verb}", content=raw_json(comment='"\\u0000"'), headers=JSON
        )
        refused(answer, "comment")
    assert manager.post(f"/api/v1/tasks/{task}/approve", json={"comment": "好"}).status_code == 200


def test_nul_in_query_strings_headers_cookies_and_paths_is_refused(sales: tuple[Runtime, TestClient]) -> None:
    _, client = sales
    for path, field in (
        ("/api/v1/sales/account?name=a%00b", "query.name"),
        ("/api/v1/sales/account?where=name%20%3D%3D%20%27%00%27", "query.where"),
        ("/api/v1/sales/account?sort=name%00", "query.sort"),
        ("/api/v1/sales/account?a%00=1", "query.a\\u0000"),
        ("/api/v1/tasks?status=open%00", "query.status"),
        ("/api/v1/notifications?unread=%00", "query.unread"),
        ("/app/sales/account?q=%00", "query.q"),
    ):
        refused(client.get(path), field)
    refused(
        client.patch("/api/v1/sales/account/1", json={}, headers={"If-Match": '"1\x00"'}), "header.if-match"
    )
    refused(
        client.get("/api/v1/apps", headers={"Cookie": 'formloom_session="\\000x"'}), "cookie.formloom_session"
    )
    refused(client.get("/api/v1/sales/contract/1/transitions/sub%00mit"), None, 404)
    assert client.get("/api/v1/sales/account?name=%ED%A0%80").status_code == 200  # decoded as U+FFFD


def test_nul_in_form_posts_is_refused(sales: tuple[Runtime, TestClient]) -> None:
    runtime, _ = sales
    form = {"content-type": "application/x-www-form-urlencoded"}
    anonymous = TestClient(runtime.api, raise_server_exceptions=False)
    refused(anonymous.post("/login", content=b"username=admin%00&password=x", headers=form), "username")
    browser = web_client(runtime, "ada", ("admin",))
    saved = browser.post(
        "/app/sales/account/views",
        content=f"csrf_token={browser.csrf}&name=mine%00&query=".encode(),
        headers=form,
    )
    refused(saved, "name")


def test_the_records_service_refuses_bad_text_whatever_the_channel(sales: tuple[Runtime, TestClient]) -> None:
    runtime, _ = sales
    spec = runtime.service.apps["sales"].forms["account"].fields["name"].spec
    convert = converter_for(runtime.service.apps["sales"].app, spec)
    for text in ("a\x00", "\ud800", "x\udc00y"):
        with pytest.raises(ValueProblem, match="NUL"):
            convert(text)
    assert convert("😀") == "😀"
    with pytest.raises(ValueProblem) as caught:
        convert("\udbff")
    assert str(caught.value) == BAD_TEXT_MESSAGE


def test_an_upload_name_keeps_only_what_the_database_can_store(sales: tuple[Runtime, TestClient]) -> None:
    _, client = sales
    answer = client.post("/api/v1/files", files={"file": ("re\x00port.txt", b"hello", "text/plain")})
    assert answer.status_code == 201, answer.text
    assert "\x00" not in answer.json()["name"]


def test_a_designer_preview_with_unknown_fields_answers_422_with_the_problem(
    db_url: str, tmp_path: Path
) -> None:
    runtime = serve_designer(write_crm(tmp_path / "pack"), db_url, tmp_path)
    admin = web_client(runtime, "ada", ("admin",))
    model = admin.get("/designer/crm/forms/lead/model").json()["form"]
    broken: list[dict[str, Any]] = []
    for change in (
        {"title_field": "nope"},
        {"layout": [{"section": {"en": "S"}, "fields": ["company", "nope"]}]},
        {"fields": [*model["fields"], {"key": "x", "type": "integer", "formula": "nope + 1"}]},
        {"fields": [*model["fields"], {"key": "x", "type": "text", "visible_when": "nope > 1"}]},
        {"fields": [*model["fields"], {"key": "x", "type": "table", "form": "nope"}]},
        {"fields": [*model["fields"], {"key": "x", "type": "link", "to": "nope"}]},
        {"rules": [{"check": "nope > 1", "message": "x"}]},
    ):
        broken.append({**json.loads(json.dumps(model)), **change})
    for form in broken:
        answer = admin.post(
            "/designer/crm/forms/lead/preview", json={"form": form}, headers={"X-CSRF-Token": admin.csrf}
        )
        assert answer.status_code == 422, (form, answer.text[:300])
        assert "No preview yet" in answer.text and "nope" in answer.text
    runtime.engine.dispose()


def test_values_at_the_edges_of_their_columns_answer_422(sales: tuple[Runtime, TestClient]) -> None:
    _, client = sales
    # `version` is a 32-bit column: PostgreSQL refused to compare it with 2^40 (a 500)
    refused(client.get("/api/v1/sales/account", params={"version": str(2**40)}), "query.version")
    refused(client.get("/api/v1/sales/account", params={"version__in": f"1,{2**31}"}), "query.version__in")
    assert client.get("/api/v1/sales/account", params={"version": str(2**31 - 1)}).status_code == 200
    # a moment no time zone can show broke exports in the app's zone (+08:00)
    opportunity = client.get("/api/v1/sales/opportunity").json()["items"][0]["id"]
    demo = {"title": "X", "opportunity": opportunity}
    for moment in ("9999-12-31T23:30:00Z", "0001-01-01T00:00:00+05:00"):
        answer = client.post("/api/v1/sales/presentation", json={**demo, "scheduled_at": moment})
        refused(answer, "scheduled_at")
    refused(
        client.get("/api/v1/sales/lead", params={"created_at": "0001-01-01T00:00:00+05:00"}),
        "query.created_at",
    )
    made = client.post("/api/v1/sales/presentation", json={**demo, "scheduled_at": "9999-12-30T23:59:59Z"})
    assert made.status_code == 201, made.text
    for kind in ("csv", "xlsx"):
        assert client.get(f"/api/v1/sales/presentation/export.{kind}").status_code == 200
