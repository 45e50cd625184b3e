"""The list view: columns, sorting, search, the `where` filter, paging, saved views and pickers."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from runtime.boot import Runtime
from runtime.identity.actor import SYSTEM
from tests.runtime.web.pack import deal_pack
from tests.support import count_queries, serve, web_client


@pytest.fixture
def crm(db_url: str, tmp_path: Path) -> Runtime:
    runtime, _ = serve(deal_pack(tmp_path / "pack"), db_url, tmp_path / "files")
    return runtime


def titles(html: str) -> list[str]:
    return re.findall(r'<td class="text" data-label="Title"><a href="/app/crm/deal/\d+">([^<]*)</a>', html)


def add_deals(runtime: Runtime, owner: str, count: int, start: int = 0) -> None:
    rep = web_client(runtime, owner, ("rep",))
    for number in range(start, start + count):
        rep.post_form(
            "/app/crm/deal/new", {"title": f"{owner} deal {number:03d}", "amount": str(number * 100)}
        )


def test_a_rep_lists_only_their_own_records_with_formatted_values(crm: Runtime) -> None:
    add_deals(crm, "rita", 2)
    add_deals(crm, "otto", 1)
    page = web_client(crm, "rita", ("rep",)).get("/app/crm/deal")
    assert titles(page.text) == ["rita deal 000", "rita deal 001"]
    assert "CN¥100.00" in page.text or "¥100.00" in page.text
    assert "2 records" in page.text


def test_sorting_search_and_where_filter_the_list(crm: Runtime) -> None:
    add_deals(crm, "rita", 3)
    rep = web_client(crm, "rita", ("rep",))
    assert titles(rep.get("/app/crm/deal?sort=-amount").text)[0] == "rita deal 002"
    assert titles(rep.get("/app/crm/deal?q=DEAL%20001").text) == ["rita deal 001"], "search ignores case"
    assert titles(rep.get("/app/crm/deal?where=amount%20%3E%3D%20100&q=deal").text) == [
        "rita deal 001",
        "rita deal 002",
    ]


def test_a_bad_where_is_explained_beside_the_filter_box(crm: Runtime) -> None:
    rep = web_client(crm, "rita", ("rep",))
    answer = rep.get("/app/crm/deal?where=amount%20%3E")
    assert answer.status_code == 422
    assert re.search(r'<p class="error" id="where-error" role="alert">[^<]+</p>', answer.text)
    assert 'aria-invalid="true"' in answer.text


def test_a_hidden_field_can_be_neither_a_column_nor_a_filter(crm: Runtime) -> None:
    rep = web_client(crm, "rita", ("rep",))
    assert 'value="secret"' not in rep.get("/app/crm/deal").text
    assert rep.get("/app/crm/deal?where=secret%20%3E%200").status_code == 422
    assert "Secret" not in rep.get("/app/crm/deal?columns=secret&columns=title").text


def test_the_list_page_reads_a_page_in_the_same_number_of_queries_for_5_or_40_rows(crm: Runtime) -> None:
    rep = web_client(crm, "rita", ("rep",))
    add_deals(crm, "rita", 5)
    with count_queries(crm.engine) as few:
        rep.get("/app/crm/deal")
    add_deals(crm, "rita", 35, start=5)
    with count_queries(crm.engine) as many:
        page = rep.get("/app/crm/deal")
    assert len(titles(page.text)) == 40
    publish_checks = [q for q in few + many if "FROM formloom_apps" in q]  # once a second, any page
    assert len(many) + len(few) - len(publish_checks) == 2 * len([q for q in few if q not in publish_checks])
    assert len([q for q in many if q not in publish_checks]) <= 8, "the page, its frame and the session"


def test_paging_moves_through_the_records(crm: Runtime) -> None:
    add_deals(crm, "rita", 3)
    rep = web_client(crm, "rita", ("rep",))
    first = rep.get("/app/crm/deal?limit=2")
    assert titles(first.text) == ["rita deal 000", "rita deal 001"]
    next_link = re.search(r'href="([^"]+)" rel="next"', first.text)
    assert next_link is not None
    assert titles(rep.get("/app/crm/deal" + next_link.group(1).replace("&amp;", "&")).text) == [
        "rita deal 002"
    ]


def test_saved_views_belong_to_their_user(crm: Runtime) -> None:
    add_deals(crm, "rita", 3)
    rep = web_client(crm, "rita", ("rep",))
    answer = rep.post_form(
        "/app/crm/deal/views", {"name": "Big ones", "query": "where=amount+%3E%3D+200&offset=20"}
    )
    assert answer.status_code == 303
    page = rep.get("/app/crm/deal")
    link = re.search(r'<a href="/app/crm/deal\?([^"]*)"[^>]*>Big ones</a>', page.text)
    assert link is not None and "offset" not in link.group(1)
    assert titles(rep.get("/app/crm/deal?" + link.group(1).replace("&amp;", "&")).text) == ["rita deal 002"]
    other = web_client(crm, "otto", ("rep",))
    assert "Big ones" not in other.get("/app/crm/deal").text
    view_id = re.search(r"/views/(\d+)/delete", page.text)
    assert view_id is not None
    other.post_form(f"/app/crm/deal/views/{view_id.group(1)}/delete", {})
    assert "Big ones" in rep.get("/app/crm/deal").text, "another user cannot delete it"
    rep.post_form(f"/app/crm/deal/views/{view_id.group(1)}/delete", {})
    assert "Big ones" not in rep.get("/app/crm/deal").text


def test_the_link_picker_offers_only_records_the_user_may_read(crm: Runtime) -> None:
    crm.service.create("crm", "account", {"name": "Acme Shared"}, SYSTEM)
    rep = web_client(crm, "rita", ("rep",))
    rep.post_form("/app/crm/account/new", {"name": "Acme Mine"})
    answer = rep.get("/app/crm/deal/_pick/account?account._search=acme")
    assert re.findall(r'data-pick-display="([^"]+)"', answer.text) == ["Acme Mine"]
    boss = web_client(crm, "bea", ("boss",))
    shown = re.findall(r'data-pick-display="([^"]+)"', boss.get("/app/crm/deal/_pick/account?q=acme").text)
    assert shown == ["Acme Mine", "Acme Shared"]
    assert rep.get("/app/crm/deal/_pick/title?q=x").status_code == 404, "only link and user fields"


def test_the_user_picker_finds_users_by_name(crm: Runtime) -> None:
    rep = web_client(crm, "rita", ("rep",))
    web_client(crm, "bea", ("boss",))
    answer = rep.get("/app/crm/deal/_pick/owner?owner._search=BE")
    assert re.findall(r'data-pick-display="([^"]+)"', answer.text) == ["bea (bea)"]
    assert "bea (bea)" in rep.get("/users/_pick?q=bea").text
