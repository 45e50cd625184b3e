"""Fetched values and link filters in a real browser (htmx under the strict CSP): picking the
opportunity fills the account and the payment terms, the contact picker offers only the
account's contacts, a line's unit price follows its quantity's tier until the user types
over it, and the save stores what the page showed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.runtime.records.link_pack import Sales, served
from tests.support import WEB_PASSWORD
from tests.web.browser import pick, previewed, signed_in, value_becomes
from tests.web.conftest import LiveServer, serving


@pytest.fixture
def sales_server(db_url: str, tmp_path: Path) -> Iterator[tuple[Sales, LiveServer]]:
    for sales in served(db_url, tmp_path):
        with serving(sales.runtime) as server:
            yield sales, server


def test_a_rep_picks_an_opportunity_and_the_quote_fills_itself(
    chromium: Any, sales_server: tuple[Sales, LiveServer]
) -> None:
    sales, server = sales_server
    ids = sales.ids
    with signed_in(chromium, server, "rep", WEB_PASSWORD) as rep:
        page = rep.page
        rep.go("/app/t/quote/new")
        pick(page, "opportunity", "Bolt", "Bolt deal")
        value_becomes(page, "account", str(ids["bolt"]))
        assert page.input_value('[id="in-account"]') == "Bolt"
        value_becomes(page, "payment_terms", "net60")
        page.click('[id="in-contact"]')  # the contact picker posts the form: Bolt's contacts only
        page.locator('[id="picks-contact"] [data-pick-display="Bob"]').wait_for()
        assert page.locator('[id="picks-contact"] [data-pick-id]').count() == 1
        page.locator('[id="picks-contact"] [data-pick-display="Bob"]').click()
        page.click("[data-add-row]")
        pick(page, "lines[0].product", "Wid", "Widget")
        page.fill('[id="in-lines[0].quantity"]', "150")
        value_becomes(page, "lines[0].unit_price", "80.00")
        page.fill('[id="in-lines[0].unit_price"]', "75")  # the rep's own price
        with previewed(page, {"lines[0].quantity": "5"}):
            page.fill('[id="in-lines[0].quantity"]', "5")
        # the preview of quantity 5 answered and was applied: the typed price stays
        assert page.input_value('[id="in-lines[0].unit_price"]') == "75"
        rep.shot("quote-filled-by-fetch")
        page.click("button[type=submit].primary")
        page.wait_for_url(lambda url: "saved=1" in url)
    quote = sales.admin.get("/api/v1/t/quote", params={"sort": "-id", "limit": "1"}).json()["items"][0]
    assert quote["account"]["id"] == ids["bolt"] and quote["contact"]["id"] == ids["bob"]
    assert quote["payment_terms"] == "net60"
    line = sales.admin.get(f"/api/v1/t/quote/{quote['id']}").json()["lines"][0]
    assert (line["quantity"], line["unit_price"]) == ("5.00", "75.00")


def test_a_late_preview_answer_does_not_overwrite_what_the_user_typed_meanwhile(
    chromium: Any, sales_server: tuple[Sales, LiveServer]
) -> None:
    sales, server = sales_server
    with signed_in(chromium, server, "rep", WEB_PASSWORD) as rep:
        page = rep.page
        rep.go("/app/t/quote/new")
        page.click("[data-add-row]")
        pick(page, "lines[0].product", "Wid", "Widget")
        value_becomes(page, "lines[0].unit_price", "100.00")
        held: list[Any] = []
        page.route("**/_live", lambda route: held.append(route) if not held else route.continue_())
        with page.expect_request(lambda request: request.url.endswith("/_live")):
            page.fill('[id="in-lines[0].quantity"]', "150")  # its answer (80.00) is held back
        page.fill('[id="in-lines[0].unit_price"]', "75")  # the rep types a price meanwhile
        with previewed(page, {"lines[0].unit_price": "75"}):
            held[0].continue_()  # the late answer arrives; the typed price's preview follows it
        assert page.input_value('[id="in-lines[0].unit_price"]') == "75", "the late answer did not win"
        page.unroute("**/_live")
        page.click("button[type=submit].primary")
        page.wait_for_url(lambda url: "saved=1" in url)
    quote = sales.admin.get("/api/v1/t/quote", params={"sort": "-id", "limit": "1"}).json()["items"][0]
    line = sales.admin.get(f"/api/v1/t/quote/{quote['id']}").json()["lines"][0]
    assert (line["quantity"], line["unit_price"]) == ("150.00", "75.00")
