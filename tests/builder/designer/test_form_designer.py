"""The form designer's endpoints: model, save (draft files), preview, live expression checks, keys."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from runtime.boot import Runtime
from tests.builder.designer.pack import serve_designer, write_crm
from tests.support import WebClient, web_client


@pytest.fixture
def crm(db_url: str, tmp_path: Path) -> Runtime:
    return serve_designer(write_crm(tmp_path / "pack"), db_url, tmp_path)


def post(client: WebClient, path: str, body: Any) -> Any:
    return client.post(path, json=body, headers={"X-CSRF-Token": client.csrf})


def test_only_admins_reach_the_designer(crm: Runtime) -> None:
    rep = web_client(crm, "rita", ("rep",))
    for path in (
        "/designer",
        "/designer/crm/forms/lead",
        "/designer/crm/publish",
        "/designer/static/designer.js",
    ):
        assert rep.get(path).status_code == 403, path
    assert post(rep, "/designer/crm/forms/lead", {"form": {"form": "lead"}}).status_code == 403
    assert 'href="/designer"' not in rep.get("/").text
    admin = web_client(crm, "ada", ("admin",))
    assert admin.get("/designer").status_code == 200
    assert 'href="/designer"' in admin.get("/").text


def test_a_save_needs_the_csrf_token(crm: Runtime, tmp_path: Path) -> None:
    admin = web_client(crm, "ada", ("admin",))
    before = (tmp_path / "pack" / "forms" / "lead.yaml").read_text(encoding="utf-8")
    answer = admin.post("/designer/crm/forms/lead", json={"form": {"form": "lead", "label": {"en": "X"}}})
    assert answer.status_code == 403
    assert (tmp_path / "pack" / "forms" / "lead.yaml").read_text(encoding="utf-8") == before


def test_the_model_is_the_file_and_saving_writes_it_back(crm: Runtime, tmp_path: Path) -> None:
    admin = web_client(crm, "ada", ("admin",))
    model = admin.get("/designer/crm/forms/lead/model").json()
    assert [f["key"] for f in model["form"]["fields"]][:2] == ["company", "contact_name"]
    assert "company" in model["published_keys"] and "text" in model["field_types"]
    form = model["form"]
    form["fields"][1]["label"]["en"] = "Main contact"
    answer = post(admin, "/designer/crm/forms/lead", {"form": form}).json()
    assert {k: answer[k] for k in ("file", "problems", "plan")} == {
        "file": "lead.yaml",
        "problems": [],
        "plan": "/designer/crm/publish",
    }
    text = (tmp_path / "pack" / "forms" / "lead.yaml").read_text(encoding="utf-8")
    assert "label: {zh: 联系人, en: Main contact}" in text and "# the name on the business licence" in text


def test_an_invalid_draft_is_saved_with_its_problems_and_cannot_be_published(
    crm: Runtime, tmp_path: Path
) -> None:
    admin = web_client(crm, "ada", ("admin",))
    form = admin.get("/designer/crm/forms/lead/model").json()["form"]
    form["fields"].append({"key": "score", "type": "integer", "formula": "budget * "})
    answer = post(admin, "/designer/crm/forms/lead", {"form": form}).json()
    assert answer["problems"] and answer["problems"][0].startswith("forms/lead.yaml:")
    assert "budget * " in (tmp_path / "pack" / "forms" / "lead.yaml").read_text(encoding="utf-8"), (
        "kept as a draft"
    )
    plan = admin.get("/designer/crm/publish")
    assert "cannot be published" in plan.text and "data-publish" not in plan.text
    refused = admin.post_form("/designer/crm/publish", {})
    assert refused.status_code == 422
    assert crm.service.apps["crm"].forms["lead"].fields.get("score") is None


def test_the_preview_draws_the_draft_with_the_apps_own_form(crm: Runtime) -> None:
    admin = web_client(crm, "ada", ("admin",))
    form = admin.get("/designer/crm/forms/lead/model").json()["form"]
    form["fields"].insert(
        1, {"key": "industry", "type": "select", "label": {"en": "Industry"}, "options": ["it", "retail"]}
    )
    form["layout"][0]["fields"].insert(1, "industry")
    html = post(admin, "/designer/crm/forms/lead/preview", {"form": form}).text
    assert re.search(r'data-field="company".*data-field="industry".*data-field="contact_name"', html, re.S)
    assert '<option value="retail" >retail</option>' in html
    broken = post(admin, "/designer/crm/forms/lead/preview", {"form": {"form": "lead", "fields": []}}).text
    assert "No preview yet" in broken


@pytest.mark.parametrize(
    ("field", "kind", "text", "verdict"),
    [
        ("budget", "formula", "COALESCE(budget, 0) * 2", None),
        ("budget", "formula", "company", "gives a text value"),
        ("email", "visible_when", "budget > 100", None),
        ("email", "visible_when", "budget >", "column"),
        ("email", "required_when", "bugdet > 1", "bugdet"),
        ("budget", "default", "=10 * 2", None),
    ],
)
def test_expressions_are_checked_live_by_the_loaders_type_checker(
    crm: Runtime, field: str, kind: str, text: str, verdict: str | None
) -> None:
    admin = web_client(crm, "ada", ("admin",))
    form = admin.get("/designer/crm/forms/lead/model").json()["form"]
    answer = post(
        admin, "/designer/crm/check", {"form": form, "field": field, "kind": kind, "text": text}
    ).json()
    if verdict is None:
        assert answer["ok"] is True
    else:
        assert answer["ok"] is False
        assert verdict in answer["message"] or (verdict == "column" and answer["column"] >= 1)


def test_keys_for_new_fields_come_from_labels(crm: Runtime) -> None:
    admin = web_client(crm, "ada", ("admin",))
    assert post(admin, "/designer/crm/key", {"label": "所属行业", "taken": []}).json() == {
        "key": "suo_shu_hang_ye"
    }
    assert post(admin, "/designer/crm/key", {"label": "Company", "taken": ["company"]}).json() == {
        "key": "company_2"
    }


def test_a_new_form_gets_a_file_of_its_own(crm: Runtime, tmp_path: Path) -> None:
    admin = web_client(crm, "ada", ("admin",))
    answer = admin.post_form("/designer/crm/forms", {"label_zh": "拜访记录", "label_en": "Visit"})
    assert answer.headers["location"] == "/designer/crm/forms/visit"
    text = (tmp_path / "pack" / "forms" / "visit.yaml").read_text(encoding="utf-8")
    assert text.startswith("form: visit\nlabel: {zh: 拜访记录, en: Visit}\n")
    assert admin.get("/designer/crm/forms/missing").status_code == 404


def test_a_save_over_a_newer_hand_edit_is_refused_and_the_edit_stays(crm: Runtime, tmp_path: Path) -> None:
    admin = web_client(crm, "ada", ("admin",))
    model = admin.get("/designer/crm/forms/lead/model").json()
    path = tmp_path / "pack" / "forms" / "lead.yaml"
    path.write_text(path.read_text(encoding="utf-8") + "# a consultant was here\n", encoding="utf-8")
    model["form"]["label"]["en"] = "Prospect"
    answer = post(admin, "/designer/crm/forms/lead", {"form": model["form"], "revision": model["revision"]})
    assert answer.status_code == 409 and answer.json()["stale"] is True
    assert "changed since it was opened" in answer.json()["problems"][0]
    assert path.read_text(encoding="utf-8").endswith("# a consultant was here\n")
    fresh = admin.get("/designer/crm/forms/lead/model").json()
    fresh["form"]["label"]["en"] = "Prospect"
    saved = post(
        admin, "/designer/crm/forms/lead", {"form": fresh["form"], "revision": fresh["revision"]}
    ).json()
    assert saved["problems"] == [] and saved["revision"] != fresh["revision"]
    text = path.read_text(encoding="utf-8")
    assert "en: Prospect" in text and text.endswith("# a consultant was here\n"), "both changes kept"


def test_link_filters_and_fetches_are_checked_live(crm: Runtime) -> None:
    admin = web_client(crm, "ada", ("admin",))
    form = admin.get("/designer/crm/forms/lead/model").json()["form"]
    form["fields"].append({"key": "referrer", "type": "link", "to": "lead"})
    form["fields"].append({"key": "referred_budget", "type": "money"})

    def verdict(field: str, kind: str, text: str) -> Any:
        body = {"form": form, "field": field, "kind": kind, "text": text}
        return post(admin, "/designer/crm/check", body).json()

    assert verdict("referrer", "filter", "budget > record.budget and company != null")["ok"] is True
    wrong = verdict("referrer", "filter", "budget > record.bugdet")
    assert wrong["ok"] is False and "record being edited" in wrong["message"] and wrong["column"] == 10
    assert "boolean" in verdict("referrer", "filter", "budget")["message"]
    assert verdict("referred_budget", "fetch", "referrer.budget")["ok"] is True
    assert "text value" in verdict("referred_budget", "fetch", "referrer.company")["message"]


def test_a_link_filter_and_a_fetch_are_saved_to_the_file(crm: Runtime, tmp_path: Path) -> None:
    admin = web_client(crm, "ada", ("admin",))
    model = admin.get("/designer/crm/forms/lead/model").json()
    form = model["form"]
    form["fields"].append(
        {"key": "referrer", "type": "link", "to": "lead", "filter": "budget > 0 and id != record.id"}
    )
    form["fields"].append(
        {"key": "referred_budget", "type": "money", "fetch": "referrer.budget", "fetch_mode": "default"}
    )
    answer = post(admin, "/designer/crm/forms/lead", {"form": form, "revision": model["revision"]}).json()
    assert answer["problems"] == []
    text = (tmp_path / "pack" / "forms" / "lead.yaml").read_text(encoding="utf-8")
    assert "filter: budget > 0 and id != record.id" in text
    assert "fetch: referrer.budget" in text and "fetch_mode: default" in text
    again = admin.get("/designer/crm/forms/lead/model").json()["form"]["fields"]
    saved = {f["key"]: f for f in again}
    assert saved["referrer"]["filter"] == "budget > 0 and id != record.id"
    assert (saved["referred_budget"]["fetch"], saved["referred_budget"]["fetch_mode"]) == (
        "referrer.budget",
        "default",
    )
    form["fields"][-1]["fetch"] = "referrer.company"  # a text value for a money field
    wrong = post(admin, "/designer/crm/forms/lead", {"form": form, "revision": answer["revision"]}).json()
    assert [p for p in wrong["problems"] if "gives a text value" in p], wrong["problems"]
    assert wrong["problems"][0].startswith("forms/lead.yaml:")
