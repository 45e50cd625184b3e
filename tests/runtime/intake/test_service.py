"""Public intakes (runtime/intake/service.py): no sign-in, only the listed fields, honeypot, rate,
page token, duplicates answered like new records, whose permissions apply. Both databases."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from runtime.db import write
from runtime.identity.directory import create_user
from tests.runtime.intake.pack import Site, serve_site

URL = "/api/v1/public/t/{}"
WANG = {"company": "杭州云帆", "email": "Wang.Fang@Yunfan.cn", "phone": "138 0013 8000"}


@pytest.fixture
def site(db_url: str, tmp_path: Path) -> Iterator[Site]:
    site = serve_site(db_url, tmp_path)
    yield site
    site.runtime.engine.dispose()


def test_a_visitor_submits_without_signing_in(site: Site) -> None:
    answer = site.visitor.post(URL.format("contact"), json={**WANG, "topics": ["crm"], "wants_demo": True})
    assert answer.status_code == 202, answer.text
    assert answer.json() == {"status": "received", "message": "谢谢！"}
    english = site.visitor.post(
        URL.format("contact"), json={"company": "B", "email": "b@b.cn"}, headers={"Accept-Language": "en-GB"}
    )
    assert english.json()["message"] == "Thank you!"
    first = site.leads()[0]
    assert (first["email"], first["phone"], first["source"], first["topics"]) == (
        "wang.fang@yunfan.cn",
        "+8613800138000",
        "web",  # the intake's default
        ["crm"],
    )
    assert first["created_by"] is None and first["wants_demo"] is True
    assert set(site.channels()) == {"public"}  # the history says where it came from


def test_a_visitor_may_choose_a_listed_field_that_has_a_default(site: Site) -> None:
    site.visitor.post(URL.format("contact"), json={**WANG, "source": "sem", "campaign": "spring"})
    assert (site.leads()[0]["source"], site.leads()[0]["campaign"]) == ("sem", "spring")


def test_only_the_listed_fields_are_taken(site: Site) -> None:
    answer = site.visitor.post(URL.format("contact"), json={**WANG, "score": 100, "account": 1, "id": 5})
    assert answer.status_code == 422
    problems = {(p["field"], p["code"]) for p in answer.json()["errors"]}
    assert problems == {("score", "unknown_field"), ("account", "unknown_field"), ("id", "unknown_field")}
    assert site.visitor.post(URL.format("contact"), json=["not", "an", "object"]).status_code == 422
    assert site.leads() == []


def test_bad_values_answer_422_with_the_field(site: Site) -> None:
    answer = site.visitor.post(URL.format("contact"), json={"company": "X", "email": "not-an-email"})
    assert answer.status_code == 422
    assert [p["field"] for p in answer.json()["errors"]] == ["email"]
    neither = site.visitor.post(URL.format("contact"), json={"company": "X"})
    assert neither.status_code == 422
    assert {p["code"] for p in neither.json()["errors"]} == {"rule"}  # the form's own rule
    missing = site.visitor.post(URL.format("contact"), json={"email": "x@y.cn"})
    assert [(p["field"], p["code"]) for p in missing.json()["errors"]] == [("company", "required")]
    assert site.leads() == []


def test_a_filled_honeypot_stores_nothing_and_answers_as_a_success(site: Site) -> None:
    real = site.visitor.post(URL.format("contact"), json=WANG)
    trapped = site.visitor.post(
        URL.format("contact"), json={"company": "Bot", "email": "bot@spam.cn", "homepage": "http://spam"}
    )
    assert (trapped.status_code, trapped.json()) == (real.status_code, real.json())
    assert [lead["company"] for lead in site.leads()] == ["杭州云帆"]


def test_the_rate_counts_per_address_and_answers_429_with_retry_after(site: Site) -> None:
    codes = [
        site.visitor.post(URL.format("contact"), json={"company": f"C{i}", "email": f"c{i}@c.cn"}).status_code
        for i in range(3)
    ]
    refused = site.visitor.post(URL.format("contact"), json={"company": "C3", "email": "c3@c.cn"})
    assert codes == [202] * 3 and refused.status_code == 429
    assert refused.json()["errors"][0]["code"] == "rate_limited"
    assert 0 < int(refused.headers["Retry-After"]) <= 61
    other = site.client("203.0.113.9").post(URL.format("contact"), json={"company": "D", "email": "d@d.cn"})
    assert other.status_code == 202  # another address has its own count
    assert len(site.leads()) == 4
    site.advance(minutes=2)  # both windows over
    again = site.visitor.post(URL.format("contact"), json={"company": "E", "email": "e@e.cn"})
    assert again.status_code == 202


def test_bad_requests_count_too(site: Site) -> None:
    for _ in range(3):
        assert site.visitor.post(URL.format("contact"), json={"nope": 1}).status_code == 422
    assert site.visitor.post(URL.format("contact"), json=WANG).status_code == 429


@pytest.mark.parametrize("intake", ["keeper", "merger", "dropper"])
def test_a_duplicate_gets_the_same_answer_as_a_new_lead(site: Site, intake: str) -> None:
    first = site.visitor.post(URL.format(intake), json={"company": "云帆", "email": "wf@yunfan.cn"})
    again = site.visitor.post(
        URL.format(intake), json={"company": "云帆科技", "email": "WF@yunfan.cn", "phone": "13800138000"}
    )
    assert (again.status_code, again.json(), again.headers.get("content-length")) == (
        first.status_code,
        first.json(),
        first.headers.get("content-length"),
    )
    leads = site.leads()
    if intake == "keeper":  # stored, and flagged for someone to merge
        assert [(x["company"], x["possible_duplicate"]) for x in leads] == [
            ("云帆", False),
            ("云帆科技", True),
        ]
        found = site.admin.get(f"/api/v1/t/lead/{leads[1]['id']}/duplicates").json()["items"]
        assert [x["id"] for x in found] == [leads[0]["id"]]
    elif intake == "merger":  # one lead, its empty fields filled, its own values kept
        assert [(x["company"], x["phone"]) for x in leads] == [("云帆", "+8613800138000")]
        history = site.admin.get(f"/api/v1/t/lead/{leads[0]['id']}/history").json()["items"]
        assert [(h["action"], h["channel"]) for h in history] == [("create", "public"), ("update", "public")]
    else:  # dropped
        assert [(x["company"], x["phone"]) for x in leads] == [("云帆", None)]


def test_a_unique_value_already_used_is_not_told_either(site: Site) -> None:
    first = site.visitor.post(URL.format("keeper"), json={"company": "A", "email": "a@a.cn", "voucher": "V1"})
    again = site.visitor.post(URL.format("keeper"), json={"company": "B", "email": "b@b.cn", "voucher": "V1"})
    assert (again.status_code, again.json()) == (first.status_code, first.json())
    assert [x["company"] for x in site.leads()] == ["A"]
    mixed = site.visitor.post(URL.format("keeper"), json={"company": "C", "email": "nope", "voucher": "V1"})
    assert mixed.status_code == 422
    assert [(p["field"], p["code"]) for p in mixed.json()["errors"]] == [("email", "invalid")]


def test_a_merge_ticks_what_the_visitor_ticked_and_never_unticks(site: Site) -> None:
    url = URL.format("merger")
    site.visitor.post(url, json={"company": "云帆", "email": "wf@yunfan.cn"})
    assert site.leads()[0]["wants_demo"] is False
    site.visitor.post(url, json={"company": "云帆", "email": "wf@yunfan.cn", "wants_demo": True})
    site.visitor.post(url, json={"company": "云帆", "email": "wf@yunfan.cn", "wants_demo": False})
    assert [(x["wants_demo"], x["version"]) for x in site.leads()] == [(True, 2)]


def test_a_merge_with_nothing_new_changes_nothing(site: Site) -> None:
    site.visitor.post(URL.format("merger"), json={"company": "云帆", "email": "wf@yunfan.cn"})
    answer = site.visitor.post(URL.format("merger"), json={"company": "Other", "email": "wf@yunfan.cn"})
    assert answer.status_code == 202
    assert [(x["company"], x["version"]) for x in site.leads()] == [("云帆", 1)]


def test_the_page_token_stops_instant_posts_and_old_pages(site: Site) -> None:
    early = site.visitor.post(URL.format("contact"), json={**WANG, "_token": site.token(seconds_ago=1)})
    assert early.status_code == 202 and site.leads() == []  # a program: answered, not stored
    forged = site.visitor.post(URL.format("contact"), json={**WANG, "_token": "1778490000.deadbeef"})
    stale = site.visitor.post(
        URL.format("contact"), json={**WANG, "_token": site.token(seconds_ago=2 * 86400)}
    )
    for answer in (forged, stale):
        assert answer.status_code == 422
        assert [(p["field"], p["code"]) for p in answer.json()["errors"]] == [("_token", "expired")]
    site.advance(minutes=2)
    fine = site.visitor.post(URL.format("contact"), json={**WANG, "_token": site.token(seconds_ago=5)})
    assert fine.status_code == 202 and len(site.leads()) == 1


def test_an_intake_can_require_its_page(site: Site) -> None:
    without = site.visitor.post(URL.format("strict"), json={"company": "A", "email": "a@a.cn"})
    assert without.status_code == 422 and without.json()["errors"][0]["field"] == "_token"
    token = site.token("strict", seconds_ago=10)
    assert (
        site.visitor.post(
            URL.format("strict"), json={"company": "A", "email": "a@a.cn", "_token": token}
        ).status_code
        == 202
    )
    assert (
        site.visitor.post(URL.format("contact"), json={**WANG, "_token": token}).status_code == 422
    )  # not its own


def test_writes_run_with_the_intakes_user_or_role(site: Site) -> None:
    unstaffed = site.visitor.post(URL.format("staffed"), json={"company": "A", "email": "a@a.cn"})
    assert unstaffed.status_code == 503 and unstaffed.json()["errors"][0]["code"] == "unavailable"
    with write(site.runtime.engine) as conn:
        user_id = create_user(conn, "web.intake", None, roles=("marketing",))
    assert (
        site.visitor.post(URL.format("staffed"), json={"company": "A", "email": "a@a.cn"}).status_code == 202
    )
    lead = site.leads()[0]
    assert lead["created_by"]["id"] == user_id and lead["source"] == "fair"
    with write(site.runtime.engine) as conn:
        create_user(conn, "nobody.here", None, roles=())  # a user without the right to create leads
    refused = site.visitor.post(URL.format("unstaffed"), json={"company": "B", "email": "b@b.cn"})
    assert refused.status_code == 503 and len(site.leads()) == 1


def test_a_form_post_reads_like_the_web_pages(site: Site) -> None:
    answer = site.visitor.post(
        URL.format("contact"),
        data={
            "company": "表单公司",
            "email": "f@f.cn",
            "phone": "",
            "topics": ["erp", "crm"],
            "wants_demo": "on",
        },
    )
    assert answer.status_code == 202, answer.text
    lead = site.leads()[0]
    assert (lead["company"], lead["phone"], lead["topics"], lead["wants_demo"]) == (
        "表单公司",
        None,
        ["erp", "crm"],
        True,
    )
    unknown = site.visitor.post(URL.format("contact"), data={"company": "X", "email": "x@x.cn", "admin": "1"})
    assert unknown.status_code == 422 and unknown.json()["errors"][0]["field"] == "admin"


def test_unknown_intakes_answer_404(site: Site) -> None:
    assert site.visitor.post(URL.format("nothing"), json=WANG).status_code == 404
    assert site.visitor.post("/api/v1/public/nope/contact", json=WANG).status_code == 404
