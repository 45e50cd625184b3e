"""Publishing from the web: the plan first (row counts, refusals), then the recorded publish."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from runtime.boot import Runtime
from runtime.identity.actor import SYSTEM
from tests.builder.designer.pack import serve_designer, write_crm
from tests.support import WebClient, web_client


@pytest.fixture
def crm(db_url: str, tmp_path: Path) -> Runtime:
    return serve_designer(write_crm(tmp_path / "pack"), db_url, tmp_path)


def save(client: WebClient, change: Any) -> dict[str, Any]:
    form = client.get("/designer/crm/forms/lead/model").json()["form"]
    change(form)
    answer = client.post(
        "/designer/crm/forms/lead", json={"form": form}, headers={"X-CSRF-Token": client.csrf}
    )
    return dict(answer.json())


def publish(client: WebClient) -> Any:
    page = client.get("/designer/crm/publish")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token is not None
    return client.post("/designer/crm/publish", data={"csrf_token": token.group(1)}, follow_redirects=False)


def test_removing_a_field_that_holds_data_shows_the_retire_step_and_loses_nothing(crm: Runtime) -> None:
    for n in range(3):
        crm.service.create("crm", "lead", {"company": f"Co {n}", "email": f"c{n}@example.com"}, SYSTEM)
    crm.service.create("crm", "lead", {"company": "No mail"}, SYSTEM)
    admin = web_client(crm, "ada", ("admin",))

    def drop_email(form: dict[str, Any]) -> None:
        form["fields"] = [f for f in form["fields"] if f["key"] != "email"]
        form["layout"][0]["fields"].remove("email")

    assert save(admin, drop_email)["problems"] == []
    plan = admin.get("/designer/crm/publish")
    assert "retire column email: its data (3 row(s) with a value) is kept" in plan.text
    assert "data-publish" in plan.text
    assert publish(admin).status_code == 303
    assert "email" not in crm.service.get("crm", "lead", 1, SYSTEM), "hidden from the API"
    with crm.engine.connect() as conn:
        kept = (
            conn.execute(text("SELECT email FROM crm__lead WHERE email IS NOT NULL ORDER BY id"))
            .scalars()
            .all()
        )
    assert kept == ["c0@example.com", "c1@example.com", "c2@example.com"]


def test_a_refused_step_explains_itself_and_the_publish_changes_nothing(crm: Runtime) -> None:
    crm.service.create("crm", "lead", {"company": "No mail"}, SYSTEM)
    admin = web_client(crm, "ada", ("admin",))

    def require_email(form: dict[str, Any]) -> None:
        next(f for f in form["fields"] if f["key"] == "email")["required"] = True

    save(admin, require_email)
    plan = admin.get("/designer/crm/publish")
    assert "This step is refused:" in plan.text
    assert "1 row(s) have no value (ids 1)" in plan.text
    assert "email cannot become required while 1 row(s) have no value; give it a default" in plan.text
    assert "data-publish" not in plan.text
    answer = publish(admin)
    assert answer.status_code == 409 and "nothing changed" in answer.text
    assert crm.service.apps["crm"].forms["lead"].fields["email"].spec.required is False


def test_every_publish_is_recorded_with_its_author_and_steps(crm: Runtime) -> None:
    admin = web_client(crm, "ada", ("admin",))
    save(admin, lambda form: form["fields"].append({"key": "website", "type": "url"}))
    answer = publish(admin)
    assert answer.headers["location"].startswith("/designer/crm/history?published=")
    history = admin.get(answer.headers["location"]).text
    first = history.index('id="version-2"')
    assert "ada" in history[first:] and "add column website" in history[first:]
    assert "website" in crm.service.apps["crm"].forms["lead"].fields, "the server follows the publish at once"
    with crm.engine.connect() as conn:
        author = conn.execute(
            text("SELECT author FROM formloom_definition_versions ORDER BY id DESC")
        ).first()
    assert author is not None and author[0] == "ada"
