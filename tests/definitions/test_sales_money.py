"""The sales pack's money half: invoices, payments, allocations, write-offs, the statement.

An order with a payment plan is made as a signed contract would make it; finance invoices
the first milestone, records the customer's payment and allocates it; the milestone's
paid amount, balance and state follow the allocations (rollups and the automatic
transitions they trigger), and the account's statement balances to 0. Over-allocation is
refused, a reversal reopens the milestone, a write-off needs the CFO, and the AR aging
widget counts balances with "not yet due" apart.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi.testclient import TestClient

from runtime.boot import Runtime
from runtime.db import write
from runtime.identity.directory import user_id_of
from tests.definitions.sales_pack import as_user


def ok(response: Any, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.text
    found: dict[str, Any] = response.json()
    return found


def today() -> dt.date:
    return dt.datetime.now(dt.UTC).astimezone(dt.timezone(dt.timedelta(hours=8))).date()


def make_order(runtime: Runtime, milestones: list[dict[str, Any]]) -> tuple[int, int, list[dict[str, Any]]]:
    """An order of a new account with this payment plan; answers account, order, milestones."""
    service = runtime.service
    account = service.create("sales", "account", {"name": f"对账测试客户{len(milestones)}"})
    order = service.create(
        "sales",
        "sales_order",
        {
            "account": account["id"],
            "amount": sum(float(m["amount"]) for m in milestones),
            "milestones": milestones,
        },
    )
    plan = service.list_page("sales", "payment_milestone", [("sales_order", str(order["id"]))])["items"]
    plan.sort(key=lambda m: m["due_date"])
    assert all(m["account"]["id"] == account["id"] for m in plan), "the milestones carry the order's account"
    return int(account["id"]), int(order["id"]), plan


def milestone(finance: TestClient, record_id: int) -> dict[str, Any]:
    return ok(finance.get(f"/api/v1/sales/payment_milestone/{record_id}"))


def invoice_for(
    finance: TestClient, account: int, order: int, plan_item: int, excl_tax: str
) -> dict[str, Any]:
    made = ok(
        finance.post(
            "/api/v1/sales/invoice",
            json={
                "account": account,
                "sales_order": order,
                "payment_milestone": plan_item,
                "invoice_type": "special_vat",
                "buyer_title": "上海华信精密制造有限公司",
                "buyer_tax_id": "91310000MA1FL8XQ3K",
                "buyer_address_phone": "上海市浦东新区 021-58880000",
                "buyer_bank_account": "招商银行上海分行 1219 0000 0000 888",
                "amount_excl_tax": excl_tax,
                "tax_rate": "0.13",
            },
        ),
        201,
    )
    assert made["number"].startswith("INV-") and made["status"] == "draft"
    refused = finance.post(f"/api/v1/sales/invoice/{made['id']}/transitions/issue", json={})
    assert refused.status_code == 422 and refused.json()["errors"][0]["code"] == "guard"
    ok(finance.post(f"/api/v1/sales/invoice/{made['id']}/transitions/confirm_tax_details", json={}))
    issued = ok(finance.post(f"/api/v1/sales/invoice/{made['id']}/transitions/issue", json={}))
    return issued


def test_invoice_payment_allocation_pay_the_milestone_and_balance_the_statement(sales: Runtime) -> None:
    finance = as_user(sales, "zheng.finance")
    later = (today() + dt.timedelta(days=60)).isoformat()
    account, order, plan = make_order(
        sales,
        [
            {"name": "预付款", "percent": 0.3, "amount": "113000.00", "due_date": later},
            {"name": "交付款", "percent": 0.7, "amount": "263666.67", "due_date": later},
        ],
    )
    first, second = plan[0]["id"], plan[1]["id"]

    # The invoice: 100,000.00 + 13 % VAT = 113,000.00, confirmed with the customer, issued.
    invoice = invoice_for(finance, account, order, first, "100000.00")
    assert (invoice["tax"], invoice["amount"], invoice["status"]) == ("13000.00", "113000.00", "issued")
    assert invoice["tax_details_confirmed"] is True and invoice["tax_confirmed_by"]["display"] == "郑财务"
    assert invoice["issue_date"] == today().isoformat()
    edit = finance.patch(f"/api/v1/sales/invoice/{invoice['id']}", json={"amount_excl_tax": "1"})
    assert edit.status_code == 409 and edit.json()["errors"][0]["code"] == "material"
    now = milestone(finance, first)
    assert (now["invoiced_amount"], now["status"]) == ("113000.00", "open"), "invoicing is not a state"

    payment = ok(
        finance.post(
            "/api/v1/sales/payment",
            json={
                "account": account,
                "amount": "113000.00",
                "method": "bank_transfer",
                "reference": "CMB2026120100018",
                "payer_name": "上海华信精密制造有限公司",
            },
        ),
        201,
    )
    assert (payment["allocated"], payment["unallocated"]) == ("0.00", "113000.00")
    ok(finance.post(f"/api/v1/sales/payment/{payment['id']}/transitions/confirm", json={}))

    # Over-allocation is refused: more than the milestone's balance, more than the payment.
    too_much = finance.post(
        "/api/v1/sales/payment_allocation",
        json={
            "payment": payment["id"],
            "payment_milestone": first,
            "invoice": invoice["id"],
            "amount": "113000.01",
        },
    )
    assert too_much.status_code == 422
    assert {e["code"] for e in too_much.json()["errors"]} == {"rule"}
    zero = finance.post(
        "/api/v1/sales/payment_allocation",
        json={"payment": payment["id"], "payment_milestone": first, "amount": "0"},
    )
    assert zero.status_code == 422

    # Part of it, then the rest: partly paid, then paid, as the allocations are posted.
    part = ok(
        finance.post(
            "/api/v1/sales/payment_allocation",
            json={
                "payment": payment["id"],
                "payment_milestone": first,
                "invoice": invoice["id"],
                "amount": "13000.00",
            },
        ),
        201,
    )
    now = milestone(finance, first)
    assert (now["paid_amount"], now["balance"], now["status"]) == ("13000.00", "100000.00", "partly_paid")
    ok(
        finance.post(
            "/api/v1/sales/payment_allocation",
            json={
                "payment": payment["id"],
                "payment_milestone": first,
                "invoice": invoice["id"],
                "amount": "100000.00",
            },
        ),
        201,
    )
    now = milestone(finance, first)
    assert (now["paid_amount"], now["balance"], now["status"]) == ("113000.00", "0.00", "paid")
    assert ok(finance.get(f"/api/v1/sales/payment/{payment['id']}"))["unallocated"] == "0.00"
    # nothing is left of the payment: one more cent is refused
    more = finance.post(
        "/api/v1/sales/payment_allocation",
        json={"payment": payment["id"], "payment_milestone": second, "amount": "0.01"},
    )
    assert more.status_code == 422 and more.json()["errors"][0]["code"] == "rule"

    statement = ok(finance.get(f"/api/v1/sales/account/{account}"))
    assert (
        statement["invoiced_total"],
        statement["received_total"],
        statement["written_off_total"],
        statement["statement_balance"],
        statement["receivable"],
    ) == ("113000.00", "113000.00", "0.00", "0.00", "263666.67")

    # A posted allocation cannot change; reversing it (with a reason) reopens the milestone.
    assert finance.patch(
        f"/api/v1/sales/payment_allocation/{part['id']}", json={"amount": "1"}
    ).status_code in (403, 409)
    no_reason = finance.post(f"/api/v1/sales/payment_allocation/{part['id']}/transitions/reverse", json={})
    assert no_reason.status_code == 422
    ok(
        finance.post(
            f"/api/v1/sales/payment_allocation/{part['id']}/transitions/reverse",
            json={"values": {"reversal_reason": "金额录错"}},
        )
    )
    now = milestone(finance, first)
    assert (now["paid_amount"], now["balance"], now["status"]) == ("100000.00", "13000.00", "partly_paid")
    assert ok(finance.get(f"/api/v1/sales/payment/{payment['id']}"))["unallocated"] == "13000.00"
    assert ok(finance.get(f"/api/v1/sales/account/{account}"))["receivable"] == "276666.67"


def test_an_allocation_stays_within_one_account(sales: Runtime) -> None:
    finance = as_user(sales, "zheng.finance")
    later = (today() + dt.timedelta(days=10)).isoformat()
    _, _, plan = make_order(sales, [{"name": "预付款", "percent": 1, "amount": "1000.00", "due_date": later}])
    other, _, _ = make_order(
        sales,
        [
            {"name": "A", "percent": 0.5, "amount": "500.00", "due_date": later},
            {"name": "B", "percent": 0.5, "amount": "500.00", "due_date": later},
        ],
    )
    payment = ok(finance.post("/api/v1/sales/payment", json={"account": other, "amount": "1000.00"}), 201)
    crossed = finance.post(
        "/api/v1/sales/payment_allocation",
        json={"payment": payment["id"], "payment_milestone": plan[0]["id"], "amount": "10.00"},
    )
    assert crossed.status_code == 422
    assert [e["field"] for e in crossed.json()["errors"]] == ["payment_milestone"]


def test_a_write_off_needs_the_cfo_and_settles_the_balance(sales: Runtime) -> None:
    finance, cfo = as_user(sales, "zheng.finance"), as_user(sales, "chen.cfo")
    due = (today() - dt.timedelta(days=100)).isoformat()
    account, _, plan = make_order(
        sales, [{"name": "验收款", "percent": 1, "amount": "20000.00", "due_date": due}]
    )
    target = plan[0]["id"]
    too_much = finance.post(
        "/api/v1/sales/write_off",
        json={"payment_milestone": target, "account": account, "amount": "20000.01", "reason": "客户破产"},
    )
    assert too_much.status_code == 422
    proposal = ok(
        finance.post(
            "/api/v1/sales/write_off",
            json={
                "payment_milestone": target,
                "account": account,
                "amount": "20000.00",
                "reason": "客户破产清算",
            },
        ),
        201,
    )
    assert proposal["number"].startswith("WO-")
    ok(finance.post(f"/api/v1/sales/write_off/{proposal['id']}/transitions/submit", json={}))
    assert milestone(finance, target)["balance"] == "20000.00", "not written off before the CFO approves"
    [task] = ok(cfo.get("/api/v1/tasks"))["items"]
    ok(cfo.post(f"/api/v1/tasks/{task['id']}/approve", json={"comment": "同意核销"}))
    assert ok(finance.get(f"/api/v1/sales/write_off/{proposal['id']}"))["status"] == "approved"
    now = milestone(finance, target)
    assert (now["written_off"], now["balance"], now["status"]) == ("20000.00", "0.00", "paid")
    statement = ok(finance.get(f"/api/v1/sales/account/{account}"))
    assert (statement["written_off_total"], statement["receivable"]) == ("20000.00", "0.00")


def test_ar_aging_counts_balances_with_not_yet_due_apart(sales: Runtime) -> None:
    finance = as_user(sales, "zheng.finance")
    day = today()

    def due(days_overdue: int) -> str:
        return (day - dt.timedelta(days=days_overdue)).isoformat()

    def aging() -> dict[str, list[float]]:
        answer = ok(as_user(sales, "admin").get("/api/v1/sales/dashboards/sales/widgets/ar_aging/data"))
        return {
            row["dimensions"][0]["value"]: [round(float(v), 2) for v in row["values"]]
            for row in answer["rows"]
        }

    before = aging()  # the demo data's own receivables
    account, _, plan = make_order(
        sales,
        [
            {"name": "未到期", "percent": 0.2, "amount": "50000.00", "due_date": due(-5)},
            {"name": "今天到期", "percent": 0.1, "amount": "7000.00", "due_date": due(0)},
            {"name": "逾期10天", "percent": 0.2, "amount": "30000.00", "due_date": due(10)},
            {"name": "逾期45天", "percent": 0.2, "amount": "20000.00", "due_date": due(45)},
            {"name": "逾期75天", "percent": 0.1, "amount": "9000.00", "due_date": due(75)},
            {"name": "逾期120天", "percent": 0.2, "amount": "4000.00", "due_date": due(120)},
        ],
    )
    by_name = {m["name"]: m["id"] for m in plan}
    payment = ok(finance.post("/api/v1/sales/payment", json={"account": account, "amount": "14000.00"}), 201)
    # 12,000 of the 30,000 overdue 10 days is paid; the 4,000 overdue 120 days entirely.
    for name, amount in (("逾期10天", "12000.00"), ("逾期120天", "4000.00")):
        if name == "逾期120天":
            amount = "2000.00"  # the payment has 2,000 left: the rest is paid below
        ok(
            finance.post(
                "/api/v1/sales/payment_allocation",
                json={"payment": payment["id"], "payment_milestone": by_name[name], "amount": amount},
            ),
            201,
        )
    second = ok(finance.post("/api/v1/sales/payment", json={"account": account, "amount": "2000.00"}), 201)
    ok(
        finance.post(
            "/api/v1/sales/payment_allocation",
            json={"payment": second["id"], "payment_milestone": by_name["逾期120天"], "amount": "2000.00"},
        ),
        201,
    )
    # By hand: not yet due 50,000 + 7,000 (due today); 1–30: 30,000 − 12,000 = 18,000;
    # 31–60: 20,000; 61–90: 9,000; 90+: paid, so absent. Added to what the demo data's
    # milestones already showed.
    added = {
        "not_due": [57000.0, 2],
        "1-30": [18000.0, 1],
        "31-60": [20000.0, 1],
        "61-90": [9000.0, 1],
    }
    expected = dict(before)
    for bucket, (balance, count) in added.items():
        old_balance, old_count = expected.get(bucket, [0.0, 0])
        expected[bucket] = [round(old_balance + balance, 2), old_count + count]
    assert aging() == expected


def test_signing_wins_the_opportunity_and_the_deal_moves_down_the_funnel(sales: Runtime) -> None:
    """The chain: a signed contract wins its opportunity and makes the order; orders are
    not made by hand; the opportunity's rollups say how far the deal got."""
    service, rep, finance = sales.service, as_user(sales, "li.rep"), as_user(sales, "zheng.finance")
    with write(sales.engine) as conn:
        li = user_id_of(conn, "li.rep")
    account = service.create("sales", "account", {"name": "链路测试客户", "owner": li})["id"]
    deal = service.create(
        "sales", "opportunity", {"name": "链路商机", "account": account, "amount": "50000", "owner": li}
    )
    later = (today() + dt.timedelta(days=30)).isoformat()
    contract = service.create(
        "sales",
        "contract",
        {
            "subject": "链路合同",
            "account": account,
            "opportunity": deal["id"],
            "amount": "50000",
            "status": "out_for_signature",
            "owner": li,
            "milestones": [{"name": "全款", "percent": 1, "amount": "50000", "due_date": later}],
        },
    )
    # the payment plan must cover the contract: 100 %
    short = rep.patch(
        f"/api/v1/sales/contract/{contract['id']}",
        json={"milestones": [{"name": "全款", "percent": 0.9, "amount": "45000", "due_date": later}]},
    )
    assert short.status_code == 422
    assert {e["field"] for e in short.json()["errors"]} == {"milestones"}
    assert rep.post("/api/v1/sales/sales_order", json={"account": account}).status_code == 403

    ok(rep.post(f"/api/v1/sales/contract/{contract['id']}/transitions/sign", json={}))
    won = ok(rep.get(f"/api/v1/sales/opportunity/{deal['id']}"))
    assert (won["stage"], won["probability"]) == ("won", "1.000000")
    assert (won["signed_contracts"], won["ordered_contracts"], won["paid_contracts"]) == (1, 1, 0)

    [plan] = service.list_page("sales", "payment_milestone", [("contract", str(contract["id"]))])["items"]
    payment = ok(finance.post("/api/v1/sales/payment", json={"account": account, "amount": "50000"}), 201)
    ok(
        finance.post(
            "/api/v1/sales/payment_allocation",
            json={"payment": payment["id"], "payment_milestone": plan["id"], "amount": "50000"},
        ),
        201,
    )
    assert ok(rep.get(f"/api/v1/sales/opportunity/{deal['id']}"))["paid_contracts"] == 1


def test_the_demo_data_shows_a_reconciled_an_overdue_and_a_not_yet_due_account(sales: Runtime) -> None:
    """demo/data.yaml: 华信 reconciled, 云帆 an overdue part payment, 京禾 invoiced, not yet due."""
    finance = as_user(sales, "zheng.finance")
    accounts = {
        a["name"]: a for a in ok(finance.get("/api/v1/sales/account", params={"limit": 100}))["items"]
    }
    figures = {
        name: tuple(
            accounts[name][k]
            for k in (
                "invoiced_total",
                "received_total",
                "statement_balance",
                "unallocated_total",
                "receivable",
            )
        )
        for name in ("上海华信精密制造有限公司", "深圳云帆科技有限公司", "北京京禾医疗器械股份有限公司")
    }
    assert figures == {
        # 113,000 invoiced (100,000 + 13 %), paid and allocated: reconciled
        "上海华信精密制造有限公司": ("113000.00", "113000.00", "0.00", "0.00", "0.00"),
        # 67,800 invoiced, 30,000 paid: 37,800 owed; the plan has 37,800 + 158,200 left
        "深圳云帆科技有限公司": ("67800.00", "30000.00", "37800.00", "0.00", "196000.00"),
        # 56,500 invoiced, nothing paid, due in 2027
        "北京京禾医疗器械股份有限公司": ("56500.00", "0.00", "56500.00", "0.00", "56500.00"),
    }
    overdue = ok(finance.get("/api/v1/sales/payment_milestone", params={"status": "overdue"}))["items"]
    assert [(m["account"]["display"], m["balance"]) for m in overdue] == [
        ("深圳云帆科技有限公司", "37800.00")
    ]


def test_a_contract_made_from_an_accepted_quote_carries_its_lines_and_tax_and_must_add_up(
    sales: Runtime,
) -> None:
    """make_contract copies the lines and the tax rate; the amount (tax included) must equal
    the lines plus tax to go to approval and to go out for signature."""
    service, rep = sales.service, as_user(sales, "li.rep")
    opportunity = next(
        o
        for o in service.list_page("sales", "opportunity", [("limit", "100")])["items"]
        if o["owner"]["display"] == "李销售"
    )
    product = service.list_page("sales", "product", [])["items"][0]["id"]
    quote = service.create(
        "sales",
        "quote",
        {
            "opportunity": opportunity["id"],
            "account": opportunity["account"]["id"],
            "owner": opportunity["owner"]["id"],
            "status": "accepted",
            "tax_rate": "0.06",
            "lines": [
                {"product": product, "quantity": 10, "unit_price": "1200", "discount_pct": "0.05"},
                {"product": product, "quantity": 3, "unit_price": "999.99"},
            ],
        },
    )
    # By hand: 10 × 1,200 × 0.95 = 11,400.00; 3 × 999.99 = 2,999.97; net 14,399.97;
    # 6 % VAT 863.9982 → 864.00; grand total 15,263.97.
    assert quote["grand_total"] == "15263.97"
    made = ok(rep.post(f"/api/v1/sales/quote/{quote['id']}/actions/make_contract"), 201)
    assert [
        (line["quantity"], line["unit_price"], line["discount_pct"], line["line_total"])
        for line in made["lines"]
    ] == [
        ("10.0000", "1200.00", "0.050000", "11400.00"),
        ("3.0000", "999.99", "0.000000", "2999.97"),
    ]
    assert (made["tax_rate"], made["net_total"], made["tax"], made["lines_total"], made["amount"]) == (
        "0.060000",
        "14399.97",
        "864.00",
        "15263.97",
        "15263.97",
    )
    assert made["amount_difference"] == "0.00" and made["quote"]["id"] == quote["id"]
    url = f"/api/v1/sales/contract/{made['id']}"

    # An amount that does not equal the lines plus tax is saved in the draft, but does not
    # go to approval: a cent a line is rounding, more is not.
    assert ok(rep.patch(url, json={"amount": "15263.99"}))["amount_difference"] == "0.02"
    ok(rep.post(f"{url}/transitions/submit", json={}))
    ok(rep.post(f"{url}/transitions/withdraw", json={}))
    off = ok(rep.patch(url, json={"amount": "15264.00"}))
    assert off["amount_difference"] == "0.03"
    refused = rep.post(f"{url}/transitions/submit", json={})
    assert refused.status_code == 422, refused.text
    assert refused.json()["errors"][0]["code"] == "guard"
    assert "does not equal its lines plus tax" in refused.json()["errors"][0]["message"]

    # Without a tax rate the line prices are taken as tax included.
    plain = ok(rep.patch(url, json={"tax_rate": None, "amount": "14399.97"}))
    assert (plain["tax"], plain["lines_total"], plain["amount_difference"]) == ("0.00", "14399.97", "0.00")
    assert ok(rep.post(f"{url}/transitions/submit", json={}))["status"] == "in_approval"

    # Approved by the manager and two legal users (14,399.97 ≤ 100k); the tax rate, which
    # the approval does not hold, changed afterwards is caught before signature.
    for username in ("qian.manager", "wang.legal", "he.legal"):
        approver = as_user(sales, username)
        [task] = [t for t in ok(approver.get("/api/v1/tasks"))["items"] if t["record_id"] == made["id"]]
        ok(approver.post(f"/api/v1/tasks/{task['id']}/approve", json={"comment": "ok"}))
    changed = ok(rep.patch(url, json={"tax_rate": "0.06"}))
    assert (changed["status"], changed["amount_difference"]) == ("approved", "-864.00")
    late = rep.post(f"{url}/transitions/send_for_signature", json={})
    assert late.status_code == 422 and late.json()["errors"][0]["code"] == "guard"
