"""Approvals that hold: material fields refused or approved again, released by a state, on every path."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from runtime.db import write
from runtime.identity.directory import create_department, create_user
from runtime.schema.system import process_instances, users
from tests.support import serve, user_token, web_client, write_files, write_pack

APP = """\
app: t
label: T
version: 1.0.0
roles: [{key: rep}, {key: manager}, {key: director}]
"""
LINE = """
form: line
label: {zh: 明细, en: Line}
child: true
fields:
  - {key: item, type: text}
  - {key: discount, type: percent, label: {zh: 折扣率, en: Discount}}
  - {key: amount, type: money}
"""


def document(form: str) -> str:
    return f"""
form: {form}
label: {{zh: 单据, en: {form.capitalize()}}}
title_field: title
fields:
  - {{key: title, type: text, required: true}}
  - {{key: discount, type: percent, label: {{zh: 折扣率, en: Discount}}}}
  - {{key: note, type: text}}
  - {{key: status, type: select, options: [draft, pending, approved, sent, signed]}}
  - {{key: owner, type: user, default: current_user}}
  - {{key: lines, type: table, form: line}}
  - {{key: total, type: money, formula: "SUM(lines.amount)"}}
permissions:
  - {{roles: [rep, manager, director], can: [create, read, update, delete], scope: all}}
"""


def workflow(form: str) -> str:
    return f"""
workflow: {form}_flow
form: {form}
field: status
states:
  - {{key: draft, initial: true}}
  - {{key: pending}}
  - {{key: approved}}
  - {{key: sent}}
  - key: signed
    material: [total, lines, "IF(discount > 0.3, 'big', 'small')"]
    change_message: {{en: "this {form} is signed; amend it with a new one to change {{{{ field }}}}"}}
transitions:
  - {{action: submit, from: draft, to: pending, effects: [{{start_approval: {form}_ok}}]}}
  - {{action: approve, from: pending, to: approved, system: true}}
  - {{action: back, from: pending, to: draft, system: true}}
  - {{action: reopen, from: [approved, sent], to: pending, system: true}}
  - {{action: send, from: approved, to: sent}}
  - {{action: sign, from: sent, to: signed}}
  - {{action: revise, from: [approved, sent], to: draft}}
"""


def approval(form: str, on_change: str) -> str:
    return f"""
approval: {form}_ok
form: {form}
label: {{zh: 折扣审批, en: Discount approval}}
material: [discount, lines, "IF(total > 1000, 'large', 'small')"]
on_change: {on_change}
change_message: {{en: "this {form} is {{{{ status }}}}; revise it to change {{{{ field }}}}"}}
steps:
  - {{name: manager, when: "discount > 0.1", approvers: {{manager: 1, of: owner}}}}
  - {{name: director, when: "discount > 0.3", approvers: {{manager: 2, of: owner}}}}
on_approved: [{{transition: approve}}]
on_rejected: [{{transition: back}}]
on_reapprove: [{{transition: reopen}}]
"""


AUTOMATION = """
automation: note_sets_discount
form: contract
trigger: updated
fields: [note]
when: "note == 'push'"
effects: [{set: {discount: "0.9"}}]
"""


class Office:
    """A rep under a manager under a director, and a pack with a reapproving quote and a refusing contract."""

    def __init__(self, db_url: str, root: Path) -> None:
        pack = write_pack(
            root / "pack", {"quote": document("quote"), "contract": document("contract"), "line": LINE}
        )
        write_files(
            pack,
            {
                "app.yaml": APP,
                "workflows/quote.yaml": workflow("quote"),
                "workflows/contract.yaml": workflow("contract"),
                "approvals/quote.yaml": approval("quote", "reapprove"),
                "approvals/contract.yaml": approval("contract", "refuse"),
                "automations/note.yaml": AUTOMATION,
            },
        )
        self.runtime, _ = serve(pack, db_url, root / "files")
        with write(self.runtime.engine) as conn:
            create_user(conn, "boss", None, roles=("director",))
            create_user(conn, "mgr", None, roles=("manager",))
            create_department(conn, "sales", "Sales", manager="boss")
            create_department(conn, "team", "Team", parent="sales", manager="mgr")
            create_user(conn, "rep", None, roles=("rep",), department="team")
            conn.execute(
                users.update().where(users.c.username == "mgr").values(department_id=_dept(conn, "team"))
            )
            conn.execute(
                users.update().where(users.c.username == "boss").values(department_id=_dept(conn, "sales"))
            )
        self.clients = {
            name: TestClient(
                self.runtime.api,
                headers={"Authorization": f"Bearer {user_token(self.runtime.engine, name, ())}"},
            )
            for name in ("rep", "mgr", "boss")
        }

    def new(self, form: str, discount: str, lines: list[dict[str, Any]] | None = None) -> int:
        rows = lines if lines is not None else [{"item": "a", "amount": "100"}]
        made = self.clients["rep"].post(
            f"/api/v1/t/{form}", json={"title": "Q1", "discount": discount, "lines": rows}
        )
        assert made.status_code == 201, made.text
        return int(made.json()["id"])

    def act(self, user: str, form: str, record: int, action: str) -> Any:
        return self.clients[user].post(f"/api/v1/t/{form}/{record}/transitions/{action}", json={})

    def approve_all(self, form: str, record: int) -> list[str]:
        """Approve open tasks until none is left; answers who approved, in order."""
        who = []
        for _ in range(5):
            for user in ("mgr", "boss"):
                todo = self.clients[user].get("/api/v1/tasks").json()["items"]
                mine = [t for t in todo if t["record_id"] == record and t["form"] == form]
                for task in mine:
                    answer = self.clients[user].post(f"/api/v1/tasks/{task['id']}/approve", json={})
                    assert answer.status_code == 200, answer.text
                    who.append(user)
        return who

    def record(self, form: str, record: int) -> dict[str, Any]:
        return dict(self.clients["boss"].get(f"/api/v1/t/{form}/{record}").json())

    def instances(self, form: str, record: int) -> list[dict[str, Any]]:
        table = process_instances
        with self.runtime.engine.connect() as conn:
            rows = conn.execute(
                select(table.c.state, table.c.released_at)
                .where(table.c.form == form, table.c.record_id == record, table.c.kind == "approval")
                .order_by(table.c.id)
            ).mappings()
            return [dict(row) for row in rows]


def _dept(conn: Any, key: str) -> int:
    from runtime.schema.system import departments

    return int(conn.execute(select(departments.c.id).where(departments.c.key == key)).scalar_one())


@pytest.fixture
def office(db_url: str, tmp_path: Path) -> Iterator[Office]:
    built = Office(db_url, tmp_path)
    yield built
    built.runtime.engine.dispose()


def approved(office: Office, form: str, discount: str) -> int:
    record = office.new(form, discount)
    assert office.act("rep", form, record, "submit").status_code == 200
    office.approve_all(form, record)
    assert office.record(form, record)["status"] == "approved"
    return record


def problem(answer: Any) -> tuple[int, str | None, str, str]:
    first = answer.json()["errors"][0]
    return answer.status_code, first["field"], first["code"], first["message"]


def test_a_material_change_to_an_approved_record_is_refused_with_a_plain_message(office: Office) -> None:
    record = approved(office, "contract", "0.2")
    rep = office.clients["rep"]
    refused = rep.patch(f"/api/v1/t/contract/{record}", json={"discount": "0.45"})
    assert problem(refused) == (
        409,
        "discount",
        "material",
        "this contract is approved; revise it to change Discount",
    )
    assert office.record("contract", record)["discount"] == "0.200000"
    lines = rep.patch(f"/api/v1/t/contract/{record}", json={"lines": [{"item": "b", "amount": "5"}]})
    assert problem(lines)[:3] == (409, "lines", "material")
    assert rep.patch(f"/api/v1/t/contract/{record}", json={"note": "call Tuesday"}).status_code == 200
    assert office.record("contract", record)["status"] == "approved"


def test_a_material_change_while_in_approval_is_refused_but_notes_stay_editable(office: Office) -> None:
    record = office.new("contract", "0.2")
    office.act("rep", "contract", record, "submit")
    rep = office.clients["rep"]
    assert problem(rep.patch(f"/api/v1/t/contract/{record}", json={"discount": "0.05"}))[:3] == (
        409,
        "discount",
        "material",
    )
    assert "in approval" in problem(rep.patch(f"/api/v1/t/contract/{record}", json={"discount": "0.05"}))[3]
    assert rep.patch(f"/api/v1/t/contract/{record}", json={"note": "urgent"}).status_code == 200


def test_an_expression_is_material_only_when_its_value_changes(office: Office) -> None:
    record = approved(office, "contract", "0.2")
    rep = office.clients["rep"]
    row_id = office.record("contract", record)["lines"][0]["id"]
    same_band = [{"id": row_id, "item": "a", "amount": "100"}]
    assert rep.patch(f"/api/v1/t/contract/{record}", json={"lines": same_band}).status_code == 200
    big = rep.patch(
        f"/api/v1/t/contract/{record}", json={"lines": [{"id": row_id, "item": "a", "amount": "5000"}]}
    )
    assert problem(big)[:3] == (
        409,
        "lines",
        "material",
    )  # the table is material itself, and total crosses 1000


def test_automations_are_refused_like_people(office: Office) -> None:
    record = approved(office, "contract", "0.2")
    answer = office.clients["rep"].patch(f"/api/v1/t/contract/{record}", json={"note": "push"})
    assert problem(answer)[:3] == (409, "discount", "material")
    assert office.record("contract", record)["note"] is None  # nothing of the change was kept


def test_an_approved_record_cannot_be_deleted(office: Office) -> None:
    record = approved(office, "contract", "0.2")
    answer = office.clients["rep"].delete(f"/api/v1/t/contract/{record}")
    assert problem(answer)[:3] == (409, None, "locked")
    assert office.record("contract", record)["id"] == record


def test_revising_releases_the_approval_and_the_record_is_editable_again(office: Office) -> None:
    record = approved(office, "contract", "0.2")
    assert office.act("rep", "contract", record, "revise").status_code == 200
    assert office.instances("contract", record)[-1]["released_at"] is not None
    assert (
        office.clients["rep"].patch(f"/api/v1/t/contract/{record}", json={"discount": "0.45"}).status_code
        == 200
    )
    office.act("rep", "contract", record, "submit")
    assert office.approve_all("contract", record) == ["mgr", "boss"]  # 45 %: manager, then director


def test_a_material_change_sends_an_approved_record_back_to_approval_from_the_first_step_that_applies(
    office: Office,
) -> None:
    record = approved(office, "quote", "0.2")
    rep = office.clients["rep"]
    row_id = office.record("quote", record)["lines"][0]["id"]
    changed = rep.patch(
        f"/api/v1/t/quote/{record}",
        json={"discount": "0.45", "lines": [{"id": row_id, "item": "a", "discount": "0.7", "amount": "100"}]},
    )
    assert changed.status_code == 200, changed.text
    assert office.record("quote", record)["status"] == "pending"
    assert [i["state"] for i in office.instances("quote", record)] == ["approved", "running"]
    assert office.instances("quote", record)[0]["released_at"] is not None
    assert office.approve_all("quote", record) == ["mgr", "boss"]
    assert office.record("quote", record)["status"] == "approved"
    history = rep.get(f"/api/v1/t/quote/{record}/history").json()["items"]
    actions = [h["action"] for h in history]
    assert actions.count("approve") == 3 and "reapproval" in actions  # earlier decisions stay
    reapproval = next(h for h in history if h["action"] == "reapproval")
    assert reapproval["changes"] == {"approval": "quote_ok", "fields": ["discount", "lines"]}


def test_a_change_below_every_band_approves_again_at_once(office: Office) -> None:
    record = approved(office, "quote", "0.2")
    answer = office.clients["rep"].patch(f"/api/v1/t/quote/{record}", json={"discount": "0.05"})
    assert answer.status_code == 200
    assert office.record("quote", record)["status"] == "approved"  # no step applies: approved again
    assert [i["state"] for i in office.instances("quote", record)] == ["approved", "approved"]


def test_a_material_change_during_approval_starts_it_again(office: Office) -> None:
    record = office.new("quote", "0.2")
    office.act("rep", "quote", record, "submit")
    answer = office.clients["rep"].patch(f"/api/v1/t/quote/{record}", json={"discount": "0.35"})
    assert answer.status_code == 200
    assert [i["state"] for i in office.instances("quote", record)] == ["cancelled", "running"]
    assert office.approve_all("quote", record) == ["mgr", "boss"]


def test_a_state_guards_its_material_fields(office: Office) -> None:
    record = approved(office, "contract", "0.2")
    office.act("rep", "contract", record, "send")
    office.act("rep", "contract", record, "sign")
    row_id = office.record("contract", record)["lines"][0]["id"]
    answer = office.clients["boss"].patch(
        f"/api/v1/t/contract/{record}", json={"lines": [{"id": row_id, "item": "a", "amount": "1"}]}
    )
    assert problem(answer) == (
        409,
        "total",  # the first material item the change touched
        "material",
        "this contract is signed; amend it with a new one to change total",
    )


def test_the_web_form_shows_the_refusal_and_keeps_the_data(office: Office) -> None:
    record = approved(office, "contract", "0.2")
    web = web_client(office.runtime, "webrep", ("rep",))
    page = web.get(f"/app/t/contract/{record}/edit")
    assert page.status_code == 200
    answer = web.post_form(
        f"/app/t/contract/{record}/edit",
        {
            "title": "Q1",
            "discount": "45",
            "note": "",
            "version": str(office.record("contract", record)["version"]),
        },
    )
    assert answer.status_code in (409, 422, 200)
    assert "revise it to change" in answer.text
    assert office.record("contract", record)["discount"] == "0.200000"


FINAL_DEAL = """
form: deal
label: {zh: 交易, en: Deal}
title_field: title
fields:
  - {key: title, type: text, required: true}
  - {key: amount, type: money}
  - {key: note, type: text}
  - {key: status, type: select, options: [open, won]}
permissions:
  - {roles: [rep], can: [create, read, update, delete], scope: all}
"""
FINAL_FLOW = """
workflow: deal_flow
form: deal
field: status
states:
  - {key: open, initial: true}
  - {key: won, final: true, material: [amount]}
transitions:
  - {action: win, from: open, to: won}
"""


def test_a_final_state_guards_its_material_fields_after_the_workflow_ended(
    db_url: str, tmp_path: Path
) -> None:
    pack = write_pack(tmp_path / "pack", {"deal": FINAL_DEAL})
    write_files(pack, {"app.yaml": APP, "workflows/deal.yaml": FINAL_FLOW})
    runtime, _ = serve(pack, db_url, tmp_path / "files")
    try:
        with write(runtime.engine) as conn:
            create_user(conn, "rep", None, roles=("rep",))
        rep = TestClient(
            runtime.api, headers={"Authorization": f"Bearer {user_token(runtime.engine, 'rep', ())}"}
        )
        deal = rep.post("/api/v1/t/deal", json={"title": "D", "amount": "100"}).json()["id"]
        assert rep.post(f"/api/v1/t/deal/{deal}/transitions/win", json={}).status_code == 200
        refused = rep.patch(f"/api/v1/t/deal/{deal}", json={"amount": "90"})
        assert (refused.status_code, refused.json()["errors"][0]["code"]) == (409, "material")
        assert rep.patch(f"/api/v1/t/deal/{deal}", json={"note": "kept"}).status_code == 200
        assert rep.delete(f"/api/v1/t/deal/{deal}").status_code == 409  # a guarded record stays
        assert rep.get(f"/api/v1/t/deal/{deal}").json()["amount"] == "100.00"
    finally:
        runtime.engine.dispose()
