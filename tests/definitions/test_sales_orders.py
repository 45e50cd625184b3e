"""The sales pack's stage 3 and 4 forms: contract, sales order, fulfilment tasks, payment plan."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from runtime.records.errors import InvalidRecord
from tests.support import user_token


def client_for(runtime, username: str, role: str) -> TestClient:  # type: ignore[no-untyped-def]
    token = user_token(runtime.engine, username, (role,))
    return TestClient(runtime.api, headers={"Authorization": f"Bearer {token}"})


def test_the_demo_contract_has_its_lines_and_milestones(sales) -> None:  # type: ignore[no-untyped-def]
    contract = sales.service.list_page("sales", "contract", [])["items"][0]
    assert contract["number"].startswith("CT-") and contract["status"] == "draft"
    assert [line["line_total"] for line in contract["lines"]] == ["187200.00", "162000.00"]
    milestones = contract["milestones"]
    assert [m["percent"] for m in milestones] == ["0.300000", "0.600000", "0.100000"]
    assert sum(float(m["amount"]) for m in milestones) == pytest.approx(float(contract["amount"]))


def test_milestone_percentages_cannot_exceed_100(sales) -> None:  # type: ignore[no-untyped-def]
    contract = sales.service.list_page("sales", "contract", [])["items"][0]
    with pytest.raises(InvalidRecord) as caught:
        sales.service.update(
            "sales",
            "contract",
            contract["id"],
            {"milestones": [{"name": "预付款", "percent": 0.5}, {"name": "交付款", "percent": 0.6}]},
        )
    assert [(p.field, p.code) for p in caught.value.problems] == [("milestones", "rule")]


def test_order_tasks_and_payment_plan(sales) -> None:  # type: ignore[no-untyped-def]
    service = sales.service
    contract = service.list_page("sales", "contract", [])["items"][0]
    order = service.create(
        "sales",
        "sales_order",
        {
            "contract": contract["id"],
            "account": contract["account"]["id"],
            "amount": contract["amount"],
            "owner": contract["owner"]["id"],
            "delivery_date": contract["delivery_date"],
            "lines": [
                {k: line[k] for k in ("product", "description", "quantity", "unit_price", "discount_pct")}
                for line in contract["lines"]
            ],
            "milestones": [
                {"name": "预付款", "percent": 0.3, "amount": "118378.80", "due_date": "2025-08-15"}
            ],
        },
    )
    assert order["number"].startswith("SO-") and order["status"] == "confirmed"
    assert [line["line_total"] for line in order["lines"]] == ["187200.00", "162000.00"]
    # The order's set-up automation made its four tasks and its payment plan.
    milestones = service.list_page("sales", "payment_milestone", [("sales_order", str(order["id"]))])["items"]
    assert len(milestones) == 1
    milestone = milestones[0]
    assert milestone["status"] == "open" and milestone["owner"]["id"] == contract["owner"]["id"]
    assert (milestone["paid_amount"], milestone["balance"]) == ("0.00", "118378.80")
    assert milestone["account"]["id"] == contract["account"]["id"]
    # The paid amount is a rollup of posted allocations of payments (tests/definitions/test_sales_money.py).
    payment = service.create(
        "sales", "payment", {"account": contract["account"]["id"], "amount": "118378.80"}
    )
    service.create(
        "sales",
        "payment_allocation",
        {"payment": payment["id"], "payment_milestone": milestone["id"], "amount": "100000"},
    )
    paid = service.get("sales", "payment_milestone", milestone["id"])
    assert paid["balance"] == "18378.80"
    assert paid["status"] == "partly_paid"  # an automatic transition follows the paid amount

    # The rep owns the order, not the tasks: they read its tasks, and a colleague's rep does not.
    tasks = client_for(sales, "li.rep", "sales_rep").get("/api/v1/sales/fulfilment_task").json()["items"]
    assert sorted(t["kind"] for t in tasks) == ["finance", "logistics", "production", "purchasing"]
    other = client_for(sales, "zhou.rep", "sales_rep")
    assert other.get("/api/v1/sales/fulfilment_task").json()["items"] == []
    # Reps read their payment milestones but cannot change them; finance can.
    rep = client_for(sales, "li.rep", "sales_rep")
    assert [m["id"] for m in rep.get("/api/v1/sales/payment_milestone").json()["items"]] == [milestone["id"]]
    assert rep.patch(f"/api/v1/sales/payment_milestone/{milestone['id']}", json={}).status_code == 403
    finance = client_for(sales, "zheng.finance", "finance")
    refused = finance.patch(f"/api/v1/sales/payment_milestone/{milestone['id']}", json={"status": "paid"})
    assert refused.status_code == 422 and refused.json()["errors"][0]["code"] == "read_only"
    typed = finance.patch(f"/api/v1/sales/payment_milestone/{milestone['id']}", json={"paid_amount": "1"})
    assert typed.status_code == 422, "the paid amount is not typed"
    changed = finance.post(
        "/api/v1/sales/payment_allocation",
        json={"payment": payment["id"], "payment_milestone": milestone["id"], "amount": "18378.80"},
    )
    assert changed.status_code == 201, changed.text
    assert finance.get(f"/api/v1/sales/payment_milestone/{milestone['id']}").json()["status"] == "paid"
