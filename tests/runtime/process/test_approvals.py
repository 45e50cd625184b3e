"""Approvals: each mode, amount routing, every approver source, rejection paths, delegation, locks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from runtime.boot import Runtime
from runtime.db import write
from runtime.identity.directory import create_department, create_user, load_actor, user_id_of
from runtime.process import approval_actions, approvals, tasks
from runtime.process.engine import engine_for
from runtime.records.errors import Conflict, InvalidRecord
from tests.support import serve, write_files, write_pack

DOC = """
form: doc
label: Doc
fields:
  - {key: title, type: text, required: true}
  - {key: amount, type: money}
  - {key: status, type: select, options: [draft, pending, approved, rejected], default: draft}
  - {key: owner, type: user, default: current_user}
  - {key: reviewer, type: user}
permissions:
  - {roles: [rep, manager, director, legal, cfo], can: [create, read, update], scope: all}
"""
WORKFLOW = """
workflow: doc_flow
form: doc
field: status
states: [{key: draft, initial: true}, {key: pending}, {key: approved}, {key: rejected}]
transitions:
  - {action: approve, from: pending, to: approved, system: true}
  - {action: reject, from: pending, to: rejected, system: true}
  - {action: withdraw, from: pending, to: draft}
"""
OUTCOMES = """
on_approved: [{transition: approve}]
on_rejected: [{transition: reject}]
"""
APPROVALS = {
    "any_legal": "steps: [{name: legal, approvers: {role: legal}, mode: any}]",
    "all_legal": "steps: [{name: legal, approvers: {role: legal}, mode: all}]",
    "percent_legal": "steps: [{name: legal, approvers: {role: legal}, mode: percent, percent: 60}]",
    "two_legal": "steps: [{name: legal, approvers: {role: legal}, mode: count, count: 2}]",
    "by_amount": """steps:
  - {name: manager, approvers: {manager: 1, of: owner}}
  - {name: director, when: "amount > 1000", approvers: {manager: 2, of: owner}}
  - {name: cfo, when: "amount > 5000", approvers: {role: cfo}}""",
    "sources": """steps:
  - {name: named, approvers: {users: [legal1]}}
  - {name: field, approvers: {user_field: reviewer}}
  - {name: computed, approvers: {expression: "IF(amount > 100, reviewer, owner)"}}""",
    "send_back": """steps:
  - {name: first, approvers: {users: [legal1]}}
  - {name: second, approvers: {users: [legal2]}, reject_to: first}""",
    "distinct": """distinct_approvers: true
steps:
  - {name: one, approvers: {role: legal}}
  - {name: two, approvers: {role: legal}}""",
    "self": "steps: [{name: peers, approvers: {role: rep}, mode: all}]",
    "nobody": "steps: [{name: void, approvers: {user_field: reviewer}}]",
    "big_amounts": 'starts_when: "amount > 100000"\nsteps: [{name: legal, approvers: {role: legal}}]',
}


@pytest.fixture
def app(db_url: str, tmp_path: Path) -> Runtime:
    pack = write_pack(tmp_path / "pack", {"doc": DOC})
    (pack / "app.yaml").write_text(
        "app: t\nlabel: T\nversion: 1.0.0\nroles: [{key: rep}, {key: manager}, {key: director}, "
        "{key: legal}, {key: cfo}]\n",
        encoding="utf-8",
    )
    files = {"workflows/doc.yaml": WORKFLOW}
    for key, steps in APPROVALS.items():
        files[f"approvals/{key}.yaml"] = f"approval: {key}\nform: doc\n{steps}\n{OUTCOMES}"
    write_files(pack, files)
    runtime, _ = serve(pack, db_url, tmp_path / "files")
    with write(runtime.engine) as conn:
        for name, roles in (
            ("boss", ("director",)),
            ("mgr", ("manager",)),
            ("rep", ("rep",)),
            ("rep2", ("rep",)),
            ("legal1", ("legal",)),
            ("legal2", ("legal",)),
            ("legal3", ("legal",)),
            ("cfo", ("cfo",)),
        ):
            create_user(conn, name, None, roles=roles)
        create_department(conn, "sales", "Sales", manager="boss")
        create_department(conn, "team", "Team", parent="sales", manager="mgr")
        from sqlalchemy import update

        from runtime.schema.system import departments, users

        team = conn.execute(departments.select().where(departments.c.key == "team")).mappings().one()["id"]
        sales = conn.execute(departments.select().where(departments.c.key == "sales")).mappings().one()["id"]
        conn.execute(
            update(users).where(users.c.username.in_(["rep", "rep2", "mgr"])).values(department_id=team)
        )
        conn.execute(update(users).where(users.c.username == "boss").values(department_id=sales))
    return runtime


def actor(runtime: Runtime, username: str) -> Any:
    with write(runtime.engine) as conn:
        found = load_actor(conn, user_id_of(conn, username))
    assert found is not None
    return found


def uid(runtime: Runtime, username: str) -> int:
    with write(runtime.engine) as conn:
        return user_id_of(conn, username)


def submit(runtime: Runtime, key: str, amount: str = "10", by: str = "rep", **values: Any) -> int:
    """A doc in `pending`, created by `by`, with approval `key` started by them."""
    submitter = actor(runtime, by)
    record = runtime.service.create("t", "doc", {"title": "x", "amount": amount, **values}, submitter)
    engine = engine_for(runtime.service)
    with write(runtime.engine) as conn:
        target = engine.target("t", "doc", record["id"])
        engine.write(target, {"status": "pending"}, engine.engine_actor(submitter, "test"), quiet=True)
        approvals.start(engine, conn, target, key, submitter)
    return int(record["id"])


def open_tasks(runtime: Runtime, record_id: int) -> dict[str, int]:
    """Open tasks of a record: assignee username → task id."""
    from sqlalchemy import select

    from runtime.schema.system import tasks, users

    with write(runtime.engine) as conn:
        rows = conn.execute(
            select(users.c.username, tasks.c.id)
            .join(users, users.c.id == tasks.c.assignee_id)
            .where(tasks.c.record_id == record_id, tasks.c.status == "open")
        ).all()
    return {row.username: row.id for row in rows}


def decide(
    runtime: Runtime, record_id: int, who: str, decision: str = "approved", comment: str = "ok"
) -> None:
    engine = engine_for(runtime.service)
    with write(runtime.engine) as conn:
        approvals.decide(
            engine, conn, open_tasks(runtime, record_id)[who], actor(runtime, who), decision, comment
        )


def status(runtime: Runtime, record_id: int) -> str:
    return str(runtime.service.get("t", "doc", record_id)["status"])


def test_any_mode_the_first_decision_settles_the_step(app: Runtime) -> None:
    record = submit(app, "any_legal")
    assert set(open_tasks(app, record)) == {"legal1", "legal2", "legal3"}
    decide(app, record, "legal2")
    assert status(app, record) == "approved"
    assert open_tasks(app, record) == {}


def test_any_mode_a_first_rejection_rejects(app: Runtime) -> None:
    record = submit(app, "any_legal")
    decide(app, record, "legal3", "rejected", "no")
    assert status(app, record) == "rejected"


def test_all_mode_needs_every_approver(app: Runtime) -> None:
    record = submit(app, "all_legal")
    decide(app, record, "legal1")
    decide(app, record, "legal2")
    assert status(app, record) == "pending"
    decide(app, record, "legal3")
    assert status(app, record) == "approved"


def test_all_mode_one_rejection_rejects_and_closes_the_other_tasks(app: Runtime) -> None:
    record = submit(app, "all_legal")
    decide(app, record, "legal1")
    decide(app, record, "legal2", "rejected", "missing clause")
    assert status(app, record) == "rejected"
    assert open_tasks(app, record) == {}


def test_percent_mode_passes_at_its_share_and_fails_when_out_of_reach(app: Runtime) -> None:
    passed = submit(app, "percent_legal")  # 60% of 3 approvers = 2
    decide(app, passed, "legal1")
    assert status(app, passed) == "pending"
    decide(app, passed, "legal3")
    assert status(app, passed) == "approved"
    failed = submit(app, "percent_legal")
    decide(app, failed, "legal1", "rejected", "no")
    assert status(app, failed) == "pending"  # two approvals can still reach 60%
    decide(app, failed, "legal2", "rejected", "no")
    assert status(app, failed) == "rejected"


def test_count_mode_two_countersignatures_of_three(app: Runtime) -> None:
    record = submit(app, "two_legal")
    decide(app, record, "legal1")
    decide(app, record, "legal3")
    assert status(app, record) == "approved"
    assert open_tasks(app, record) == {}


@pytest.mark.parametrize(
    ("amount", "path"),
    [("500", ["mgr"]), ("3000", ["mgr", "boss"]), ("9000", ["mgr", "boss", "cfo"])],
)
def test_steps_route_by_amount_to_managers_up_the_org_chart(
    app: Runtime, amount: str, path: list[str]
) -> None:
    record = submit(app, "by_amount", amount=amount)
    for approver in path:
        assert status(app, record) == "pending"
        assert list(open_tasks(app, record)) == [approver]
        decide(app, record, approver)
    assert status(app, record) == "approved"


def test_named_users_a_user_field_and_an_expression_give_approvers(app: Runtime) -> None:
    record = submit(app, "sources", amount="500", reviewer=uid(app, "legal3"))
    assert list(open_tasks(app, record)) == ["legal1"]
    decide(app, record, "legal1")
    assert list(open_tasks(app, record)) == ["legal3"]
    decide(app, record, "legal3")
    assert list(open_tasks(app, record)) == ["legal3"]  # IF(amount > 100, reviewer, owner)
    decide(app, record, "legal3")
    assert status(app, record) == "approved"


def test_a_rejection_can_send_the_request_back_to_an_earlier_step(app: Runtime) -> None:
    record = submit(app, "send_back")
    decide(app, record, "legal1")
    decide(app, record, "legal2", "rejected", "redo the numbers")
    assert status(app, record) == "pending"
    assert list(open_tasks(app, record)) == ["legal1"]
    decide(app, record, "legal1")
    decide(app, record, "legal2")
    assert status(app, record) == "approved"
    history = app.service.history("t", "doc", record)
    assert [
        h["action"] for h in history if h["action"] in ("approve", "reject", "sent_back", "approved")
    ] == ["approve", "reject", "sent_back", "approve", "approve", "approved"]
    assert any(h["changes"].get("comment") == "redo the numbers" for h in history)


def test_approvers_must_differ_across_steps(app: Runtime) -> None:
    record = submit(app, "distinct")
    decide(app, record, "legal1")
    assert set(open_tasks(app, record)) == {"legal2", "legal3"}


def test_the_submitter_never_approves_their_own_request(app: Runtime) -> None:
    record = submit(app, "self", by="rep")
    assert list(open_tasks(app, record)) == ["rep2"]


def test_a_step_without_approvers_falls_back_to_admins(app: Runtime) -> None:
    record = submit(app, "nobody")
    assert list(open_tasks(app, record)) == ["admin"]


def test_a_rejection_needs_a_comment(app: Runtime) -> None:
    record = submit(app, "any_legal")
    with pytest.raises(InvalidRecord) as caught:
        decide(app, record, "legal1", "rejected", " ")
    assert caught.value.problems[0].field == "comment"


def test_only_the_assignee_decides_and_only_once(app: Runtime) -> None:
    record = submit(app, "all_legal")
    engine = engine_for(app.service)
    task = open_tasks(app, record)["legal1"]
    with write(app.engine) as conn, pytest.raises(Exception) as caught:
        approvals.decide(engine, conn, task, actor(app, "legal2"), "approved", None)
    assert getattr(caught.value, "status", None) == 404
    decide(app, record, "legal1")
    with write(app.engine) as conn, pytest.raises(Conflict):
        approvals.decide(engine, conn, task, actor(app, "legal1"), "approved", None)


def test_the_record_is_locked_while_the_approval_runs_and_a_rejected_one_can_be_resubmitted(
    app: Runtime,
) -> None:
    record = submit(app, "any_legal")
    with pytest.raises(Conflict) as caught:
        app.service.update("t", "doc", record, {"title": "changed"}, actor=actor(app, "rep"))
    assert caught.value.problems[0].code == "locked"
    decide(app, record, "legal1", "rejected", "no")
    app.service.update("t", "doc", record, {"title": "fixed"}, actor=actor(app, "rep"))
    engine = engine_for(app.service)
    with write(app.engine) as conn:
        target = engine.target("t", "doc", record)
        engine.write(
            target, {"status": "pending"}, engine.engine_actor(actor(app, "rep"), "test"), quiet=True
        )
        approvals.start(engine, conn, target, "any_legal", actor(app, "rep"))
    decide(app, record, "legal2")
    assert status(app, record) == "approved"


def test_delegation_acts_on_behalf_and_transfer_hands_the_task_over(app: Runtime, db_url: str) -> None:
    record = submit(app, "all_legal")
    engine = engine_for(app.service)
    with write(app.engine) as conn:
        approval_actions.reassign(
            engine,
            conn,
            open_tasks(app, record)["legal1"],
            actor(app, "legal1"),
            uid(app, "cfo"),
            "on holiday",
            "delegate",
        )
    assert set(open_tasks(app, record)) == {"cfo", "legal2", "legal3"}
    with write(app.engine) as conn, pytest.raises(InvalidRecord):  # cannot go to someone holding one
        approval_actions.reassign(
            engine,
            conn,
            open_tasks(app, record)["legal2"],
            actor(app, "legal2"),
            uid(app, "legal3"),
            None,
            "transfer",
        )
    with write(app.engine) as conn, pytest.raises(InvalidRecord):  # nor to the submitter
        approval_actions.reassign(
            engine,
            conn,
            open_tasks(app, record)["legal2"],
            actor(app, "legal2"),
            uid(app, "rep"),
            None,
            "transfer",
        )
    with write(app.engine) as conn:
        approval_actions.reassign(
            engine,
            conn,
            open_tasks(app, record)["legal2"],
            actor(app, "legal2"),
            uid(app, "mgr"),
            None,
            "transfer",
        )
    for who in ("cfo", "mgr", "legal3"):
        decide(app, record, who)
    assert status(app, record) == "approved"
    with write(app.engine) as conn:
        rows = tasks.approval_rows(conn, "t", "doc", record)
    decided = {(t["assignee_name"], t["status"], t["on_behalf_of"]) for t in rows[0]["tasks"]}
    assert ("cfo", "approved", uid(app, "legal1")) in decided
    assert ("legal1", "delegated", None) in decided and ("legal2", "transferred", None) in decided
    assert ("mgr", "approved", None) in decided


def test_withdrawing_cancels_the_running_approval(app: Runtime) -> None:
    record = submit(app, "all_legal")
    engine = engine_for(app.service)
    from runtime.process import workflows

    with write(app.engine) as conn:
        workflows.take(engine, conn, engine.target("t", "doc", record), "withdraw", actor(app, "rep"))
    assert status(app, record) == "draft"
    assert open_tasks(app, record) == {}
    app.service.update("t", "doc", record, {"title": "unlocked"}, actor=actor(app, "rep"))


def test_the_inbox_api_lists_and_decides_tasks(app: Runtime) -> None:
    from tests.support import user_token

    record = submit(app, "two_legal")
    legal = TestClient(app.api, headers={"Authorization": f"Bearer {user_token(app.engine, 'legal1', ())}"})
    inbox = legal.get("/api/v1/tasks").json()["items"]
    assert [(t["record_id"], t["step"], t["approval"]) for t in inbox] == [(record, "legal", "two_legal")]
    assert inbox[0]["submitted_by"]["display"] == "rep"
    task = inbox[0]["id"]
    assert legal.post(f"/api/v1/tasks/{task}/reject", json={}).status_code == 422
    answer = legal.post(f"/api/v1/tasks/{task}/approve", json={"comment": "fine"})
    assert answer.status_code == 200 and answer.json()["status"] == "approved"
    assert legal.post(f"/api/v1/tasks/{task}/approve", json={}).status_code == 409
    assert legal.get("/api/v1/tasks").json()["items"] == []
    assert [t["id"] for t in legal.get("/api/v1/tasks?status=approved").json()["items"]] == [task]
    assert legal.get("/api/v1/tasks?status=bogus").status_code == 422
    other = TestClient(app.api, headers={"Authorization": f"Bearer {user_token(app.engine, 'legal2', ())}"})
    assert other.post(f"/api/v1/tasks/{task}/approve", json={}).status_code == 404
    panel = other.get(f"/api/v1/t/doc/{record}/approvals").json()["items"]
    assert panel[0]["state"] == "running" and len(panel[0]["tasks"]) == 3
    assert TestClient(app.api).get("/api/v1/tasks").status_code == 401


def test_the_approver_can_choose_where_a_rejection_goes_back_to(app: Runtime) -> None:
    record = submit(app, "by_amount", amount="9000")
    decide(app, record, "mgr")
    decide(app, record, "boss")
    engine = engine_for(app.service)
    with write(app.engine) as conn, pytest.raises(InvalidRecord) as caught:
        approvals.decide(
            engine, conn, open_tasks(app, record)["cfo"], actor(app, "cfo"), "rejected", "x", "cfo"
        )
    assert caught.value.problems[0].message == "a rejection goes back to one of: start, manager, director"
    with write(app.engine) as conn:
        approvals.decide(
            engine, conn, open_tasks(app, record)["cfo"], actor(app, "cfo"), "rejected", "redo", "director"
        )
    assert list(open_tasks(app, record)) == ["boss"]
    assert status(app, record) == "pending"


def test_an_approval_starts_when_its_condition_becomes_true(app: Runtime) -> None:
    rep = actor(app, "rep")
    small = app.service.create("t", "doc", {"title": "small", "amount": "10"}, rep)["id"]
    assert open_tasks(app, small) == {}
    app.service.update("t", "doc", small, {"amount": "200000"}, actor=rep)
    assert set(open_tasks(app, small)) == {"legal1", "legal2", "legal3"}
    big = app.service.create("t", "doc", {"title": "big", "amount": "500000"}, rep)["id"]
    assert set(open_tasks(app, big)) == {"legal1", "legal2", "legal3"}
