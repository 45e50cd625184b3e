"""Workflows: actions open to a caller, guards, values given with an action, effects, versions."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from builder.publishing.publish import publish
from runtime import live
from runtime.boot import Runtime
from runtime.loading.loader import load_pack
from runtime.schema.system import jobs, process_instances
from tests.support import serve, user_token, write_files, write_pack

TICKET = """
form: ticket
label: Ticket
fields:
  - {key: title, type: text, required: true}
  - {key: points, type: integer, default: 0}
  - {key: status, type: select, options: [open, doing, review, done, dropped], default: open}
  - {key: owner, type: user}
  - {key: reason, type: text}
  - {key: closed_at, type: datetime, read_only: true}
  - {key: customer, type: link, to: customer}
  - {key: parts, type: table, form: part}
owner_field: owner
permissions:
  - {roles: [dev], can: [create, read, update], scope: all}
  - {roles: [lead], can: [create, read, update], scope: all}
"""
PART = """
form: part
label: Part
child: true
fields:
  - {key: name, type: text}
  - {key: qty, type: integer}
"""
CUSTOMER = """
form: customer
label: Customer
fields:
  - {key: name, type: text}
permissions:
  - {roles: [dev, lead], can: [read], scope: all}
"""
ORDER = """
form: order_form
label: Order
fields:
  - {key: ticket, type: link, to: ticket}
  - {key: label, type: text}
  - {key: lines, type: table, form: order_line}
"""
ORDER_LINE = """
form: order_line
label: Line
child: true
fields:
  - {key: name, type: text}
  - {key: qty, type: integer}
"""
PART_RECORD = """
form: part_record
label: Part record
fields:
  - {key: ticket, type: link, to: ticket}
  - {key: name, type: text}
  - {key: qty, type: integer}
"""
WORKFLOW = """
workflow: ticket_flow
form: ticket
field: status
states:
  - {key: open, initial: true}
  - {key: doing}
  - {key: review}
  - {key: done, final: true}
  - {key: dropped, final: true}
transitions:
  - {action: start, from: open, to: doing, fields: [owner], require: [owner]}
  - action: ask_review
    from: doing
    to: review
    allowed: "owner == CURRENT_USER()"
    guard: "points > 0"
    guard_message: {en: Estimate the points first}
  - action: finish
    from: review
    to: done
    roles: [lead]
    effects:
      - set: {closed_at: "NOW()"}
      - create:
          form: customer
          store_in: customer
          values: {name: "CONCAT('Customer of ', title)"}
        when: "customer == null"
      - create:
          form: order_form
          values: {ticket: id, label: title}
          children: {lines: {from: parts, values: {name: name, qty: qty}}}
      - create:
          form: part_record
          for_each: parts
          values: {ticket: id}
          row_values: {name: name, qty: "qty * 2"}
      - webhook: {url: "https://example.com/hook", event: finished}
  - {action: drop, from: "*", to: dropped, fields: [reason], require: [reason]}
  - {action: escalate, from: open, to: review, auto: true, guard: "points >= 100"}
  - {action: archive, from: review, to: done, system: true}
"""


@pytest.fixture
def app(db_url: str, tmp_path: Path) -> Runtime:
    forms = {
        "ticket": TICKET,
        "part": PART,
        "customer": CUSTOMER,
        "order_form": ORDER,
        "order_line": ORDER_LINE,
        "part_record": PART_RECORD,
    }
    pack = write_pack(tmp_path / "pack", forms)
    (pack / "app.yaml").write_text("app: t\nlabel: T\nversion: 1.0.0\nroles: [{key: dev}, {key: lead}]\n")
    write_files(pack, {"workflows/ticket.yaml": WORKFLOW})
    runtime, _ = serve(pack, db_url, tmp_path / "files")
    return runtime


def client(runtime: Runtime, username: str, *roles: str) -> TestClient:
    token = user_token(runtime.engine, username, roles)
    return TestClient(runtime.api, headers={"Authorization": f"Bearer {token}"})


def test_new_records_start_in_the_initial_state_and_the_state_field_is_not_writable(app: Runtime) -> None:
    dev = client(app, "dev", "dev")
    created = dev.post("/api/v1/t/ticket", json={"title": "a"})
    assert created.status_code == 201 and created.json()["status"] == "open"
    refused = dev.post("/api/v1/t/ticket", json={"title": "b", "status": "done"})
    assert refused.status_code == 422
    assert refused.json()["errors"] == [{"field": "status", "code": "read_only", "message": "cannot be set"}]
    record = created.json()["id"]
    assert dev.patch(f"/api/v1/t/ticket/{record}", json={"status": "done"}).status_code == 422
    assert dev.get(f"/api/v1/t/ticket/{record}").json()["status"] == "open"


def test_the_caller_sees_the_actions_open_to_them(app: Runtime) -> None:
    dev = client(app, "dev", "dev")
    record = dev.post("/api/v1/t/ticket", json={"title": "a"}).json()["id"]
    actions = dev.get(f"/api/v1/t/ticket/{record}/transitions").json()["items"]
    assert [(a["action"], a["to"], a["require"]) for a in actions] == [
        ("start", "doing", ["owner"]),
        ("drop", "dropped", ["reason"]),
    ]
    assert dev.get("/api/v1/t/ticket/999/transitions").status_code == 404


def test_an_action_takes_its_values_and_refuses_missing_or_unknown_ones(app: Runtime) -> None:
    dev = client(app, "dev", "dev")
    record = dev.post("/api/v1/t/ticket", json={"title": "a"}).json()["id"]
    missing = dev.post(f"/api/v1/t/ticket/{record}/transitions/start", json={})
    assert missing.status_code == 422 and missing.json()["errors"][0]["field"] == "values.owner"
    unknown = dev.post(f"/api/v1/t/ticket/{record}/transitions/start", json={"values": {"points": 3}})
    assert unknown.status_code == 422
    assert {e["field"] for e in unknown.json()["errors"]} == {"values.points", "values.owner"}
    me = _user_id(app, "dev")
    moved = dev.post(
        f"/api/v1/t/ticket/{record}/transitions/start", json={"values": {"owner": me}, "comment": "mine"}
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["status"] == "doing" and moved.json()["owner"]["id"] == me
    again = dev.post(f"/api/v1/t/ticket/{record}/transitions/start", json={"values": {"owner": me}})
    assert again.status_code == 409
    assert dev.post(f"/api/v1/t/ticket/{record}/transitions/nope", json={}).status_code == 404
    history = dev.get(f"/api/v1/t/ticket/{record}/history").json()["items"]
    step = next(h for h in history if h["action"] == "transition")
    assert step["changes"] == {"action": "start", "from": "open", "to": "doing", "comment": "mine"}


def test_allowed_expressions_roles_and_guards_decide_who_moves_a_record(app: Runtime) -> None:
    dev, other, lead = client(app, "dev", "dev"), client(app, "dev2", "dev"), client(app, "lead", "lead")
    record = dev.post("/api/v1/t/ticket", json={"title": "a"}).json()["id"]
    dev.post(f"/api/v1/t/ticket/{record}/transitions/start", json={"values": {"owner": _user_id(app, "dev")}})
    assert other.post(f"/api/v1/t/ticket/{record}/transitions/ask_review").status_code == 403
    not_ready = dev.post(f"/api/v1/t/ticket/{record}/transitions/ask_review")
    assert not_ready.status_code == 422
    assert not_ready.json()["errors"][0] == {
        "field": None,
        "code": "guard",
        "message": "Estimate the points first",
    }
    listed = dev.get(f"/api/v1/t/ticket/{record}/transitions").json()["items"]
    assert next((a["action"], a["ready"], a["reason"]) for a in listed) == (
        "ask_review",
        False,
        "Estimate the points first",
    )
    dev.patch(f"/api/v1/t/ticket/{record}", json={"points": 5})
    assert dev.post(f"/api/v1/t/ticket/{record}/transitions/ask_review").status_code == 200
    assert dev.post(f"/api/v1/t/ticket/{record}/transitions/finish").status_code == 403
    assert lead.post(f"/api/v1/t/ticket/{record}/transitions/archive").status_code == 403  # engine only
    assert lead.post(f"/api/v1/t/ticket/{record}/transitions/finish").status_code == 200


def test_effects_set_fields_create_linked_records_and_queue_a_webhook(app: Runtime) -> None:
    lead = client(app, "lead", "lead")
    record = lead.post(
        "/api/v1/t/ticket",
        json={
            "title": "fix",
            "points": 3,
            "owner": _user_id(app, "lead"),
            "parts": [{"name": "bolt", "qty": 2}, {"name": "nut", "qty": 5}],
        },
    ).json()["id"]
    lead.post(
        f"/api/v1/t/ticket/{record}/transitions/start", json={"values": {"owner": _user_id(app, "lead")}}
    )
    lead.post(f"/api/v1/t/ticket/{record}/transitions/ask_review")
    done = lead.post(f"/api/v1/t/ticket/{record}/transitions/finish")
    assert done.status_code == 200, done.text
    ticket = done.json()
    assert ticket["status"] == "done" and ticket["closed_at"] is not None
    assert ticket["customer"]["display"] == "Customer of fix"
    service = app.service
    order = service.list_page("t", "order_form", [])["items"]
    assert [(o["label"], [(line["name"], line["qty"]) for line in o["lines"]]) for o in order] == [
        ("fix", [("bolt", 2), ("nut", 5)])
    ]
    parts = service.list_page("t", "part_record", [("sort", "id")])["items"]
    assert [(p["name"], p["qty"], p["ticket"]["id"]) for p in parts] == [
        ("bolt", 4, record),
        ("nut", 10, record),
    ]
    with app.engine.connect() as conn:
        hooks = conn.execute(select(jobs.c.kind, jobs.c.payload).where(jobs.c.kind == "webhook")).all()
        instance = (
            conn.execute(select(process_instances).where(process_instances.c.record_id == record))
            .mappings()
            .one()
        )
    assert [(k, p["url"], p["event"]) for k, p in hooks] == [
        ("webhook", "https://example.com/hook", "finished")
    ]
    assert instance["state"] == "done" and instance["ended_at"] is not None


def test_an_automatic_transition_fires_when_its_guard_becomes_true(app: Runtime) -> None:
    dev = client(app, "dev", "dev")
    record = dev.post("/api/v1/t/ticket", json={"title": "big", "points": 100}).json()
    assert record["status"] == "review"
    small = dev.post("/api/v1/t/ticket", json={"title": "small", "points": 1}).json()
    assert small["status"] == "open"
    grown = dev.patch(f"/api/v1/t/ticket/{small['id']}", json={"points": 120})
    assert grown.json()["status"] == "review"
    channels = [
        h["channel"]
        for h in dev.get(f"/api/v1/t/ticket/{small['id']}/history").json()["items"]
        if h["action"] == "transition"
    ]
    assert channels == ["workflow"]


def test_a_running_instance_keeps_the_workflow_version_it_started_on(
    app: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(live, "CHECK_EVERY", 0.0)
    dev = client(app, "dev", "dev")
    old = dev.post("/api/v1/t/ticket", json={"title": "old"}).json()["id"]
    # Version 2 drops the `drop` action and adds `pause`.
    changed = WORKFLOW.replace(
        '  - {action: drop, from: "*", to: dropped, fields: [reason], require: [reason]}\n',
        "  - {action: pause, from: open, to: dropped}\n",
    )
    pack = tmp_path / "v2"
    write_pack(
        pack,
        {
            "ticket": TICKET,
            "part": PART,
            "customer": CUSTOMER,
            "order_form": ORDER,
            "order_line": ORDER_LINE,
            "part_record": PART_RECORD,
        },
    )
    (pack / "app.yaml").write_text("app: t\nlabel: T\nversion: 2.0.0\nroles: [{key: dev}, {key: lead}]\n")
    write_files(pack, {"workflows/ticket.yaml": changed})
    publish(app.engine, load_pack(pack), backups=tmp_path / "backups")
    new = dev.post("/api/v1/t/ticket", json={"title": "new"}).json()["id"]
    old_actions = [a["action"] for a in dev.get(f"/api/v1/t/ticket/{old}/transitions").json()["items"]]
    new_actions = [a["action"] for a in dev.get(f"/api/v1/t/ticket/{new}/transitions").json()["items"]]
    assert old_actions == ["start", "drop"] and new_actions == ["start", "pause"]
    dropped = dev.post(f"/api/v1/t/ticket/{old}/transitions/drop", json={"values": {"reason": "dup"}})
    assert dropped.status_code == 200 and dropped.json()["status"] == "dropped"
    with app.engine.connect() as conn:
        versions = conn.execute(
            select(func.count(func.distinct(process_instances.c.definition_version)))
        ).scalar()
    assert versions == 2


def test_deleting_a_record_ends_its_instance(app: Runtime) -> None:
    lead = client(app, "lead", "lead")
    record = lead.post("/api/v1/t/ticket", json={"title": "gone"}).json()["id"]
    app.service.delete("t", "ticket", record)
    with app.engine.connect() as conn:
        ended = conn.execute(
            select(process_instances.c.ended_at).where(process_instances.c.record_id == record)
        ).scalar()
    assert ended is not None


def _user_id(runtime: Runtime, username: str) -> int:
    from runtime.db import write
    from runtime.identity.directory import user_id_of

    with write(runtime.engine) as conn:
        return user_id_of(conn, username)


LOOP = """
workflow: loop
form: flip
field: side
states: [{key: up, initial: true}, {key: down}]
transitions:
  - {action: fall, from: up, to: down, auto: true, guard: "armed"}
  - {action: rise, from: down, to: up, auto: true, guard: "armed"}
  - {action: arm, from: [up, down], to: up, fields: [armed], require: [armed]}
"""
FLIP = """
form: flip
label: Flip
fields:
  - {key: side, type: select, options: [up, down]}
  - {key: armed, type: boolean, default: false}
permissions:
  - {roles: [dev], can: [create, read], scope: all}
  - {roles: [dev], can: [update], scope: own}
"""


@pytest.fixture
def flip(db_url: str, tmp_path: Path) -> Runtime:
    pack = write_pack(tmp_path / "flip", {"flip": FLIP})
    (pack / "app.yaml").write_text("app: t\nlabel: T\nversion: 1.0.0\nroles: [{key: dev}]\n")
    write_files(pack, {"workflows/flip.yaml": LOOP})
    runtime, _ = serve(pack, db_url, tmp_path / "files")
    return runtime


def test_automatic_transitions_that_go_round_in_circles_are_refused_and_change_nothing(flip: Runtime) -> None:
    dev = client(flip, "dev", "dev")
    record = dev.post("/api/v1/t/flip", json={}).json()["id"]
    looping = dev.post(f"/api/v1/t/flip/{record}/transitions/arm", json={"values": {"armed": True}})
    assert looping.status_code == 409
    assert looping.json()["errors"][0]["code"] == "loop"
    stored = dev.get(f"/api/v1/t/flip/{record}").json()
    assert (stored["armed"], stored["side"], stored["version"]) == (False, "up", 1)


def test_a_required_value_the_record_already_holds_satisfies_the_action(flip: Runtime) -> None:
    dev = client(flip, "dev", "dev")
    record = dev.post("/api/v1/t/flip", json={"armed": False}).json()["id"]
    taken = dev.post(f"/api/v1/t/flip/{record}/transitions/arm", json={})
    assert taken.status_code == 200, taken.text  # armed is false, not empty: the record holds a value


def test_without_roles_an_action_needs_the_right_to_update_this_record(flip: Runtime) -> None:
    mine, theirs = client(flip, "dev", "dev"), client(flip, "dev2", "dev")
    record = mine.post("/api/v1/t/flip", json={}).json()["id"]
    assert [a["action"] for a in theirs.get(f"/api/v1/t/flip/{record}/transitions").json()["items"]] == []
    refused = theirs.post(f"/api/v1/t/flip/{record}/transitions/arm", json={"values": {"armed": False}})
    assert refused.status_code == 403
    assert [a["action"] for a in mine.get(f"/api/v1/t/flip/{record}/transitions").json()["items"]] == ["arm"]
