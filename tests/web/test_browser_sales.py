"""The sales pack in a real browser: a rep, a manager and a director work a lead to an approved
quote; finance invoices a milestone, records the payment, allocates it and balances the statement.

Each step is what a person does with the mouse or keyboard on the generated pages;
outcomes are checked in the database through the records service. Every page must
load without a Content-Security-Policy violation or a script error, and a
screenshot of each page is saved under test-artifacts/screenshots/.
"""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import expect
from sqlalchemy import select

from runtime.identity.actor import SYSTEM
from runtime.identity.directory import load_actor
from runtime.schema.system import users
from tests.web.browser import Session, signed_in
from tests.web.conftest import LiveServer

COMPANY = "Browser Test Precision Co"


def records(server: LiveServer, form: str, where: str) -> list[dict[str, Any]]:
    page = server.runtime.service.list_page("sales", form, [("where", where)], SYSTEM)
    return list(page["items"])


def user_id(server: LiveServer, username: str) -> int:
    with server.runtime.engine.connect() as conn:
        return int(conn.execute(select(users.c.id).where(users.c.username == username)).scalar_one())


def pick(page: Any, field_name: str, typed: str, option: str) -> None:
    """Type into a link or user picker and choose the option whose label contains `option`."""
    search = page.locator(f'[id="in-{field_name}"]')
    search.fill(typed)
    choice = page.locator(f'[id="picks-{field_name}"] [data-pick-id]', has_text=option).first
    choice.click()


def live_text(page: Any, name: str) -> str:
    return str(page.locator(f'output[data-live="{name}"]').inner_text()).strip()


def enter_lead_with_a_bad_email_then_fix_it(session: Session) -> int:
    """Scenario 1: the inline 422 error, then the live score, then the stored score."""
    page = session.page
    page.click("text=线索")
    page.click("a.button.primary:has-text('新建')")
    session.shot("lead-form-empty")
    page.fill('[id="in-company"]', COMPANY)
    page.fill('[id="in-contact_name"]', "张伟")
    page.fill('[id="in-email"]', "zhang.wei@@example")
    page.select_option('[id="in-source"]', "trade_show")
    page.select_option('[id="in-industry"]', "manufacturing")
    page.select_option('[id="in-region"]', "east_china")
    page.select_option('[id="in-company_size"]', "1000_plus")
    page.fill('[id="in-budget"]', "800,000")
    page.fill('[id="in-interest_level"]', "5")
    page.fill('[id="in-urgency"]', "5")
    page.check('[id="in-asked_for_demo"]')
    page.check('[id="in-asked_for_price"]')
    page.click("button[type=submit]:has-text('保存')")
    error = page.locator('[data-field="email"] .error')
    error.wait_for()
    assert "邮箱" in error.inner_text()
    assert page.locator('[id="in-email"]').get_attribute("aria-invalid") == "true"
    assert page.locator('[id="in-company"]').input_value() == COMPANY  # nothing typed is lost
    session.shot("lead-form-error")
    assert records(session.server, "lead", f"company == '{COMPANY}'") == []

    page.fill('[id="in-email"]', "zhang.wei@example.com")
    expect(page.locator('output[data-live="score"]')).not_to_have_text("0")
    shown_score = live_text(page, "score")
    session.shot("lead-form-live-score")
    page.click("button[type=submit]:has-text('保存')")
    page.wait_for_url(re.compile(r"/app/sales/lead/\d+\?saved=1"))
    session.shot("lead-record")
    [lead] = records(session.server, "lead", f"company == '{COMPANY}'")
    assert lead["email"] == "zhang.wei@example.com"
    assert str(lead["score"]) == shown_score.replace(",", "")
    assert page.locator('[data-show="score"] dd').inner_text().strip() == shown_score
    assert lead["status"] == "mql", "a score over the threshold makes the lead an MQL at once"
    return int(lead["id"])


def manager_hands_off_with_the_keyboard(session: Session, lead_id: int) -> None:
    """Scenario 2: the manager qualifies the lead (MQL → SQL) and assigns it, keyboard only."""
    page = session.page
    session.go(f"/app/sales/lead/{lead_id}")
    session.shot("lead-record-manager")
    action = page.locator('summary[data-action="hand_off"]')
    for _ in range(60):
        if page.evaluate("document.activeElement && document.activeElement.dataset.action") == "hand_off":
            break
        page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.dataset.action") == "hand_off", "reachable by Tab"
    page.keyboard.press("Enter")
    assert action.locator("xpath=..").get_attribute("open") is not None
    page.keyboard.press("Tab")
    page.keyboard.type("li.rep")
    expect(page.locator('[id="picks-owner"] [data-pick-id]')).to_have_text(["李销售 (li.rep)"])
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    assert page.locator('details[open] input[name="owner"]').input_value() == str(
        user_id(session.server, "li.rep")
    )
    session.shot("lead-hand-off")
    page.locator('details[open] button[data-confirm="hand_off"]').focus()
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"done=hand_off"))
    [lead] = records(session.server, "lead", f"id == {lead_id}")
    assert lead["status"] == "sql"
    assert lead["owner"]["id"] == user_id(session.server, "li.rep")
    assert page.locator(".timeline").inner_text().count("状态变更") >= 1


def rep_builds_and_submits_a_quote(session: Session, discount: str = "35") -> int:
    """Scenario 3, first half: a quote with two lines, one at a 35% discount, submitted."""
    page = session.page
    session.go("/app/sales/quote/new")
    pick(page, "opportunity", "华信", "华信精密")
    # the account comes with the opportunity (a fetched value): nothing to pick
    expect(page.locator('[id="in-account"]')).to_have_value(re.compile("上海华信"))
    page.click("[data-add-row]")
    pick(page, "lines[0].product", "许可", "销售云平台用户许可")
    page.fill('[id="in-lines[0].quantity"]', "100")
    page.fill('[id="in-lines[0].unit_price"]', "1080")  # the price tier 100 licences reach
    page.fill('[id="in-lines[0].discount_pct"]', discount)
    page.click("[data-add-row]")
    pick(page, "lines[1].product", "实施", "实施服务")
    page.fill('[id="in-lines[1].quantity"]', "10")
    page.fill('[id="in-lines[1].unit_price"]', "3000")
    expect(page.locator('output[data-live="max_discount_pct"]')).to_have_text(f"{discount}%")
    expect(page.locator('output[data-live="lines[1].line_total"]')).to_have_text("¥30,000.00")  # 10 × 3,000
    shown_total = live_text(page, "grand_total")
    session.shot("quote-form")
    page.click("button[type=submit]:has-text('保存')")
    page.wait_for_url(re.compile(r"/app/sales/quote/\d+\?saved=1"))
    quote_id = int(re.findall(r"/quote/(\d+)", page.url)[0])
    [quote] = records(session.server, "quote", f"id == {quote_id}")
    assert len(quote["lines"]) == 2
    assert str(quote["max_discount_pct"]).startswith(f"0.{discount}")
    assert shown_total.endswith(f"{float(quote['grand_total']):,.2f}")
    page.click('button[data-action="submit"]')
    page.wait_for_url(re.compile(r"done=submit"))
    session.shot("quote-submitted")
    [quote] = records(session.server, "quote", f"id == {quote_id}")
    assert quote["status"] == "pending_approval"
    return quote_id


def approver_approves_from_the_inbox(session: Session, quote_id: int, comment: str) -> None:
    """Scenario 3, second half: the approver finds the quote in "My tasks" and approves it."""
    page = session.page
    page.click("#nav-tasks")
    card = page.locator(".task-card", has=page.locator(f'a[href="/app/sales/quote/{quote_id}"]'))
    card.wait_for()
    session.shot(f"inbox-{session.name}")
    card.locator("textarea[name=comment]").fill(comment)
    card.locator('button[data-decide="approve"]').click()
    page.wait_for_url(re.compile(r"/tasks\?done=approve"))


def funnel_counts_the_lead(session: Session) -> None:
    """Scenario 4: the funnel widget's lead and SQL stages include the new lead."""
    page = session.page
    page.click("text=销售看板")
    table = page.locator("#widget-funnel .widget-data table")
    table.wait_for()
    session.shot("dashboard")
    first = table.locator("tbody tr").nth(0).locator("td").nth(1).inner_text()
    sql_row = table.locator("tbody tr").nth(2).locator("td").nth(1).inner_text()
    with session.server.runtime.engine.connect() as conn:
        viewer = load_actor(conn, user_id(session.server, session.name), "web")
    assert viewer is not None
    leads = session.server.runtime.service.list_page("sales", "lead", [("count", "true")], viewer)["total"]
    assert int(first) == leads, "the funnel counts the leads this manager may read"
    assert int(sql_row) >= 1
    assert records(session.server, "lead", f"company == '{COMPANY}'")[0]["status"] == "sql"
    channel = page.locator("#widget-leads_by_channel .widget-data table tbody a", has_text="行业展会")
    channel.click()
    page.wait_for_url(re.compile(r"/app/sales/lead\?where="))
    session.shot("drill-down")
    expect(page.locator("table.records tbody")).to_contain_text(COMPANY)


def test_rep_manager_and_director_work_a_lead_to_an_approved_quote(
    chromium: Any, live_server: LiveServer
) -> None:
    with signed_in(chromium, live_server, "li.rep") as rep:
        rep.shot("home-rep")
        lead_id = enter_lead_with_a_bad_email_then_fix_it(rep)
    with signed_in(chromium, live_server, "qian.manager") as manager:
        manager_hands_off_with_the_keyboard(manager, lead_id)
    with signed_in(chromium, live_server, "li.rep") as rep:
        quote_id = rep_builds_and_submits_a_quote(rep)
    with signed_in(chromium, live_server, "qian.manager") as manager:
        approver_approves_from_the_inbox(manager, quote_id, "折扣合理，同意")
    [quote] = records(live_server, "quote", f"id == {quote_id}")
    assert quote["status"] == "pending_approval", "35% needs the director too"
    with signed_in(chromium, live_server, "zhao.director") as director:
        approver_approves_from_the_inbox(director, quote_id, "同意")
        director.go(f"/app/sales/quote/{quote_id}")
        director.shot("quote-approved")
        assert "折扣合理，同意" in director.page.locator(".timeline").inner_text()
    [quote] = records(live_server, "quote", f"id == {quote_id}")
    assert quote["status"] == "approved"
    with signed_in(chromium, live_server, "qian.manager") as manager:
        funnel_counts_the_lead(manager)


def test_the_lead_form_works_on_a_phone(chromium: Any, live_server: LiveServer) -> None:
    phone = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}
    with signed_in(chromium, live_server, "li.rep", **phone) as rep:
        page = rep.page
        page.click("button.menu-button")
        page.click("#site-nav >> text=线索")
        page.click("a.button.primary:has-text('新建')")
        page.fill('[id="in-company"]', "Phone Expo Lead")
        page.fill('[id="in-contact_name"]', "王芳")
        page.fill('[id="in-email"]', "not-an-address")
        page.select_option('[id="in-source"]', "trade_show")
        page.click("button[type=submit]:has-text('保存')")
        page.locator('[data-field="email"] .error').wait_for()
        rep.shot("phone-lead-error")
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"the page is {overflow}px wider than the phone"
        page.fill('[id="in-email"]', "wang.fang@example.com")
        page.click("button[type=submit]:has-text('保存')")
        page.wait_for_url(re.compile(r"/app/sales/lead/\d+\?saved=1"))
        rep.shot("phone-lead-record")
        assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0
    assert records(live_server, "lead", "company == 'Phone Expo Lead'")[0]["email"] == "wang.fang@example.com"


def test_an_approved_quote_raised_from_45_to_70_percent_goes_back_to_approval_and_reaches_the_cfo(
    chromium: Any, live_server: LiveServer
) -> None:
    """Approvals hold: editing an approved quote's discount reopens it and routes it by the new band."""
    with signed_in(chromium, live_server, "li.rep") as rep:
        quote_id = rep_builds_and_submits_a_quote(rep, discount="45")
    for approver in ("qian.manager", "zhao.director"):
        with signed_in(chromium, live_server, approver) as session:
            approver_approves_from_the_inbox(session, quote_id, "同意")
    [quote] = records(live_server, "quote", f"id == {quote_id}")
    assert quote["status"] == "approved", "45% is the manager's and the director's"
    with signed_in(chromium, live_server, "li.rep") as rep:
        page = rep.page
        rep.go(f"/app/sales/quote/{quote_id}/edit")
        page.fill('[id="in-lines[0].discount_pct"]', "70")
        expect(page.locator('output[data-live="max_discount_pct"]')).to_have_text("70%")
        page.click("button[type=submit]:has-text('保存')")
        page.wait_for_url(re.compile(rf"/app/sales/quote/{quote_id}\?saved=1"))
        rep.shot("quote-reopened")
        assert "70%" in page.locator(".timeline").inner_text(), "the timeline names the line's new discount"
    [quote] = records(live_server, "quote", f"id == {quote_id}")
    assert quote["status"] == "pending_approval", "the approval did not survive the new discount"
    for approver in ("qian.manager", "zhao.director"):
        with signed_in(chromium, live_server, approver) as session:
            approver_approves_from_the_inbox(session, quote_id, "70% 同意上报")
    [quote] = records(live_server, "quote", f"id == {quote_id}")
    assert quote["status"] == "pending_approval", "above 50% the CFO decides too"
    with signed_in(chromium, live_server, "chen.cfo") as cfo:
        approver_approves_from_the_inbox(cfo, quote_id, "同意")
    [quote] = records(live_server, "quote", f"id == {quote_id}")
    assert quote["status"] == "approved"
    with signed_in(chromium, live_server, "qian.manager") as manager:
        manager.go("/tasks?view=done")
        done = manager.page.locator(f'a[href="/app/sales/quote/{quote_id}"]')
        expect(done.first).to_be_visible()
        assert done.count() == 2, "the manager decided this quote twice: before and after the change"
        manager.shot("inbox-done-manager")


STATEMENT_COMPANY = "Browser Statement Co"


def an_order_with_one_milestone(server: LiveServer) -> tuple[int, int]:
    """An account with an order whose payment plan is one milestone of 11,300.00 (the order's
    set-up makes it); answers the account and the milestone."""
    service = server.runtime.service
    manager = user_id(server, "qian.manager")
    account = service.create("sales", "account", {"name": STATEMENT_COMPANY, "owner": manager})["id"]
    order = service.create(
        "sales",
        "sales_order",
        {
            "account": account,
            "owner": manager,
            "amount": "11300",
            "milestones": [
                {"name": "浏览器测试全款", "percent": 1, "amount": "11300", "due_date": "2027-06-30"}
            ],
        },
    )
    [milestone] = records(server, "payment_milestone", f"sales_order == {order['id']}")
    return int(account), int(milestone["id"])


def take(session: Session, action: str) -> None:
    """Take a workflow action that asks for nothing, from the record page."""
    session.page.click(f'button[data-action="{action}"]')
    session.page.wait_for_url(re.compile(rf"done={action}"))


def test_finance_invoices_a_milestone_allocates_the_payment_and_the_statement_balances_to_zero(
    chromium: Any, live_server: LiveServer
) -> None:
    account_id, milestone_id = an_order_with_one_milestone(live_server)
    with signed_in(chromium, live_server, "zheng.finance") as finance:
        page = finance.page

        # The invoice: 10,000.00 + 13 % VAT = 11,300.00, for the milestone.
        finance.go("/app/sales/invoice/new")
        pick(page, "account", "Browser Statement", STATEMENT_COMPANY)
        pick(page, "payment_milestone", "浏览器测试", "浏览器测试全款")
        page.fill('[id="in-buyer_title"]', STATEMENT_COMPANY)
        page.fill('[id="in-buyer_tax_id"]', "91310000MA1FL8XQ3K")
        page.fill('[id="in-amount_excl_tax"]', "10,000")
        expect(page.locator('output[data-live="amount"]')).to_have_text("¥11,300.00")
        finance.shot("invoice-form")
        page.click("button[type=submit]:has-text('保存')")
        page.wait_for_url(re.compile(r"/app/sales/invoice/\d+\?saved=1"))
        invoice_id = int(re.findall(r"/invoice/(\d+)", page.url)[0])
        take(finance, "confirm_tax_details")
        take(finance, "issue")
        finance.shot("invoice-issued")
        [invoice] = records(live_server, "invoice", f"id == {invoice_id}")
        assert (invoice["status"], invoice["amount"], invoice["tax_confirmed_by"]["display"]) == (
            "issued",
            "11300.00",
            "郑财务",
        )

        # The customer's payment.
        finance.go("/app/sales/payment/new")
        pick(page, "account", "Browser Statement", STATEMENT_COMPANY)
        page.fill('[id="in-amount"]', "11,300")
        page.fill('[id="in-reference"]', "CMB-BROWSER-0001")
        page.click("button[type=submit]:has-text('保存')")
        page.wait_for_url(re.compile(r"/app/sales/payment/\d+\?saved=1"))
        payment_id = int(re.findall(r"/payment/(\d+)", page.url)[0])
        take(finance, "confirm")
        [payment] = records(live_server, "payment", f"id == {payment_id}")
        assert (payment["status"], payment["unallocated"]) == ("confirmed", "11300.00")

        # Allocated (核销) to the milestone and its invoice.
        finance.go("/app/sales/payment_allocation/new")
        pick(page, "payment", payment["number"], payment["number"])
        pick(page, "payment_milestone", "浏览器测试", "浏览器测试全款")
        pick(page, "invoice", invoice["number"], invoice["number"])
        page.fill('[id="in-amount"]', "11,300")
        finance.shot("allocation-form")
        page.click("button[type=submit]:has-text('保存')")
        page.wait_for_url(re.compile(r"/app/sales/payment_allocation/\d+\?saved=1"))
        [milestone] = records(live_server, "payment_milestone", f"id == {milestone_id}")
        assert (milestone["status"], milestone["balance"]) == ("paid", "0.00")

        # The account's statement: invoiced 11,300 − received 11,300 = 0, nothing unallocated.
        finance.go(f"/app/sales/account/{account_id}")
        finance.shot("account-statement")
        expect(page.locator('[data-show="invoiced_total"] dd')).to_have_text("¥11,300.00")
        expect(page.locator('[data-show="received_total"] dd')).to_have_text("¥11,300.00")
        expect(page.locator('[data-show="statement_balance"] dd')).to_have_text("¥0.00")
        expect(page.locator('[data-show="unallocated_total"] dd')).to_have_text("¥0.00")
    [account] = records(live_server, "account", f"id == {account_id}")
    assert (account["statement_balance"], account["unallocated_total"], account["receivable"]) == (
        "0.00",
        "0.00",
        "0.00",
    )
