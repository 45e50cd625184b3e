"""The public intakes' API route (runtime/api/intake_routes.py): CORS for the allowed origins
only, 403 for other sites' browsers, and a spec entry without security. Both databases."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.runtime.intake.pack import Site, serve_site

URL = "/api/v1/public/t/contact"
LEAD = {"company": "云帆", "email": "wf@yunfan.cn"}


@pytest.fixture
def site(db_url: str, tmp_path: Path) -> Iterator[Site]:
    site = serve_site(db_url, tmp_path)
    yield site
    site.runtime.engine.dispose()


def test_an_allowed_origin_may_read_the_answers(site: Site) -> None:
    origin = {"Origin": "https://www.example.com"}
    preflight = site.visitor.options(
        URL,
        headers={
            **origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert preflight.status_code == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == "https://www.example.com"
    assert preflight.headers["Access-Control-Allow-Methods"] == "POST"
    assert "Content-Type" in preflight.headers["Access-Control-Allow-Headers"]
    accepted = site.visitor.post(URL, json=LEAD, headers=origin)
    assert accepted.status_code == 202
    assert accepted.headers["Access-Control-Allow-Origin"] == "https://www.example.com"
    assert accepted.headers["Vary"] == "Origin"
    assert "Access-Control-Allow-Credentials" not in accepted.headers  # no cookies ever
    mistaken = site.visitor.post(URL, json={"company": "x", "email": "nope"}, headers=origin)
    assert mistaken.status_code == 422
    assert mistaken.headers["Access-Control-Allow-Origin"] == "https://www.example.com"


def test_other_sites_browsers_are_refused_and_nothing_is_stored(site: Site) -> None:
    for origin in ("https://evil.example.net", "null", "https://www.example.com.evil.net"):
        answer = site.visitor.post(URL, json=LEAD, headers={"Origin": origin})
        assert answer.status_code == 403, origin
        assert answer.json()["errors"][0]["code"] == "origin"
        assert "Access-Control-Allow-Origin" not in answer.headers
        preflight = site.visitor.options(
            URL, headers={"Origin": origin, "Access-Control-Request-Method": "POST"}
        )
        assert preflight.status_code == 403 and "Access-Control-Allow-Origin" not in preflight.headers
    assert site.leads() == []


def test_servers_and_this_servers_own_pages_need_no_cors(site: Site) -> None:
    server = site.visitor.post(URL, json=LEAD)  # no Origin: curl, a marketing site's back end
    assert server.status_code == 202 and "Access-Control-Allow-Origin" not in server.headers
    own = site.visitor.post(
        URL, json={"company": "B", "email": "b@b.cn"}, headers={"Origin": "http://testserver"}
    )
    assert own.status_code == 202 and "Access-Control-Allow-Origin" not in own.headers
    assert len(site.leads()) == 2


def test_429_tells_the_allowed_origin_when_to_come_back(site: Site) -> None:
    origin = {"Origin": "http://localhost:3000"}
    for i in range(3):
        site.visitor.post(URL, json={"company": f"C{i}", "email": f"c{i}@c.cn"}, headers=origin)
    refused = site.visitor.post(URL, json=LEAD, headers=origin)
    assert refused.status_code == 429
    assert (
        refused.headers["Access-Control-Allow-Origin"] == "http://localhost:3000"
        and refused.headers["Retry-After"]
    )


def test_json_that_does_not_parse_is_422(site: Site) -> None:
    answer = site.visitor.post(URL, content=b"{not json", headers={"Content-Type": "application/json"})
    assert answer.status_code == 422 and answer.json()["errors"][0]["code"] == "json_invalid"


def test_the_spec_shows_the_route_without_security_and_with_exactly_its_fields(site: Site) -> None:
    spec = site.admin.get("/openapi.json").json()
    operation = spec["paths"][URL]["post"]
    assert operation["security"] == []  # public; every other operation keeps the global security
    assert spec["security"] == [{"bearer": []}, {"session": []}]
    body = operation["requestBody"]["content"]["application/json"]["schema"]
    assert set(body["properties"]) == {
        "company",
        "email",
        "phone",
        "notes",
        "wants_demo",
        "topics",
        "source",
        "campaign",
        "homepage",
        "_token",
    }
    assert body["additionalProperties"] is False and body["required"] == ["company"]
    assert "application/x-www-form-urlencoded" in operation["requestBody"]["content"]
    assert {"202", "403", "422", "429"} <= set(operation["responses"])
    public = [
        (path, method)
        for path, operations in spec["paths"].items()
        for method, op in operations.items()
        if op.get("security") == []
    ]
    assert sorted(public) == sorted((f"/api/v1/public/t/{key}", "post") for key in INTAKE_KEYS)


INTAKE_KEYS = ("contact", "keeper", "merger", "dropper", "strict", "staffed", "unstaffed")
