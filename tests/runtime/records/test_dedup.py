"""Duplicate detection on normalised keys, the duplicates endpoint, and merging."""

from __future__ import annotations

from pathlib import Path

import pytest

from runtime.records.dedup import normalise_text
from tests.support import count_queries, serve, write_pack

ACCOUNT = """\
form: account
label: Account
title_field: name
fields:
  - {key: name, type: text, required: true}
duplicates:
  - [name]
"""
NOTE = """\
form: note
label: Note
child: true
fields:
  - {key: text, type: text}
"""
LEAD = """\
form: lead
label: Lead
title_field: contact_name
fields:
  - {key: company, type: text}
  - {key: contact_name, type: text}
  - {key: email, type: email}
  - {key: crm_id, type: text, unique: true}
  - {key: phone, type: phone}
  - {key: account, type: link, to: account, on_delete: set_null}
  - {key: notes, type: table, form: note}
  - {key: note_count, type: integer, formula: "COUNT(notes)"}
duplicates:
  - [email]
  - [phone]
  - [company, contact_name]
"""
TASK = """\
form: task
label: Task
fields:
  - {key: title, type: text}
  - {key: lead, type: link, to: lead}
"""


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("杭州云帆科技有限公司", "杭州云帆科技"),
        ("杭州 云帆科技股份有限公司", "杭州云帆科技"),
        ("Acme Co., Ltd.", "ACME"),
        ("Acme, Inc.", "acme"),
        ("Müller GmbH", "MÜLLER"),
        ("ＡＣＭＥ　Ｌｔｄ", "acme"),
    ],
)
def test_company_names_compare_without_case_spacing_or_legal_form(one: str, other: str) -> None:
    assert normalise_text(one) == normalise_text(other)


def test_a_word_that_merely_ends_like_a_legal_form_is_kept() -> None:
    assert normalise_text("Zinc") != normalise_text("Z")


@pytest.fixture
def client(db_url: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    pack = write_pack(tmp_path / "p", {"account": ACCOUNT, "note": NOTE, "lead": LEAD, "task": TASK})
    runtime, test_client = serve(pack, db_url, tmp_path / "f")
    yield runtime, test_client
    runtime.engine.dispose()


def test_a_matching_record_answers_409_with_candidates(client) -> None:  # type: ignore[no-untyped-def]
    _, api = client
    first = api.post(
        "/api/v1/t/lead",
        json={
            "company": "云帆科技有限公司",
            "contact_name": "王芳",
            "email": "wang@yunfan.cn",
            "phone": "13800138000",
        },
    ).json()
    same_email = api.post("/api/v1/t/lead", json={"email": " WANG@yunfan.cn"})
    assert same_email.status_code == 409
    problem = same_email.json()["errors"][0]
    assert (problem["code"], problem["candidates"]) == ("duplicate", [first["id"]])
    same_phone = api.post("/api/v1/t/lead", json={"phone": "+86 138-0013-8000"})
    assert same_phone.json()["errors"][0]["candidates"] == [first["id"]]
    same_pair = api.post("/api/v1/t/lead", json={"company": "云帆科技", "contact_name": "王芳"})
    assert same_pair.status_code == 409
    other_person = api.post("/api/v1/t/lead", json={"company": "云帆科技", "contact_name": "李雷"})
    assert other_person.status_code == 201
    allowed = api.post("/api/v1/t/lead?allow_duplicate=true", json={"phone": "13800138000"})
    assert allowed.status_code == 201
    listed = api.get(f"/api/v1/t/lead/{first['id']}/duplicates").json()["items"]
    assert [r["id"] for r in listed] == [allowed.json()["id"]]


def test_duplicates_within_one_bulk_request_are_caught(client) -> None:  # type: ignore[no-untyped-def]
    _, api = client
    response = api.post("/api/v1/t/account/bulk", json=[{"name": "Acme Ltd"}, {"name": "ACME"}])
    assert response.status_code == 409
    assert response.json()["errors"][0]["field"] == "[1]"
    assert api.get("/api/v1/t/account").json()["items"] == []


def test_matching_uses_the_index_not_a_scan(client) -> None:  # type: ignore[no-untyped-def]
    runtime, api = client
    api.post("/api/v1/t/account/bulk", json=[{"name": f"Company {i}"} for i in range(50)])
    with count_queries(runtime.engine) as statements:
        assert api.post("/api/v1/t/account", json={"name": "Company 7 Ltd."}).status_code == 409
    lookups = [s for s in statements if "_dup_0 =" in s]
    assert len(lookups) == 1


def test_merge_moves_links_and_child_rows_and_keeps_the_merged_record(client) -> None:  # type: ignore[no-untyped-def]
    _, api = client
    keep = api.post(
        "/api/v1/t/lead",
        json={"company": "A", "contact_name": "Wang", "email": "w@a.cn", "notes": [{"text": "first call"}]},
    ).json()
    dup = api.post(
        "/api/v1/t/lead?allow_duplicate=true",
        json={
            "company": "A Ltd",
            "contact_name": "wang",
            "email": "other@a.cn",
            "phone": "13900139000",
            "crm_id": "X-1",
            "notes": [{"text": "met at fair"}, {"text": "sent brochure"}],
        },
    ).json()
    task = api.post("/api/v1/t/task", json={"title": "call back", "lead": dup["id"]}).json()
    merged = api.post(
        f"/api/v1/t/lead/{keep['id']}/merge",
        json={"merge": [dup["id"]], "values": {"phone": dup["id"], "email": dup["id"], "crm_id": dup["id"]}},
    )
    assert merged.status_code == 200, merged.text
    survivor = merged.json()
    assert (survivor["phone"], survivor["email"]) == ("+8613900139000", "other@a.cn")
    assert survivor["crm_id"] == "X-1"
    assert [n["text"] for n in survivor["notes"]] == ["first call", "met at fair", "sent brochure"]
    assert survivor["note_count"] == 3
    assert api.get(f"/api/v1/t/task/{task['id']}").json()["lead"]["id"] == keep["id"]
    old = api.get(f"/api/v1/t/lead/{dup['id']}").json()
    assert old["merged_into"] == {"id": keep["id"], "display": "Wang"}
    assert (old["phone"], old["crm_id"]) == ("+8613900139000", None)  # a unique value moves
    assert [r["id"] for r in api.get("/api/v1/t/lead").json()["items"]] == [keep["id"]]
    merged_list = api.get("/api/v1/t/lead?merged_into__isnull=false").json()["items"]
    assert [r["id"] for r in merged_list] == [dup["id"]]
    assert api.get(f"/api/v1/t/lead/{keep['id']}/duplicates").json()["items"] == []


@pytest.mark.parametrize(
    "body",
    [
        {"merge": []},
        {"merge": "2"},
        {"merge": [1]},
        {"merge": [2], "values": {"nosuch": 2}},
        {"merge": [2], "values": {"email": 9}},
        {"merge": [2], "extra": 1},
        [1],
    ],
)
def test_bad_merge_requests_answer_422(client, body: object) -> None:  # type: ignore[no-untyped-def]
    _, api = client
    api.post("/api/v1/t/lead", json={"email": "a@a.cn"})
    api.post("/api/v1/t/lead", json={"email": "b@a.cn"})
    assert api.post("/api/v1/t/lead/1/merge", json=body).status_code == 422
    assert api.post("/api/v1/t/lead/1/merge", json={"merge": [99]}).status_code == 404
