"""Related lists and make actions in a real browser, on the sales pack: a director sorts and
pages an account's related lists in place (htmx, under the strict CSP), and makes a quote
from an opportunity with its button. No CSP violation or script error on any page."""

from __future__ import annotations

import re
from typing import Any

from runtime.identity.actor import SYSTEM
from tests.web.browser import signed_in
from tests.web.conftest import LiveServer


def test_a_director_sorts_a_related_list_and_makes_a_quote(chromium: Any, live_server: LiveServer) -> None:
    service = live_server.runtime.service
    open_ones = [("where", "stage != 'won' and stage != 'lost'"), ("limit", "1")]
    opportunity = service.list_page("sales", "opportunity", open_ones, SYSTEM)["items"][0]
    account = opportunity["account"]["id"]
    with signed_in(chromium, live_server, "zhao.director") as director:
        page = director.page
        director.go(f"/app/sales/account/{account}")
        page.click("[role=tab]:has-text('相关记录')")
        block = page.locator('[data-related="opportunity.account"]')
        block.wait_for()
        heading = block.locator("thead th").first
        heading.locator("a").click()  # htmx swaps the block in place
        page.locator('[data-related="opportunity.account"] th[aria-sort="ascending"]').wait_for()
        assert page.url.endswith(f"/app/sales/account/{account}"), "the page itself stayed"
        director.shot("account-related-lists")
        director.go(f"/app/sales/opportunity/{opportunity['id']}")
        page.click("[data-make='make_quote']")
        page.wait_for_url(re.compile(r"/app/sales/quote/\d+\?made=1"))
        assert page.locator("p.notice.success").count() == 1
        director.shot("quote-made-from-opportunity")
    made = service.list_page(
        "sales", "quote", [("opportunity", str(opportunity["id"])), ("sort", "-id")], SYSTEM
    )
    assert made["items"][0]["account"]["id"] == account
