"""Rollups across links: formulas over the records linking to a record (a form's `backlinks`),
filtered with WHERE, kept right when those records are created, changed, moved to another
parent, deleted or merged — through the records service, so automations' writes too — and
computed in SQL, one statement for a whole list, in `where=` filters; read through the
reader's row scope there, hidden fields unknown; checked at load with positions. Both
databases."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from runtime.boot import Runtime
from runtime.loading.loader import load_pack
from runtime.loading.problems import DefinitionError
from tests.support import admin_token, count_queries, serve, user_token, write_files, write_pack

APP = """\
    app: t
    label: Test
    version: '1'
    roles:
      - {key: rep}
      - {key: boss}
    """
FORMS = {
    "account": """\
        form: account
        label: Account
        title_field: name
        owner_field: owner
        permissions:
          - {roles: [rep], can: [create, read, update], scope: own}
          - {roles: [boss], can: [create, read, update, delete], scope: all}
        backlinks:
          - {key: payments, form: payment, link: account}
        fields:
          - {key: name, type: text, required: true}
          - {key: owner, type: user, default: current_user}
          - {key: credit, type: money}
          - key: paid
            type: money
            formula: "SUM(payments.amount WHERE status == 'confirmed')"
          - {key: payment_count, type: integer, max: 5, formula: "COUNT(payments)"}
          - {key: balance, type: money, formula: "COALESCE(credit, 0) - paid"}
          - {key: fees, type: money, formula: "SUM(payments.fee)", hidden_for: [rep]}
          - {key: total_cny, type: money, formula: "SUM(payments.amount_cny)"}
        duplicates:
          - [name]
        """,
    "payment": """\
        form: payment
        label: Payment
        permissions:
          - {roles: [rep], can: [create, read, update], scope: own}
          - {roles: [boss], can: [create, read, update, delete], scope: all}
        fields:
          - {key: reference, type: text}
          - {key: account, type: link, to: account, on_delete: set_null}
          - {key: amount, type: money}
          - {key: status, type: select, options: [draft, confirmed], default: draft}
          - {key: fee, type: money, hidden_for: [rep]}
          - {key: amount_cny, type: money, formula: "amount * COALESCE(rates.fx, 1)"}
        duplicates:
          - [reference]
        """,
    "rates": """\
        form: rates
        label: Rates
        single: true
        permissions:
          - {roles: [rep, boss], can: [read], scope: all}
        fields:
          - {key: fx, type: decimal, precision: 12, scale: 4}
        """,
}
AUTOMATION = """\
    automation: confirm_big
    form: payment
    trigger: created
    when: "amount >= 1000"
    effects:
      - set: {status: "'confirmed'"}
    """


@dataclass
class Books:
    runtime: Runtime
    admin: TestClient
    rep: TestClient
    boss: TestClient

    def make(self, form: str, body: dict[str, Any], client: TestClient | None = None) -> int:
        answer = (client or self.admin).post(f"/api/v1/t/{form}", json=body)
        assert answer.status_code == 201, answer.text
        return int(answer.json()["id"])

    def account(self, account_id: int) -> dict[str, Any]:
        answer = self.admin.get(f"/api/v1/t/account/{account_id}")
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    def rollups(self, account_id: int) -> tuple[Decimal, int, Decimal]:
        found = self.account(account_id)
        return Decimal(found["paid"]), found["payment_count"], Decimal(found["balance"])

    def pay(self, account: int | None, amount: str, status: str = "confirmed", **more: Any) -> int:
        return self.make("payment", {"account": account, "amount": amount, "status": status, **more})


def _client(runtime: Runtime, name: str, roles: tuple[str, ...]) -> TestClient:
    token = user_token(runtime.engine, name, roles)
    return TestClient(runtime.api, headers={"Authorization": f"Bearer {token}"})


@pytest.fixture
def books(db_url: str, tmp_path: Path) -> Iterator[Books]:
    pack = write_files(write_pack(tmp_path / "pack", FORMS), {"app.yaml": APP})
    write_files(pack, {"automations/confirm_big.yaml": AUTOMATION})
    runtime, admin = serve(pack, db_url, tmp_path / "files")
    rep, boss = _client(runtime, "rep", ("rep",)), _client(runtime, "boss", ("boss",))
    try:
        yield Books(runtime, admin, rep, boss)
    finally:
        runtime.engine.dispose()


# -- kept right ------------------------------------------------------------------------------


def test_a_rollup_follows_create_update_and_delete(books: Books) -> None:
    account = books.make("account", {"name": "Acme", "credit": "500"})
    assert books.rollups(account) == (Decimal("0.00"), 0, Decimal("500.00"))
    first = books.pay(account, "100")
    books.pay(account, "40", status="draft")
    assert books.rollups(account) == (Decimal("100.00"), 2, Decimal("400.00")), (
        "drafts are counted, not summed"
    )
    answer = books.admin.patch(f"/api/v1/t/payment/{first}", json={"amount": "150.50"})
    assert answer.status_code == 200, answer.text
    assert books.rollups(account) == (Decimal("150.50"), 2, Decimal("349.50"))
    books.admin.patch(f"/api/v1/t/payment/{first}", json={"status": "draft"})
    assert books.rollups(account)[0] == Decimal("0.00")
    books.admin.patch(f"/api/v1/t/payment/{first}", json={"status": "confirmed"})
    assert books.admin.delete(f"/api/v1/t/payment/{first}").status_code == 204
    assert books.rollups(account) == (Decimal("0.00"), 1, Decimal("500.00"))
    version = books.account(account)["version"]
    books.pay(account, "1")
    assert books.account(account)["version"] == version, "a rollup is the record's own data, not an edit"


def test_a_payment_moving_to_another_account_leaves_the_one_and_joins_the_other(books: Books) -> None:
    one, other = books.make("account", {"name": "One"}), books.make("account", {"name": "Other"})
    payment = books.pay(one, "70")
    books.pay(other, "5")
    answer = books.admin.patch(f"/api/v1/t/payment/{payment}", json={"account": other})
    assert answer.status_code == 200, answer.text
    assert books.rollups(one)[:2] == (Decimal("0.00"), 0)
    assert books.rollups(other)[:2] == (Decimal("75.00"), 2)
    books.admin.patch(f"/api/v1/t/payment/{payment}", json={"account": None})
    assert books.rollups(other)[:2] == (Decimal("5.00"), 1)


def test_an_account_saved_itself_keeps_its_rollups(books: Books) -> None:
    account = books.make("account", {"name": "Acme", "credit": "10"})
    books.pay(account, "3")
    answer = books.admin.patch(f"/api/v1/t/account/{account}", json={"credit": "20"})
    assert answer.status_code == 200, answer.text
    assert (answer.json()["paid"], answer.json()["balance"]) == ("3.00", "17.00")


def test_bulk_creates_and_automations_keep_rollups_right(books: Books) -> None:
    account = books.make("account", {"name": "Acme"})
    body = [{"account": account, "amount": "2", "status": "confirmed"} for _ in range(3)]
    assert books.admin.post("/api/v1/t/payment/bulk", json=body).status_code in (200, 201)
    assert books.rollups(account)[:2] == (Decimal("6.00"), 3)
    books.pay(account, "1000", status="draft")  # the automation confirms it
    assert books.rollups(account)[:2] == (Decimal("1006.00"), 4)


def test_a_rollup_breaking_its_fields_max_refuses_the_write(books: Books) -> None:
    account = books.make("account", {"name": "Acme"})
    for _ in range(5):
        books.pay(account, "1")
    answer = books.admin.post("/api/v1/t/payment", json={"account": account, "amount": "1"})
    assert answer.status_code == 422, answer.text
    problem = answer.json()["errors"][0]
    assert problem["code"] == "recompute" and "payment_count of account" in problem["message"]
    assert books.rollups(account)[1] == 5, "nothing of the refused write is kept"


def test_merging_payments_moves_them_out_of_the_rollups(books: Books) -> None:
    one, other = books.make("account", {"name": "One"}), books.make("account", {"name": "Other"})
    kept = books.pay(one, "100", reference="R-1")
    gone = _duplicate(books, other, "50", "r 1")
    answer = books.admin.post(f"/api/v1/t/payment/{kept}/merge", json={"merge": [gone]})
    assert answer.status_code == 200, answer.text
    assert books.rollups(one)[:2] == (Decimal("100.00"), 1)
    assert books.rollups(other)[:2] == (Decimal("0.00"), 0), "a merged payment counts no more"
    again = _duplicate(books, other, "30", "R-1 ")
    moved = books.admin.post(
        f"/api/v1/t/payment/{kept}/merge", json={"merge": [again], "values": {"account": again}}
    )
    assert moved.status_code == 200, moved.text
    assert books.rollups(one)[:2] == (Decimal("0.00"), 0), "the survivor took the other account"
    assert books.rollups(other)[:2] == (Decimal("100.00"), 1)


def _duplicate(books: Books, account: int, amount: str, reference: str) -> int:
    body = {"account": account, "amount": amount, "status": "confirmed", "reference": reference}
    answer = books.admin.post("/api/v1/t/payment?allow_duplicate=true", json=body)
    assert answer.status_code == 201, answer.text
    return int(answer.json()["id"])


def test_merging_accounts_brings_their_payments_along(books: Books) -> None:
    survivor = books.make("account", {"name": "Acme"})
    merged = books.admin.post("/api/v1/t/account?allow_duplicate=true", json={"name": "ACME"}).json()["id"]
    books.pay(survivor, "10")
    books.pay(merged, "5")
    answer = books.admin.post(f"/api/v1/t/account/{survivor}/merge", json={"merge": [merged]})
    assert answer.status_code == 200, answer.text
    assert (answer.json()["paid"], answer.json()["payment_count"]) == ("15.00", 2)
    assert books.rollups(merged)[:2] == (Decimal("0.00"), 0)


def test_deleting_an_account_empties_the_links_of_its_payments(books: Books) -> None:
    account = books.make("account", {"name": "Acme"})
    payment = books.pay(account, "10")
    assert books.admin.delete(f"/api/v1/t/account/{account}").status_code == 204
    assert books.admin.get(f"/api/v1/t/payment/{payment}").json()["account"] is None


def test_rollups_of_computed_columns_follow_the_settings(books: Books) -> None:
    account = books.make("account", {"name": "Acme"})
    books.pay(account, "10")
    assert books.account(account)["total_cny"] == "10.00"
    rates = books.admin.get("/api/v1/t/rates").json()["items"]
    if rates:
        answer = books.admin.patch(f"/api/v1/t/rates/{rates[0]['id']}", json={"fx": "7.1"})
    else:
        answer = books.admin.post("/api/v1/t/rates", json={"fx": "7.1"})
    assert answer.status_code in (200, 201), answer.text
    assert books.account(account)["total_cny"] == "71.00"


def test_parallel_writes_of_one_accounts_payments_all_count(books: Books) -> None:
    """Each write locks the account before it counts, so none counts without another's payment."""
    target, source = books.make("account", {"name": "Target"}), books.make("account", {"name": "Source"})
    moving = [books.pay(source, "1") for _ in range(3)]
    token = admin_token(books.runtime.engine)
    gate = threading.Barrier(5)

    def run(call: Callable[[TestClient], Any]) -> int:
        client = TestClient(books.runtime.api, headers={"Authorization": f"Bearer {token}"})
        gate.wait()
        return int(call(client).status_code)

    paid = {"amount": "10", "status": "confirmed"}
    calls: list[Callable[[TestClient], Any]] = [
        *(lambda c, p=p: c.patch(f"/api/v1/t/payment/{p}", json={"account": target}) for p in moving),
        *(lambda c: c.post("/api/v1/t/payment", json={**paid, "account": target}) for _ in range(2)),
    ]
    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        codes = list(pool.map(run, calls))
    assert sorted(codes) == [200, 200, 200, 201, 201]
    assert books.rollups(target)[:2] == (Decimal("23.00"), 5)
    assert books.rollups(source)[:2] == (Decimal("0.00"), 0)


# -- in SQL: filters and sorts -------------------------------------------------------------------


def _listed(client: TestClient, **params: str) -> list[str]:
    answer = client.get("/api/v1/t/account", params=params)
    assert answer.status_code == 200, answer.text
    return [item["name"] for item in answer.json()["items"]]


def test_lists_filter_and_sort_on_rollups_in_one_statement(books: Books) -> None:
    names = []
    for index in range(6):
        account = books.make("account", {"name": f"A{index}"})
        names.append(f"A{index}")
        for _ in range(index % 3):
            books.pay(account, str(10 * (index + 1)))
        books.pay(account, "1", status="draft")
    where = "SUM(payments.amount WHERE status == 'confirmed') >= 20 and COUNT(payments) > 1"
    assert _listed(books.admin, where=where, sort="-paid") == ["A5", "A2", "A4", "A1"]
    assert _listed(books.admin, where="COUNT(payments WHERE status == 'draft') == 1", sort="name") == names
    assert _listed(books.admin, paid__gt="55", sort="-paid") == ["A5", "A2"]

    def statements(limit: str) -> int:
        with count_queries(books.runtime.engine) as seen:
            _listed(books.admin, where=where, sort="-paid", limit=limit)
        return len(seen)

    assert statements("1") == statements("50"), "no statement per record"


def test_a_readers_filter_counts_only_the_payments_they_may_read(books: Books) -> None:
    account = books.make("account", {"name": "Mine"}, books.rep)
    books.make("payment", {"account": account, "amount": "10", "status": "confirmed"}, books.rep)
    books.make("payment", {"account": account, "amount": "99", "status": "confirmed", "fee": "1"}, books.boss)
    assert books.rep.get(f"/api/v1/t/account/{account}").json()["payment_count"] == 2, "stored: every payment"
    assert _listed(books.rep, where="COUNT(payments) == 1") == ["Mine"], "the rep's own payment only"
    assert _listed(books.rep, where="SUM(payments.amount) == 10") == ["Mine"]
    assert _listed(books.boss, where="SUM(payments.amount) == 109") == ["Mine"]


@pytest.mark.parametrize(
    "where", ["SUM(payments.fee) > 0", "COUNT(payments WHERE fee > 0) > 0", "MAX(payments.fee) == null"]
)
def test_a_field_hidden_from_the_reader_is_unknown_in_a_rollup(books: Books, where: str) -> None:
    answer = books.rep.get("/api/v1/t/account", params={"where": where})
    assert answer.status_code == 422, answer.text
    problem = answer.json()["errors"][0]
    assert (problem["field"], problem["code"]) == ("query.where", "unknown_field")
    assert books.boss.get("/api/v1/t/account", params={"where": where}).status_code == 200


def test_a_backlink_whose_form_or_link_the_reader_may_not_read_is_unknown(
    db_url: str, tmp_path: Path
) -> None:
    forms = {
        "account": """\
            form: account
            label: Account
            permissions:
              - {roles: [rep, boss], can: [create, read], scope: all}
            backlinks:
              - {key: payments, form: payment, link: account}
              - {key: notes, form: note, link: account}
            fields:
              - {key: name, type: text}
            """,
        "payment": """\
            form: payment
            label: Payment
            permissions:
              - {roles: [rep, boss], can: [create, read], scope: all}
            fields:
              - {key: account, type: link, to: account, hidden_for: [rep]}
            """,
        "note": """\
            form: note
            label: Note
            permissions:
              - {roles: [boss], can: [create, read], scope: all}
            fields:
              - {key: account, type: link, to: account}
            """,
    }
    pack = write_files(write_pack(tmp_path / "pack", forms), {"app.yaml": APP})
    runtime, _ = serve(pack, db_url, tmp_path / "files")
    try:
        rep, boss = _client(runtime, "rep", ("rep",)), _client(runtime, "boss", ("boss",))
        for where in ("COUNT(payments) == 0", "COUNT(notes) == 0"):
            answer = rep.get("/api/v1/t/account", params={"where": where})
            assert answer.status_code == 422 and answer.json()["errors"][0]["code"] == "unknown_field", where
            assert boss.get("/api/v1/t/account", params={"where": where}).status_code == 200
    finally:
        runtime.engine.dispose()


# -- checked at load ---------------------------------------------------------------------------


def _problems(tmp_path: Path, forms: dict[str, str]) -> list[str]:
    pack = write_files(write_pack(tmp_path / "pack", forms), {"app.yaml": APP})
    with pytest.raises(DefinitionError) as caught:
        load_pack(pack)
    return [str(p) for p in caught.value.problems]


def test_backlinks_are_checked_with_positions(tmp_path: Path) -> None:
    account = """\
        form: account
        label: Account
        backlinks:
          - {key: payments, form: paymnet, link: account}
          - {key: notes, form: note, link: acount}
          - {key: others, form: note, link: text}
          - {key: name, form: note, link: account}
          - {key: lines, form: line, link: account}
          - {key: invoices, form: invoice, link: customer}
        fields:
          - {key: name, type: text}
          - {key: total, type: money, formula: "SUM(notes.size WHERE text == 'x')"}
          - {key: bad, type: integer, formula: "COUNT(invoices WHERE account.name == 'x')"}
          - {key: worse, type: integer, formula: "SUM(notes.size WHERE)"}
        """
    forms = {
        "account": account,
        "payment": "form: payment\nlabel: Payment\nfields:\n  - {key: account, type: link, to: account}\n",
        "note": """\
            form: note
            label: Note
            backlinks:
              - {key: invoices, form: invoice, link: customer}
            fields:
              - {key: text, type: text}
              - {key: account, type: link, to: account}
              - {key: size, type: text}
              - {key: billed, type: boolean, fetch: "COUNT(invoices) > 0"}
            """,
        "line": "form: line\nlabel: Line\nchild: true\nfields:\n  - {key: x, type: text}\n",
        "invoice": """\
            form: invoice
            label: Invoice
            fields:
              - {key: customer, type: link, to: note}
            """,
    }
    assert _problems(tmp_path, forms) == [
        "forms/account.yaml:4:27: unknown form 'paymnet' (did you mean 'payment'?)",
        "forms/account.yaml:5:36: unknown field 'acount' of note (did you mean 'account'?)",
        "forms/account.yaml:6:37: 'text' is not a link field of note",
        "forms/account.yaml:7:11: 'name' is already a field of account",
        "forms/account.yaml:8:24: 'line' is a child form: its rows cannot link to records",
        "forms/account.yaml:9:42: 'invoice.customer' links to note, not to account",
        "forms/account.yaml:12:45: SUM needs a number, not text",
        "forms/account.yaml:13:62: a WHERE condition reads the fields of the rows of 'invoices' only, "
        "not 'account.name'",
        "forms/account.yaml:14:63: unexpected ')'",
        "forms/note.yaml:9:42: a fetch cannot read the record's backlinked records ('invoices'); "
        "use a formula",
    ]


def test_rollups_may_not_read_each_other_in_a_circle(tmp_path: Path) -> None:
    forms = {
        "account": """\
            form: account
            label: Account
            backlinks:
              - {key: subsidiaries, form: account, link: parent}
            fields:
              - {key: parent, type: link, to: account, on_delete: set_null}
              - {key: own, type: money}
              - {key: group_total, type: money, formula: "own + SUM(subsidiaries.group_total)"}
            """,
    }
    assert _problems(tmp_path, forms) == [
        "forms/account.yaml:8:46: formulas refer to each other in a circle through backlinks: "
        "account.group_total → account.group_total",
    ]


def test_a_rollup_shown_to_a_role_may_not_read_what_is_hidden_from_it(tmp_path: Path) -> None:
    forms = {
        "account": """\
            form: account
            label: Account
            permissions:
              - {roles: [rep, boss], can: [read], scope: all}
            backlinks:
              - {key: payments, form: payment, link: account}
              - {key: notes, form: note, link: account}
            fields:
              - {key: fees, type: money, formula: "SUM(payments.amount WHERE fee > 0)"}
              - {key: note_count, type: integer, formula: "COUNT(notes)"}
              - {key: fine, type: money, formula: "SUM(payments.amount)"}
              - {key: told, type: integer, formula: "COUNT(notes)", reveals_hidden: true}
            """,
        "payment": """\
            form: payment
            label: Payment
            permissions:
              - {roles: [rep, boss], can: [read], scope: all}
            fields:
              - {key: account, type: link, to: account}
              - {key: amount, type: money}
              - {key: fee, type: money, hidden_for: [rep]}
            """,
        "note": """\
            form: note
            label: Note
            permissions:
              - {roles: [boss], can: [read], scope: all}
            fields:
              - {key: account, type: link, to: account}
            """,
    }
    problems = _problems(tmp_path, forms)
    assert problems == [
        "forms/account.yaml:9:39: 'fees' is shown to role 'rep' but is computed from 'payments.fee', "
        "which is hidden from 'rep'; hide 'fees' from 'rep' too, or mark it reveals_hidden: true",
        "forms/account.yaml:10:47: 'note_count' is shown to role 'rep' but is computed from 'notes', "
        "which is hidden from 'rep'; hide 'note_count' from 'rep' too, or mark it reveals_hidden: true",
    ]


# -- publishing ---------------------------------------------------------------------------------

V1_ACCOUNT = """\
form: account
label: Account
fields:
  - {key: name, type: text}
"""
V1_PAYMENT = """\
form: payment
label: Payment
fields:
  - {key: account, type: link, to: account}
  - {key: amount, type: money}
  - {key: net, type: money, formula: "amount"}
"""


def test_a_published_rollup_is_computed_for_every_stored_record(db_url: str, tmp_path: Path) -> None:
    from builder.publishing.publish import publish
    from runtime.boot import start
    from runtime.db import make_engine

    runtime = start(
        [write_pack(tmp_path / "v1", {"account": V1_ACCOUNT, "payment": V1_PAYMENT})], db_url, tmp_path
    )
    service = runtime.service
    ids = [service.create("t", "account", {"name": name})["id"] for name in ("a", "b")]
    for account, amount in ((ids[0], "10"), (ids[0], "5"), (ids[1], "7")):
        service.create("t", "payment", {"account": account, "amount": amount})
    runtime.engine.dispose()
    engine = make_engine(db_url)
    try:
        rolled = V1_ACCOUNT + '  - {key: total, type: money, formula: "SUM(payments.net WHERE net > 6)"}\n'
        rolled += "backlinks: [{key: payments, form: payment, link: account}]\n"
        publish(engine, load_pack(write_pack(tmp_path / "v2", {"account": rolled, "payment": V1_PAYMENT})))
        assert _totals(engine) == [Decimal("10.00"), Decimal("7.00")]
        doubled = V1_PAYMENT.replace('formula: "amount"', 'formula: "amount * 2"')
        publish(engine, load_pack(write_pack(tmp_path / "v3", {"account": rolled, "payment": doubled})))
        assert _totals(engine) == [Decimal("30.00"), Decimal("14.00")], "the rollup follows the new formula"
    finally:
        engine.dispose()


def _totals(engine: Any) -> list[Decimal]:
    from sqlalchemy import text

    with engine.connect() as conn:
        values = conn.execute(text("SELECT total FROM t__account ORDER BY id")).scalars()
        return [Decimal(str(value)).quantize(Decimal("0.01")) for value in values]
