"""A public intake's page (runtime/web/intake_pages.py): no sign-in, framed only by the allowed
origins, a honeypot off screen, a page token, mistakes beside their inputs. Both databases."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.runtime.intake.pack import Site, serve_site

PAGE = "/public/t/contact"


@pytest.fixture
def site(db_url: str, tmp_path: Path) -> Iterator[Site]:
    site = serve_site(db_url, tmp_path)
    yield site
    site.runtime.engine.dispose()


def token_of(html: str) -> str:
    found = re.search(r'name="_token" value="([^"]+)"', html)
    assert found is not None
    return found.group(1)


def test_the_page_needs_no_sign_in_and_may_be_framed_by_the_allowed_origins_only(site: Site) -> None:
    page = site.visitor.get(PAGE + "?lang=en")
    assert page.status_code == 200
    assert "<h1>Contact us</h1>" in page.text and 'name="email"' in page.text
    policy = page.headers["Content-Security-Policy"]
    assert "frame-ancestors https://www.example.com http://localhost:3000" in policy
    assert "script-src 'self'" in policy and "X-Frame-Options" not in page.headers
    assert page.headers["Cache-Control"] == "no-store" and "set-cookie" not in page.headers
    closed = site.visitor.get("/public/t/keeper")  # no allowed origins: not framed at all
    assert "frame-ancestors 'none'" in closed.headers["Content-Security-Policy"]
    assert closed.headers["X-Frame-Options"] == "DENY"
    assert site.visitor.get("/public/t/nothing").status_code == 404


def test_the_page_carries_a_honeypot_a_token_and_hidden_fields_from_its_query(site: Site) -> None:
    page = site.visitor.get(PAGE + "?campaign=spring-expo&company=ignored-is-fine")
    assert re.search(r'class="intake-trap" aria-hidden="true">.*name="homepage"', page.text, re.S)
    assert '<input type="hidden" name="campaign" value="spring-expo">' in page.text
    assert 'name="company" value="ignored-is-fine"' in page.text  # visible fields can be filled too
    assert token_of(page.text).split(".")[0].isdigit()
    assert 'name="score"' not in page.text and 'name="account"' not in page.text


def test_a_post_from_the_page_thanks_the_visitor_and_stores_the_lead(site: Site) -> None:
    page = site.visitor.get(PAGE + "?campaign=expo")
    site.advance(seconds=5)
    form = {
        "_token": token_of(page.text),
        "campaign": "expo",
        "homepage": "",
        "company": "页面公司",
        "email": "page@example.cn",
        "topics": ["erp"],
        "wants_demo": "true",
    }
    done = site.visitor.post(PAGE, data=form, headers={"Origin": "http://testserver"})
    assert done.status_code == 200 and "谢谢！" in done.text and "<form" not in done.text
    lead = site.leads()[0]
    assert (lead["company"], lead["campaign"], lead["topics"], lead["wants_demo"]) == (
        "页面公司",
        "expo",
        ["erp"],
        True,
    )


def test_mistakes_are_shown_beside_their_inputs_with_the_values_kept(site: Site) -> None:
    page = site.visitor.get(PAGE + "?lang=en")
    site.advance(seconds=5)
    token = token_of(page.text)
    answer = site.visitor.post(
        PAGE + "?lang=en", data={"_token": token, "company": "Kept Ltd", "email": "nope"}
    )
    assert answer.status_code == 422
    assert 'name="company" value="Kept Ltd"' in answer.text
    assert re.search(r'name="email" value="nope".*?class="error" role="alert"', answer.text, re.S)
    assert token_of(answer.text) == token  # the same token: fixing it fast is not "too fast"
    fixed = site.visitor.post(PAGE, data={"_token": token, "company": "Kept Ltd", "email": "ok@kept.cn"})
    assert fixed.status_code == 200 and len(site.leads()) == 1


def test_robots_get_the_thank_you_page_and_nothing_is_stored(site: Site) -> None:
    page = site.visitor.get(PAGE)
    instant = site.visitor.post(
        PAGE, data={"_token": token_of(page.text), "company": "Bot", "email": "b@b.cn"}
    )
    site.advance(seconds=5)
    trapped = site.visitor.post(
        PAGE, data={"_token": token_of(page.text), "company": "Bot", "email": "b@b.cn", "homepage": "x"}
    )
    for answer in (instant, trapped):
        assert answer.status_code == 200 and "谢谢！" in answer.text
    assert site.leads() == []


def test_an_expired_page_asks_to_send_again_with_a_new_token(site: Site) -> None:
    answer = site.visitor.post(PAGE, data={"_token": "123.forged", "company": "A", "email": "a@a.cn"})
    assert answer.status_code == 422 and "表单已过期" in answer.text
    assert token_of(answer.text) != "123.forged" and site.leads() == []


def test_too_many_posts_get_a_429_page(site: Site) -> None:
    client = TestClient(site.runtime.api, client=("198.51.100.7", 40000))
    for _ in range(3):
        client.post(PAGE, data={"company": "A", "email": "a@a.cn"})
    refused = client.post(PAGE, data={"company": "B", "email": "b@b.cn"})
    assert refused.status_code == 429 and refused.headers["Retry-After"] and "<form" in refused.text


def test_a_redirect_intake_sends_the_visitor_on(site: Site) -> None:
    page = site.visitor.get("/public/t/strict")
    site.advance(seconds=5)
    answer = site.visitor.post(
        "/public/t/strict",
        data={"_token": token_of(page.text), "company": "A", "email": "a@a.cn"},
        follow_redirects=False,
    )
    assert answer.status_code == 303 and answer.headers["location"] == "https://www.example.com/thanks"
    assert "form-action 'self' https://www.example.com" in answer.headers["Content-Security-Policy"]


def test_another_sites_page_may_not_post_here(site: Site) -> None:
    answer = site.visitor.post(
        PAGE, data={"company": "A", "email": "a@a.cn"}, headers={"Origin": "https://evil.test"}
    )
    assert answer.status_code == 403 and site.leads() == []
