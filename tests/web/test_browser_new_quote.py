"""The sales pack's quote in a real browser (htmx under the strict CSP): on an opportunity page
the rep clicks "new" in its quotes, finds the account filled from the opportunity and the
contact picker limited to that account, picks a product and gets the unit price of the tier
its quantity reaches, saves, and sees the quote in the opportunity's related list."""

from __future__ import annotations

import re
from typing import Any

from runtime.identity.actor import SYSTEM
from tests.web.browser import pick, previewed, signed_in, value_becomes
from tests.web.conftest import LiveServer

PRODUCT = "销售云平台用户许可"  # tiers: 1200 from 1, 1080 from 50, 960 from 200 (demo data)


def test_a_rep_makes_a_quote_from_an_opportunity_with_its_tier_price(
    chromium: Any, live_server: LiveServer
) -> None:
    service = live_server.runtime.service
    named = [("name", "华信精密 销售云平台项目")]
    deal = service.list_page("sales", "opportunity", named, SYSTEM)["items"][0]
    account = deal["account"]
    before = service.list_page("sales", "quote", [("opportunity", str(deal["id"]))], SYSTEM)["items"]
    with signed_in(chromium, live_server, "li.rep") as rep:
        page = rep.page
        rep.go(f"/app/sales/opportunity/{deal['id']}")
        page.click('[data-related-new="quote.opportunity"]')
        page.wait_for_url(re.compile(rf"/app/sales/quote/new\?opportunity={deal['id']}$"))
        # the account came with the opportunity, shown by its name
        assert page.input_value('[name="account"]') == str(account["id"])
        assert page.input_value('[id="in-account"]') == account["display"]
        # the contact picker offers the account's contacts the rep may read: 王磊, not 李娜 (zhou.rep's)
        page.click('[id="in-contact"]')
        page.locator('[id="picks-contact"] [data-pick-display="王磊"]').wait_for()
        assert page.locator('[id="picks-contact"] [data-pick-id]').count() == 1
        page.locator('[id="picks-contact"] [data-pick-display="王磊"]').click()
        page.click("[data-add-row]")
        pick(page, "lines[0].product", "销售云", PRODUCT)
        value_becomes(page, "lines[0].unit_price", "1200.00")  # quantity 1: the first tier
        with previewed(page, {"lines[0].quantity": "60"}):
            page.fill('[id="in-lines[0].quantity"]', "60")
        assert page.input_value('[id="in-lines[0].unit_price"]') == "1080.00", "60 reaches the tier of 50"
        rep.shot("new-quote-from-opportunity")
        page.click("button[type=submit].primary")
        page.wait_for_url(re.compile(r"/app/sales/quote/\d+\?saved=1"))
        quote_id = int(re.search(r"/quote/(\d+)", page.url).group(1))  # type: ignore[union-attr]
        quote = service.get("sales", "quote", quote_id, SYSTEM)
        rep.go(f"/app/sales/opportunity/{deal['id']}")
        block = page.locator('[data-related="quote.opportunity"]')
        block.locator(f'a[href="/app/sales/quote/{quote_id}"]').wait_for()
        assert quote["number"] in block.inner_text()
        assert f"({len(before) + 1})" in block.locator("h2").inner_text()
        rep.shot("opportunity-with-its-new-quote")
    assert quote["account"]["id"] == account["id"] and quote["contact"]["display"] == "王磊"
    assert [(line["quantity"], line["unit_price"]) for line in quote["lines"]] == [("60.0000", "1080.00")]
    assert quote["subtotal"] == "64800.00"
