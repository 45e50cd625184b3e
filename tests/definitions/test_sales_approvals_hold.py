"""The sales pack's approvals hold what they approved, and keep to time (both databases).

Figures come from the requirement sheet (/work/shared/SALES_PACK.md) and the pack:
- discount bands, by the largest effective discount of a line, measured against the list
  price: ≤ 10 % none; ≤ 30 % manager; ≤ 50 % manager, director; > 50 % manager,
  director, CFO. The licence's list price is 1,200 (demo data).
- contract bands by amount: ≤ 100k manager; ≤ 1M manager, director; > 1M + CEO; then two
  legal users always.
- every step of both approvals reminds after 1 working day and escalates after 2, on
  China's 2026 holiday schedule (National Day: 1–7 Oct off, Sat 10 Oct worked).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from fastapi.testclient import TestClient

from runtime.boot import Runtime
from runtime.loading.loader import load_pack
from runtime.model.calendar import add_workdays
from runtime.process.engine import engine_for
from runtime.process.worker import Worker
from tests.definitions.sales_pack import as_user
from tests.support import SALES, ManualClock

SHANGHAI = dt.timezone(dt.timedelta(hours=8))
START = dt.datetime(2026, 9, 30, 10, 0, tzinfo=SHANGHAI)  # Wednesday, the eve of National Day
LIST_PRICE = "1200.00"  # the licence's list price in the demo catalogue


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START.astimezone(dt.UTC))


# -- helpers -------------------------------------------------------------------------------


def act(client: TestClient, form: str, record: int, action: str) -> dict[str, Any]:
    answer = client.post(f"/api/v1/sales/{form}/{record}/transitions/{action}", json={})
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def tasks_on(runtime: Runtime, username: str, record: int) -> list[dict[str, Any]]:
    items = as_user(runtime, username).get("/api/v1/tasks").json()["items"]
    return [t for t in items if t["record_id"] == record]


def approve_all(runtime: Runtime, record: int, *approvers: str) -> None:
    """Each approver, in order, finds the record's one task in their inbox and approves it."""
    for username in approvers:
        found = tasks_on(runtime, username, record)
        assert len(found) == 1, (username, found)
        client = as_user(runtime, username)
        answer = client.post(f"/api/v1/tasks/{found[0]['id']}/approve", json={"comment": "ok"})
        assert answer.status_code == 200, answer.text


def messages(runtime: Runtime, username: str) -> list[str]:
    """The user's notifications, oldest first, in their language (the demo users read Chinese)."""
    items = as_user(runtime, username).get("/api/v1/notifications", params={"limit": 200}).json()["items"]
    return [item["message"] for item in reversed(items)]


def at(runtime: Runtime, clock: ManualClock, local: str) -> None:
    """Move the clock to a Shanghai time such as '2026-10-08 10:00', then run what is due."""
    clock.now = dt.datetime.fromisoformat(local).replace(tzinfo=SHANGHAI).astimezone(dt.UTC)
    Worker(engine_for(runtime.service), "test").run_until_idle()


def licence(runtime: Runtime) -> int:
    product = runtime.service.list_page("sales", "product", [])["items"][0]
    assert product["sku"] == "FL-PLT-USR" and str(product["list_price"]) == LIST_PRICE
    return int(product["id"])


def new_quote(runtime: Runtime, *lines: tuple[str, str, str]) -> dict[str, Any]:
    """A quote by li.rep with licence lines of (quantity, unit price, discount)."""
    opportunity = runtime.service.list_page("sales", "opportunity", [])["items"][0]
    product = licence(runtime)
    rows = [{"product": product, "quantity": q, "unit_price": p, "discount_pct": d} for q, p, d in lines]
    answer = as_user(runtime, "li.rep").post(
        "/api/v1/sales/quote",
        json={"opportunity": opportunity["id"], "account": opportunity["account"]["id"], "lines": rows},
    )
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


def new_contract(runtime: Runtime, amount: str) -> dict[str, Any]:
    """A contract by li.rep for `amount`: one line, a 30/70 payment plan."""
    account = runtime.service.list_page("sales", "account", [])["items"][0]["id"]
    answer = as_user(runtime, "li.rep").post(
        "/api/v1/sales/contract",
        json={
            "subject": "销售云平台",
            "account": account,
            "amount": amount,
            "delivery_date": "2026-12-20",
            "lines": [{"product": licence(runtime), "quantity": 100, "unit_price": "800"}],
            "milestones": [
                {"name": "预付款", "percent": "0.3", "amount": "24000", "due_date": "2026-11-10"},
                {"name": "交付款", "percent": "0.7", "amount": "56000", "due_date": "2026-12-20"},
            ],
        },
    )
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


def problem(answer: Any) -> tuple[int, str | None, str, str]:
    first = answer.json()["errors"][0]
    return answer.status_code, first["field"], first["code"], first["message"]


# -- the definitions, without a database ------------------------------------------------------


def test_every_quote_and_contract_step_reminds_after_one_working_day_and_escalates_after_two() -> None:
    app = load_pack(SALES)
    material = {
        "quote_discount": ["lines", "max_discount_pct", "grand_total"],
        "contract_approval": ["amount", "lines", "milestones"],
    }
    for key, items in material.items():
        approval = app.approval(key)
        assert approval is not None
        assert [(s.remind_after, s.escalate_after, s.escalate) for s in approval.steps] == [
            ("1wd", "2wd", "add")
        ] * len(approval.steps), key
        assert (approval.material, approval.on_change) == (items, "reapprove")


def test_the_working_calendar_is_chinas_2026_schedule() -> None:
    calendar = load_pack(SALES).calendar
    day = dt.date
    # National Day: 1–7 Oct off, Sun 20 Sep and Sat 10 Oct worked.
    assert add_workdays(day(2026, 9, 30), 1, calendar) == day(2026, 10, 8)
    assert add_workdays(day(2026, 10, 9), 1, calendar) == day(2026, 10, 10)
    assert add_workdays(day(2026, 9, 18), 1, calendar) == day(2026, 9, 20)
    # Spring Festival: 15–23 Feb off, Sat 14 Feb and Sat 28 Feb worked.
    assert add_workdays(day(2026, 2, 13), 1, calendar) == day(2026, 2, 14)
    assert add_workdays(day(2026, 2, 13), 2, calendar) == day(2026, 2, 24)
    assert add_workdays(day(2026, 2, 27), 1, calendar) == day(2026, 2, 28)
    # New Year: 1–3 Jan off, Sun 4 Jan worked; Labour Day 1–5 May off, Sat 9 May worked.
    assert add_workdays(day(2025, 12, 31), 1, calendar) == day(2026, 1, 4)
    assert add_workdays(day(2026, 4, 30), 1, calendar) == day(2026, 5, 6)
    assert add_workdays(day(2026, 5, 8), 1, calendar) == day(2026, 5, 9)


# -- quotes ------------------------------------------------------------------------------------


def test_a_quote_approved_at_45_percent_and_raised_to_70_goes_back_to_approval_and_reaches_the_cfo(
    sales: Runtime,
) -> None:
    rep = as_user(sales, "li.rep")
    quote = new_quote(sales, ("10", LIST_PRICE, "0.45"), ("5", LIST_PRICE, "0.05"))
    assert quote["max_discount_pct"] == "0.450000"
    act(rep, "quote", quote["id"], "submit")
    approve_all(sales, quote["id"], "qian.manager", "zhao.director")  # 45 %: manager, director
    assert act(rep, "quote", quote["id"], "send")["status"] == "sent"

    lines = [{k: row[k] for k in ("id", "product", "quantity", "unit_price")} for row in quote["lines"]]
    lines[0]["discount_pct"], lines[1]["discount_pct"] = "0.70", "0.05"
    for row in lines:
        row["product"] = row["product"]["id"]
    changed = rep.patch(f"/api/v1/sales/quote/{quote['id']}", json={"lines": lines})
    assert changed.status_code == 200, changed.text
    assert (changed.json()["status"], changed.json()["max_discount_pct"]) == ("pending_approval", "0.700000")
    assert tasks_on(sales, "chen.cfo", quote["id"]) == []  # not before the manager and the director
    approve_all(sales, quote["id"], "qian.manager", "zhao.director", "chen.cfo")  # 70 %: and the CFO
    assert sales.service.get("sales", "quote", quote["id"])["status"] == "approved"

    history = rep.get(f"/api/v1/sales/quote/{quote['id']}/history").json()["items"]
    [again] = [h for h in history if h["action"] == "reapproval"]
    assert again["changes"] == {
        "approval": "quote_discount",
        "fields": ["lines", "max_discount_pct", "grand_total"],
    }
    assert [h["action"] for h in history].count("approve") == 5  # the first two decisions stay
    # The rep made the change: no notice tells them of their own edit.
    assert not any("已被修改" in m for m in messages(sales, "li.rep"))
    # Terms are not what the discount approval approved: editing them changes nothing.
    terms = rep.patch(f"/api/v1/sales/quote/{quote['id']}", json={"terms": "付款：预付 30%"})
    assert terms.status_code == 200 and terms.json()["status"] == "approved"


@pytest.mark.parametrize(
    ("unit_price", "discount", "effective", "approvers"),
    [
        # 540 against a list price of 1,200 is 55 % off, though no discount is stated.
        ("540", "0", "0.550000", ["qian.manager", "zhao.director", "chen.cfo"]),
        # 1,000 less 10 % is 900: 25 % below list.
        ("1000", "0.10", "0.250000", ["qian.manager"]),
        # 1,500 less 20 % is 1,200, the list price itself: no discount at all.
        ("1500", "0.20", "0.000000", []),
    ],
)
def test_a_line_priced_below_list_routes_by_its_real_discount(
    sales: Runtime, unit_price: str, discount: str, effective: str, approvers: list[str]
) -> None:
    quote = new_quote(sales, ("10", unit_price, discount), ("5", LIST_PRICE, "0"))
    assert [row["effective_discount_pct"] for row in quote["lines"]] == [effective, "0.000000"]
    assert quote["max_discount_pct"] == effective
    submitted = act(as_user(sales, "li.rep"), "quote", quote["id"], "submit")
    assert submitted["status"] == ("pending_approval" if approvers else "approved")
    approve_all(sales, quote["id"], *approvers)
    assert sales.service.get("sales", "quote", quote["id"])["status"] == "approved"


# -- contracts ---------------------------------------------------------------------------------


def test_an_approved_contract_whose_amount_rises_goes_back_through_the_bands(sales: Runtime) -> None:
    rep, admin = as_user(sales, "li.rep"), as_user(sales, "admin")
    contract = new_contract(sales, "80000")
    act(rep, "contract", contract["id"], "submit")
    approve_all(sales, contract["id"], "qian.manager", "wang.legal", "he.legal")  # ≤ 100k: no director
    assert sales.service.get("sales", "contract", contract["id"])["status"] == "approved"

    raised = admin.patch(f"/api/v1/sales/contract/{contract['id']}", json={"amount": "150000"})
    assert raised.status_code == 200, raised.text
    assert raised.json()["status"] == "in_approval"
    number = raised.json()["number"]
    assert f"合同 {number} 的金额、明细或付款节点已被修改，已重新提交审批" in messages(sales, "li.rep")
    # 150,000 is above 100,000: the director now approves between the manager and legal.
    approve_all(sales, contract["id"], "qian.manager", "zhao.director", "wang.legal", "he.legal")
    assert sales.service.get("sales", "contract", contract["id"])["status"] == "approved"


def test_a_signed_contracts_amount_lines_and_milestones_are_refused_with_a_plain_message(
    sales: Runtime,
) -> None:
    rep = as_user(sales, "li.rep")
    contract = new_contract(sales, "80000")
    act(rep, "contract", contract["id"], "submit")
    approve_all(sales, contract["id"], "qian.manager", "wang.legal", "he.legal")
    act(rep, "contract", contract["id"], "send_for_signature")
    assert act(rep, "contract", contract["id"], "sign")["status"] == "signed"

    url = f"/api/v1/sales/contract/{contract['id']}"
    assert problem(rep.patch(url, json={"amount": "90000"})) == (
        409,
        "amount",
        "material",
        "合同签署后不能修改合同金额；如需变更，请另立合同（补充协议）",  # in the rep's language
    )
    line = {"product": licence(sales), "quantity": 120, "unit_price": "800"}
    assert problem(rep.patch(url, json={"lines": [line]}))[:3] == (409, "lines", "material")
    assert problem(rep.patch(url, json={"milestones": []}))[:3] == (409, "milestones", "material")
    stored = sales.service.get("sales", "contract", contract["id"])
    assert (stored["amount"], len(stored["lines"]), len(stored["milestones"])) == ("80000.00", 1, 2)
    # The clauses are not held: legal can still correct them.
    clause = as_user(sales, "wang.legal").patch(url, json={"confidentiality": "保密期限五年"})
    assert clause.status_code == 200 and clause.json()["status"] == "signed"


# -- deadlines ---------------------------------------------------------------------------------


def test_quote_steps_remind_after_one_working_day_and_escalate_after_two_over_national_day(
    sales: Runtime, clock: ManualClock
) -> None:
    # Submitted Wed 30 Sep 10:00 at 35 %: manager, then director. 1–7 Oct are holidays.
    quote = new_quote(sales, ("10", LIST_PRICE, "0.35"))
    act(as_user(sales, "li.rep"), "quote", quote["id"], "submit")
    what = f"报价单 {quote['number']}"
    reminder = f"催办：{what} 仍在等待审批（报价折扣审批 · 销售经理）"

    at(sales, clock, "2026-10-07 18:00")  # a week of holiday: no working day has passed
    assert reminder not in messages(sales, "qian.manager")
    at(sales, clock, "2026-10-08 09:59")
    assert reminder not in messages(sales, "qian.manager")
    at(sales, clock, "2026-10-08 10:00")  # Thu 8 Oct, the first working day after
    assert messages(sales, "qian.manager").count(reminder) == 1
    assert tasks_on(sales, "zhao.director", quote["id"]) == []

    at(sales, clock, "2026-10-09 09:59")
    assert tasks_on(sales, "zhao.director", quote["id"]) == []
    at(sales, clock, "2026-10-09 10:00")  # Fri 9 Oct, two working days: escalated to the director
    [escalated] = tasks_on(sales, "zhao.director", quote["id"])
    assert escalated["step"] == "manager"
    assert f"审批超时，已转交给您：{what}（报价折扣审批 · 销售经理，原审批人 钱经理）" in messages(
        sales, "zhao.director"
    )
    assert len(tasks_on(sales, "qian.manager", quote["id"])) == 1  # added beside, not taken away
    assert messages(sales, "qian.manager").count(reminder) == 1  # reminded once only

    # The manager decides after all; the director's step opens Fri 9 Oct 10:00.
    approve_all(sales, quote["id"], "qian.manager")
    [director_task] = tasks_on(sales, "zhao.director", quote["id"])
    assert director_task["step"] == "director"
    director_reminder = f"催办：{what} 仍在等待审批（报价折扣审批 · 销售总监）"
    at(sales, clock, "2026-10-10 09:59")
    assert director_reminder not in messages(sales, "zhao.director")
    at(sales, clock, "2026-10-10 10:00")  # Sat 10 Oct is a working day (调休)
    assert messages(sales, "zhao.director").count(director_reminder) == 1
    at(sales, clock, "2026-10-12 10:00")  # Mon 12 Oct: two working days; nobody above the director
    assert [t["step"] for t in tasks_on(sales, "zhao.director", quote["id"])] == ["director"]
    assert tasks_on(sales, "feng.ceo", quote["id"]) == []
    approve_all(sales, quote["id"], "zhao.director")
    assert sales.service.get("sales", "quote", quote["id"])["status"] == "approved"
