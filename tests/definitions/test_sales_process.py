"""The sales pack's processes, lead to cash, through the API on a test clock (both databases).

A webinar lead reaches MQL by its score; a manager hands it off; the follow-up SLA
reminds and escalates; the rep converts it; the opportunity moves through its stages;
quotes route their discount approvals by band; a 1.2M contract goes to the manager,
director, CEO and two legal users; signing creates the order with its payment plan and
four fulfilment tasks; a payment milestone is reminded, goes overdue and escalates.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from runtime.boot import Runtime
from runtime.db import write
from runtime.identity.directory import user_id_of
from runtime.process.engine import engine_for
from runtime.process.worker import Worker
from runtime.schema.system import notifications, users
from tests.definitions.sales_pack import as_user
from tests.definitions.test_sales_scoring import WEBINAR_LEAD
from tests.support import ManualClock

START = dt.datetime(2026, 12, 1, 1, 0, tzinfo=dt.UTC)  # 09:00 in Shanghai


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


def uid(runtime: Runtime, username: str) -> int:
    with write(runtime.engine) as conn:
        return user_id_of(conn, username)


def run_due(runtime: Runtime) -> None:
    Worker(engine_for(runtime.service), "test").run_until_idle()


def inbox_of(runtime: Runtime) -> dict[str, list[str]]:
    """Notifications per username, oldest first."""
    with runtime.engine.connect() as conn:
        rows = conn.execute(
            select(users.c.username, notifications.c.message)
            .join(users, users.c.id == notifications.c.user_id)
            .order_by(notifications.c.id)
        ).all()
    found: dict[str, list[str]] = {}
    for username, message in rows:
        found.setdefault(username, []).append(message)
    return found


def act(client: TestClient, form: str, record: int, action: str, **body: Any) -> dict[str, Any]:
    answer = client.post(f"/api/v1/sales/{form}/{record}/transitions/{action}", json=body)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def approve_all(runtime: Runtime, record: int, *approvers: str) -> None:
    """Each approver, in order, finds the record's task in their inbox and approves it."""
    for username in approvers:
        client = as_user(runtime, username)
        tasks = [t for t in client.get("/api/v1/tasks").json()["items"] if t["record_id"] == record]
        assert len(tasks) == 1, (username, tasks)
        answer = client.post(
            f"/api/v1/tasks/{tasks[0]['id']}/approve", json={"comment": f"ok from {username}"}
        )
        assert answer.status_code == 200, answer.text


def test_a_lead_reaches_mql_is_handed_off_reminded_escalated_and_converted(
    sales: Runtime, clock: ManualClock
) -> None:
    marketing, manager, rep = (as_user(sales, n) for n in ("wu.marketing", "qian.manager", "li.rep"))
    lead = marketing.post("/api/v1/sales/lead", json=WEBINAR_LEAD).json()
    assert (lead["score"], lead["status"]) == (72, "mql")
    assert rep.get(f"/api/v1/sales/lead/{lead['id']}").status_code == 404  # not the rep's yet
    handed = act(marketing, "lead", lead["id"], "hand_off", values={"owner": uid(sales, "li.rep")})
    assert handed["status"] == "sql" and handed["handed_off_at"] is not None
    assert inbox_of(sales)["li.rep"][-1].startswith("线索「杭州云帆科技有限公司」已移交给您")

    clock.now = START + dt.timedelta(hours=20)
    run_due(sales)
    assert inbox_of(sales)["li.rep"][-1].startswith("提醒：线索「杭州云帆科技有限公司」还有 4 小时")
    clock.now = START + dt.timedelta(hours=24)
    run_due(sales)
    assert "24 小时内未跟进" in inbox_of(sales)["qian.manager"][-1]

    reassigned = act(manager, "lead", lead["id"], "reassign", values={"owner": uid(sales, "li.rep")})
    assert reassigned["status"] == "sql"
    # following up is logging an activity on the lead: its last_contacted_at is a rollup
    call = rep.post(
        "/api/v1/sales/activity", json={"kind": "call", "lead": lead["id"], "summary": "首次电话沟通"}
    )
    assert call.status_code == 201, call.text
    assert (
        rep.get(f"/api/v1/sales/lead/{lead['id']}").json()["last_contacted_at"] == call.json()["occurred_at"]
    )
    before = len(inbox_of(sales)["li.rep"])
    clock.now = START + dt.timedelta(hours=60)
    run_due(sales)
    assert len(inbox_of(sales)["li.rep"]) == before  # followed up in time: no reminder

    converted = act(rep, "lead", lead["id"], "convert")
    assert converted["status"] == "converted"
    assert converted["account"]["display"] == "杭州云帆科技有限公司"
    assert converted["contact"]["display"] == "王芳"
    opportunities = rep.get("/api/v1/sales/opportunity", params={"lead": lead["id"]}).json()["items"]
    assert [(o["account"]["id"], o["owner"]["id"], o["stage"]) for o in opportunities] == [
        (converted["account"]["id"], uid(sales, "li.rep"), "needs_analysis")
    ]


def test_disqualifying_needs_a_reason(sales: Runtime) -> None:
    marketing = as_user(sales, "wu.marketing")
    lead = marketing.post(
        "/api/v1/sales/lead", json={"company": "X", "contact_name": "Y", "source": "seo", "email": "y@x.cn"}
    ).json()
    assert lead["status"] == "new"
    refused = marketing.post(f"/api/v1/sales/lead/{lead['id']}/transitions/disqualify", json={})
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "values.disqualify_reason"
    done = act(marketing, "lead", lead["id"], "disqualify", values={"disqualify_reason": "no_need"})
    assert done["status"] == "disqualified"


def test_opportunity_stages_need_the_spin_notes_and_set_the_probability(sales: Runtime) -> None:
    rep = as_user(sales, "li.rep")
    account = sales.service.list_page("sales", "account", [])["items"][0]["id"]
    opportunity = rep.post("/api/v1/sales/opportunity", json={"name": "扩容", "account": account}).json()
    blocked = rep.post(f"/api/v1/sales/opportunity/{opportunity['id']}/transitions/propose_solution")
    assert blocked.status_code == 422 and "SPIN" in blocked.json()["errors"][0]["message"]
    rep.patch(
        f"/api/v1/sales/opportunity/{opportunity['id']}",
        json={"situation": "s", "problem": "p", "implication": "i", "need_payoff": "n"},
    )
    probabilities = [act(rep, "opportunity", opportunity["id"], "propose_solution")["probability"]]
    # presenting needs a solution, negotiating a presentation held
    blocked = rep.post(f"/api/v1/sales/opportunity/{opportunity['id']}/transitions/present")
    assert blocked.status_code == 422 and "solution" in blocked.json()["errors"][0]["message"]
    made = rep.post("/api/v1/sales/solution", json={"name": "方案", "opportunity": opportunity["id"]})
    assert made.status_code == 201, made.text
    probabilities.append(act(rep, "opportunity", opportunity["id"], "present")["probability"])
    blocked = rep.post(f"/api/v1/sales/opportunity/{opportunity['id']}/transitions/negotiate")
    assert blocked.status_code == 422 and "presentation" in blocked.json()["errors"][0]["message"]
    demo = rep.post(
        "/api/v1/sales/presentation",
        json={"title": "演示", "opportunity": opportunity["id"], "scheduled_at": "2026-11-30T02:00:00Z"},
    ).json()
    act(rep, "presentation", demo["id"], "hold", values={"outcome": "positive", "feedback": "ok"})
    probabilities += [
        act(rep, "opportunity", opportunity["id"], a)["probability"] for a in ("negotiate", "win")
    ]
    assert probabilities == ["0.300000", "0.500000", "0.700000", "1.000000"]


def quote_with_discount(runtime: Runtime, discount: str) -> dict[str, Any]:
    """A quote of two lines at the product's list price, one of them at `discount`.

    At list price the stated discount is the effective one (measured against list).
    """
    rep = as_user(runtime, "li.rep")
    opportunity = runtime.service.list_page("sales", "opportunity", [])["items"][0]
    product = runtime.service.list_page("sales", "product", [])["items"][0]
    price = str(product["list_price"])
    answer = rep.post(
        "/api/v1/sales/quote",
        json={
            "opportunity": opportunity["id"],
            "account": opportunity["account"]["id"],
            "lines": [
                {"product": product["id"], "quantity": 10, "unit_price": price, "discount_pct": discount},
                {"product": product["id"], "quantity": 5, "unit_price": price, "discount_pct": "0.05"},
            ],
        },
    )
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


@pytest.mark.parametrize(
    ("discount", "approvers"),
    [
        ("0.08", []),
        ("0.25", ["qian.manager"]),
        ("0.35", ["qian.manager", "zhao.director"]),
        ("0.55", ["qian.manager", "zhao.director", "chen.cfo"]),
    ],
)
def test_quote_discounts_are_approved_by_band(sales: Runtime, discount: str, approvers: list[str]) -> None:
    quote = quote_with_discount(sales, discount)
    submitted = act(as_user(sales, "li.rep"), "quote", quote["id"], "submit")
    assert submitted["status"] == ("approved" if not approvers else "pending_approval")
    approve_all(sales, quote["id"], *approvers)
    assert sales.service.get("sales", "quote", quote["id"])["status"] == "approved"


def test_a_rejected_quote_returns_to_draft_with_the_comment_and_can_be_resubmitted(sales: Runtime) -> None:
    rep, manager = as_user(sales, "li.rep"), as_user(sales, "qian.manager")
    quote = quote_with_discount(sales, "0.35")
    act(rep, "quote", quote["id"], "submit")
    # Only lines, prices and discounts are held by the approval: the terms stay editable.
    assert rep.patch(f"/api/v1/sales/quote/{quote['id']}", json={"terms": "x"}).status_code == 200
    task = manager.get("/api/v1/tasks").json()["items"][0]
    manager.post(f"/api/v1/tasks/{task['id']}/reject", json={"comment": "折扣过高，请控制在 30% 以内"})
    assert sales.service.get("sales", "quote", quote["id"])["status"] == "draft"
    history = rep.get(f"/api/v1/sales/quote/{quote['id']}/history").json()["items"]
    assert any(h["changes"].get("comment") == "折扣过高，请控制在 30% 以内" for h in history)
    assert "已退回草稿" in inbox_of(sales)["li.rep"][-1]
    line = sales.service.get("sales", "quote", quote["id"])["lines"][0]
    rep.patch(
        f"/api/v1/sales/quote/{quote['id']}", json={"lines": [{"id": line["id"], "discount_pct": "0.2"}]}
    )
    act(rep, "quote", quote["id"], "submit")
    approve_all(sales, quote["id"], "qian.manager")
    assert sales.service.get("sales", "quote", quote["id"])["status"] == "approved"


def test_a_signed_contract_becomes_an_order_with_its_payment_plan_and_reminders(
    sales: Runtime, clock: ManualClock
) -> None:
    rep = as_user(sales, "li.rep")
    account = sales.service.list_page("sales", "account", [])["items"][0]["id"]
    product = sales.service.list_page("sales", "product", [])["items"][0]["id"]
    contract = rep.post(
        "/api/v1/sales/contract",
        json={
            "subject": "销售云平台",
            "account": account,
            "amount": "1200000",
            "delivery_date": "2026-12-20",
            "lines": [{"product": product, "quantity": 1000, "unit_price": "1200"}],
            "milestones": [
                {"name": "预付款", "percent": "0.3", "amount": "360000", "due_date": "2026-12-10"},
                {"name": "交付款", "percent": "0.6", "amount": "720000", "due_date": "2026-12-20"},
                {"name": "验收款", "percent": "0.1", "amount": "120000", "due_date": "2027-01-31"},
            ],
        },
    ).json()
    assert act(rep, "contract", contract["id"], "submit")["status"] == "in_approval"
    approve_all(sales, contract["id"], "qian.manager", "zhao.director", "feng.ceo", "wang.legal", "he.legal")
    assert act(rep, "contract", contract["id"], "send_for_signature")["status"] == "out_for_signature"
    signed = act(rep, "contract", contract["id"], "sign")
    assert signed["status"] == "signed" and signed["signed_at"] is not None

    orders = rep.get("/api/v1/sales/sales_order", params={"contract": contract["id"]}).json()["items"]
    assert len(orders) == 1
    order = orders[0]
    assert (order["amount"], order["owner"]["id"], order["status"]) == (
        "1200000.00",
        uid(sales, "li.rep"),
        "confirmed",
    )
    assert [(line["quantity"], line["unit_price"]) for line in order["lines"]] == [("1000.0000", "1200.00")]
    tasks = rep.get("/api/v1/sales/fulfilment_task", params={"sales_order": order["id"]}).json()["items"]
    assert sorted(t["kind"] for t in tasks) == ["finance", "logistics", "production", "purchasing"]
    plan = rep.get("/api/v1/sales/payment_milestone", params={"sales_order": order["id"], "sort": "due_date"})
    milestones = plan.json()["items"]
    assert [(m["name"], m["amount"], m["status"]) for m in milestones] == [
        ("预付款", "360000.00", "open"),
        ("交付款", "720000.00", "open"),
        ("验收款", "120000.00", "open"),
    ]

    # The prepayment is paid in time: it becomes paid and nothing more reminds about it.
    finance = as_user(sales, "zheng.finance")
    payment = finance.post(
        "/api/v1/sales/payment", json={"account": order["account"]["id"], "amount": "360000"}
    )
    assert payment.status_code == 201, payment.text
    allocated = finance.post(
        "/api/v1/sales/payment_allocation",
        json={"payment": payment.json()["id"], "payment_milestone": milestones[0]["id"], "amount": "360000"},
    )
    assert allocated.status_code == 201, allocated.text
    paid = finance.get(f"/api/v1/sales/payment_milestone/{milestones[0]['id']}")
    assert paid.json()["status"] == "paid"
    # The delivery milestone (due 20 Dec): reminded 3 days before, overdue the day after, escalated at 7 days.
    delivery = milestones[1]["id"]
    clock.now = dt.datetime(2026, 12, 16, 16, 0, tzinfo=dt.UTC)  # 17 Dec 00:00 in Shanghai
    run_due(sales)
    assert inbox_of(sales)["li.rep"][-1].startswith("付款节点「交付款」将于 2026-12-20 到期")
    clock.now = dt.datetime(2026, 12, 20, 16, 0, tzinfo=dt.UTC)
    run_due(sales)
    assert sales.service.get("sales", "payment_milestone", delivery)["status"] == "overdue"
    assert "已逾期" in inbox_of(sales)["zheng.finance"][-1]
    clock.now = dt.datetime(2026, 12, 26, 16, 0, tzinfo=dt.UTC)
    run_due(sales)
    finance_tasks = finance.get("/api/v1/sales/fulfilment_task", params={"kind": "finance"}).json()["items"]
    assert any(t["title"] == "催收：交付款" for t in finance_tasks)
    assert "逾期 7 天" in inbox_of(sales)["qian.manager"][-1]
    assert sales.service.get("sales", "payment_milestone", milestones[0]["id"])["status"] == "paid"
