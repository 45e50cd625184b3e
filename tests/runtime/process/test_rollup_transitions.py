"""A rollup recomputed by a change of other records takes the automatic transitions it makes hold.

A bill totals its payments (`paid = SUM(payments.amount WHERE status == 'posted')`); its
workflow moves it to `paid` when the balance reaches 0 and back when a payment is
reversed or deleted. Nobody edits the bill: the payments' writes recompute it, and the
engine takes the transitions in the same transaction, and `transitioned` automations
follow them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from runtime.boot import Runtime
from tests.support import serve, write_files, write_pack

BILL = """
form: bill
label: Bill
backlinks:
  - {key: payments, form: payment, link: bill}
fields:
  - {key: name, type: text, label: Name}
  - {key: amount, type: money, label: Amount, required: true}
  - {key: paid, type: money, label: Paid, formula: "SUM(payments.amount WHERE status == 'posted')"}
  - {key: balance, type: money, label: Balance, formula: "amount - paid"}
  - {key: moves, type: integer, label: Moves, default: 0}
  - key: status
    type: select
    label: Status
    options: [open, partly_paid, paid]
"""

PAYMENT = """
form: payment
label: Payment
fields:
  - {key: bill, type: link, to: bill, label: Bill, required: true}
  - {key: amount, type: money, label: Amount, required: true}
  - key: status
    type: select
    label: Status
    options: [posted, reversed]
"""

FILES = {
    "workflows/bill.yaml": """
        workflow: bill
        form: bill
        field: status
        states:
          - {key: open, initial: true}
          - {key: partly_paid}
          - {key: paid}
        transitions:
          - {action: settle, from: [open, partly_paid], to: paid, auto: true, guard: "balance <= 0"}
          - {action: part, from: [open, paid], to: partly_paid, auto: true, guard: "paid > 0 and balance > 0"}
          - {action: reopen, from: [partly_paid, paid], to: open, auto: true, guard: "paid == 0"}
        """,
    "workflows/payment.yaml": """
        workflow: payment
        form: payment
        field: status
        states:
          - {key: posted, initial: true}
          - {key: reversed, final: true}
        transitions:
          - {action: reverse, from: posted, to: reversed}
        """,
    "automations/bill_moved.yaml": """
        automation: bill_moved
        form: bill
        trigger: transitioned
        effects:
          - set: {moves: "moves + 1"}
        """,
}


@pytest.fixture
def client(db_url: str, tmp_path: Path) -> Iterator[TestClient]:
    pack = write_pack(tmp_path / "pack", {"bill": BILL, "payment": PAYMENT})
    write_files(pack, FILES)
    runtime: Runtime
    runtime, api = serve(pack, db_url, tmp_path / "files")
    yield api
    runtime.engine.dispose()


def bill(client: TestClient, record_id: int) -> dict[str, object]:
    found: dict[str, object] = client.get(f"/api/v1/t/bill/{record_id}").json()
    return found


def test_payments_move_the_bill_they_pay_and_reversing_one_moves_it_back(client: TestClient) -> None:
    made = client.post("/api/v1/t/bill", json={"name": "B1", "amount": "100.00"}).json()
    record = int(made["id"])
    assert made["status"] == "open"

    first = client.post("/api/v1/t/payment", json={"bill": record, "amount": "40.00"})
    assert first.status_code == 201, first.text
    now = bill(client, record)
    assert (now["status"], now["paid"], now["balance"]) == ("partly_paid", "40.00", "60.00")

    second = client.post("/api/v1/t/payment", json={"bill": record, "amount": "60.00"}).json()
    now = bill(client, record)
    assert (now["status"], now["balance"]) == ("paid", "0.00")
    assert now["moves"] == 2, "transitioned automations follow the automatic transitions"

    # reversing a payment (a transition of the payment) recomputes the bill, which goes back
    back = client.post(f"/api/v1/t/payment/{second['id']}/transitions/reverse", json={})
    assert back.status_code == 200, back.text
    now = bill(client, record)
    assert (now["status"], now["paid"], now["balance"]) == ("partly_paid", "40.00", "60.00")

    # deleting the other one empties it: the bill is open again
    assert client.delete(f"/api/v1/t/payment/{first.json()['id']}").status_code == 204
    now = bill(client, record)
    assert (now["status"], now["paid"]) == ("open", "0.00")

    history = client.get(f"/api/v1/t/bill/{record}/history").json()["items"]
    moves = [h["changes"]["action"] for h in history if h["action"] == "transition"]
    assert sorted(moves) == ["part", "part", "reopen", "settle"]


def test_a_payment_moved_to_another_bill_moves_both(client: TestClient) -> None:
    one = int(client.post("/api/v1/t/bill", json={"name": "B1", "amount": "50.00"}).json()["id"])
    two = int(client.post("/api/v1/t/bill", json={"name": "B2", "amount": "50.00"}).json()["id"])
    payment = client.post("/api/v1/t/payment", json={"bill": one, "amount": "50.00"}).json()
    assert bill(client, one)["status"] == "paid"
    moved = client.patch(f"/api/v1/t/payment/{payment['id']}", json={"bill": two})
    assert moved.status_code == 200, moved.text
    assert (bill(client, one)["status"], bill(client, two)["status"]) == ("open", "paid")
