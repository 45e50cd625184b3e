"""Parallel requests on one task or one record: exactly one decision, one move, one history entry.

Each test fires the same (or competing) requests from several threads at once, each
thread with a client of its own, and then counts what the database kept. On PostgreSQL
the requests really run side by side (the record's row lock serialises them); on SQLite
the write lock does.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from runtime.boot import Runtime
from runtime.db import write
from runtime.identity.directory import create_user, user_id_of
from runtime.identity.tokens import create_token
from runtime.schema.system import audit, process_instances, tasks
from tests.support import serve, write_files, write_pack

PARALLEL = 8
DOC = """
form: doc
label: Doc
fields:
  - {key: title, type: text, required: true}
  - {key: status, type: select, options: [draft, pending, approved, rejected], default: draft}
permissions:
  - {roles: [rep, legal], can: [create, read, update], scope: all}
"""
WORKFLOW = """
workflow: doc_flow
form: doc
field: status
states: [{key: draft, initial: true}, {key: pending}, {key: approved}, {key: rejected}]
transitions:
  - {action: submit, from: draft, to: pending, effects: [{start_approval: review}]}
  - {action: approve, from: pending, to: approved, system: true}
  - {action: reject, from: pending, to: rejected, system: true}
  - {action: withdraw, from: pending, to: draft}
"""
REVIEW = """
approval: review
form: doc
steps: [{name: legal, approvers: {users: [legal1]}, mode: any}]
on_approved: [{transition: approve}]
on_rejected: [{transition: reject}]
"""
PANEL = """
approval: review
form: doc
steps: [{name: panel, approvers: {role: legal}, mode: all}]
on_approved: [{transition: approve}]
on_rejected: [{transition: reject}]
"""
LEGAL = ("legal1", "legal2", "legal3", "legal4")


def _runtime(db_url: str, tmp_path: Path, approval: str) -> tuple[Runtime, dict[str, str]]:
    pack = write_pack(tmp_path / "pack", {"doc": DOC})
    (pack / "app.yaml").write_text(
        "app: t\nlabel: T\nversion: 1.0.0\nroles: [{key: rep}, {key: legal}]\n", encoding="utf-8"
    )
    write_files(pack, {"workflows/doc.yaml": WORKFLOW, "approvals/review.yaml": approval})
    runtime, _ = serve(pack, db_url, tmp_path / "files")
    tokens = {}
    with write(runtime.engine) as conn:
        for name, role in (("rep", "rep"), *((name, "legal") for name in LEGAL)):
            create_user(conn, name, None, roles=(role,))
            tokens[name] = create_token(conn, name, "race")
    return runtime, tokens


@pytest.fixture
def single(db_url: str, tmp_path: Path) -> Any:
    runtime, tokens = _runtime(db_url, tmp_path, REVIEW)
    yield runtime, tokens
    runtime.engine.dispose()


@pytest.fixture
def panel(db_url: str, tmp_path: Path) -> Any:
    runtime, tokens = _runtime(db_url, tmp_path, PANEL)
    yield runtime, tokens
    runtime.engine.dispose()


def _call(runtime: Runtime, token: str, path: str, body: dict[str, Any] | None = None) -> Any:
    client = TestClient(runtime.api, headers={"Authorization": f"Bearer {token}"})
    return client.post(path, json=body)


def _all_at_once(calls: list[Callable[[], Any]]) -> list[Any]:
    """Run the calls in threads released together; their answers, in order."""
    gate = threading.Barrier(len(calls))

    def run(call: Callable[[], Any]) -> Any:
        gate.wait()
        return call()

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(run, calls))


def _submitted(runtime: Runtime, tokens: dict[str, str]) -> int:
    """A doc in `pending` with the review running; answers its id."""
    client = TestClient(runtime.api, headers={"Authorization": f"Bearer {tokens['rep']}"})
    record = client.post("/api/v1/t/doc", json={"title": "contract"}).json()
    answer = client.post(f"/api/v1/t/doc/{record['id']}/transitions/submit")
    assert answer.status_code == 200, answer.text
    return int(record["id"])


def _task_of(runtime: Runtime, record_id: int, username: str) -> int:
    with runtime.engine.connect() as conn:
        stmt = select(tasks.c.id).where(
            tasks.c.record_id == record_id,
            tasks.c.status == "open",
            tasks.c.assignee_id == user_id_of(conn, username),
        )
        return int(conn.execute(stmt).scalar_one())


def _history(runtime: Runtime, record_id: int) -> Counter[str]:
    """How many entries of each action the record's history holds."""
    with runtime.engine.connect() as conn:
        rows = conn.execute(
            select(audit.c.action, func.count())
            .where(audit.c.form == "doc", audit.c.record_id == record_id)
            .group_by(audit.c.action)
        ).all()
    return Counter({action: int(n) for action, n in rows})


def _transitions(runtime: Runtime, record_id: int) -> list[str]:
    with runtime.engine.connect() as conn:
        rows = conn.execute(
            select(audit.c.changes)
            .where(audit.c.form == "doc", audit.c.record_id == record_id, audit.c.action == "transition")
            .order_by(audit.c.id)
        ).scalars()
        return [row["action"] for row in rows]


def _status(runtime: Runtime, record_id: int) -> str:
    client_row = runtime.service.get("t", "doc", record_id)
    return str(client_row["status"])


def _closed_codes(answers: list[Any]) -> set[str]:
    return {a.json()["errors"][0]["code"] for a in answers if a.status_code != 200}


def test_parallel_approvals_of_one_task_decide_it_once(single: Any) -> None:
    runtime, tokens = single
    record_id = _submitted(runtime, tokens)
    task = _task_of(runtime, record_id, "legal1")
    path = f"/api/v1/tasks/{task}/approve"
    answers = _all_at_once([lambda: _call(runtime, tokens["legal1"], path)] * PARALLEL)
    assert sorted(a.status_code for a in answers) == [200] + [409] * (PARALLEL - 1)
    assert _closed_codes(answers) == {"task_closed"}
    history = _history(runtime, record_id)
    assert history["approve"] == 1 and history["approved"] == 1
    assert _transitions(runtime, record_id) == ["submit", "approve"]
    assert _status(runtime, record_id) == "approved"


def test_parallel_approvals_and_rejections_record_one_decision(single: Any) -> None:
    runtime, tokens = single
    record_id = _submitted(runtime, tokens)
    task = _task_of(runtime, record_id, "legal1")
    approve = f"/api/v1/tasks/{task}/approve"
    reject = f"/api/v1/tasks/{task}/reject"
    calls = [lambda: _call(runtime, tokens["legal1"], approve)] * (PARALLEL // 2)
    calls += [lambda: _call(runtime, tokens["legal1"], reject, {"comment": "no"})] * (PARALLEL // 2)
    answers = _all_at_once(calls)
    assert sorted(a.status_code for a in answers) == [200] + [409] * (PARALLEL - 1)
    assert _closed_codes(answers) == {"task_closed"}
    history = _history(runtime, record_id)
    assert history["approve"] + history["reject"] == 1
    assert history["approved"] + history["rejected"] == 1
    winner = next(a for a in answers if a.status_code == 200).json()["status"]
    expected = "approved" if winner == "approved" else "rejected"
    assert _transitions(runtime, record_id) == ["submit", "approve" if winner == "approved" else "reject"]
    assert _status(runtime, record_id) == expected
    with runtime.engine.connect() as conn:
        decided = conn.execute(select(tasks.c.status).where(tasks.c.id == task)).scalar_one()
    assert decided == winner


def test_every_approver_of_an_all_step_deciding_at_once_ends_the_step_once(panel: Any) -> None:
    runtime, tokens = panel
    record_id = _submitted(runtime, tokens)
    calls = [
        (
            lambda name=name: _call(
                runtime, tokens[name], f"/api/v1/tasks/{_task_of(runtime, record_id, name)}/approve"
            )
        )
        for name in LEGAL
    ]
    answers = _all_at_once(calls)
    assert [a.status_code for a in answers] == [200] * len(LEGAL)
    history = _history(runtime, record_id)
    assert history["approve"] == len(LEGAL) and history["approved"] == 1
    assert _transitions(runtime, record_id) == ["submit", "approve"]
    with runtime.engine.connect() as conn:
        state = conn.execute(
            select(process_instances.c.state).where(
                process_instances.c.record_id == record_id, process_instances.c.kind == "approval"
            )
        ).scalar_one()
    assert state == "approved"


def test_parallel_transfers_of_one_task_hand_it_over_once(single: Any) -> None:
    runtime, tokens = single
    record_id = _submitted(runtime, tokens)
    task = _task_of(runtime, record_id, "legal1")
    with runtime.engine.connect() as conn:
        others = [user_id_of(conn, name) for name in LEGAL[1:]]
    calls = []
    for i in range(PARALLEL):
        mode = "transfer" if i % 2 else "delegate"
        body = {"to": others[i % len(others)]}
        calls.append(
            lambda mode=mode, body=body: _call(
                runtime, tokens["legal1"], f"/api/v1/tasks/{task}/{mode}", body
            )
        )
    answers = _all_at_once(calls)
    assert sorted(a.status_code for a in answers) == [200] + [409] * (PARALLEL - 1)
    assert _closed_codes(answers) == {"task_closed"}
    history = _history(runtime, record_id)
    assert history["delegate"] + history["transfer"] == 1
    with runtime.engine.connect() as conn:
        open_now = conn.execute(
            select(func.count()).where(tasks.c.record_id == record_id, tasks.c.status == "open")
        ).scalar_one()
    assert open_now == 1


def test_a_decision_and_a_delegation_at_once_leave_one_of_them(single: Any) -> None:
    runtime, tokens = single
    record_id = _submitted(runtime, tokens)
    task = _task_of(runtime, record_id, "legal1")
    with runtime.engine.connect() as conn:
        other = user_id_of(conn, "legal2")
    calls = [lambda: _call(runtime, tokens["legal1"], f"/api/v1/tasks/{task}/approve")] * (PARALLEL // 2)
    calls += [lambda: _call(runtime, tokens["legal1"], f"/api/v1/tasks/{task}/delegate", {"to": other})] * (
        PARALLEL // 2
    )
    answers = _all_at_once(calls)
    assert sorted(a.status_code for a in answers) == [200] + [409] * (PARALLEL - 1)
    history = _history(runtime, record_id)
    assert history["approve"] + history["delegate"] == 1


def test_a_transition_taken_in_parallel_moves_the_record_once(single: Any) -> None:
    runtime, tokens = single
    client = TestClient(runtime.api, headers={"Authorization": f"Bearer {tokens['rep']}"})
    record_id = int(client.post("/api/v1/t/doc", json={"title": "contract"}).json()["id"])
    path = f"/api/v1/t/doc/{record_id}/transitions/submit"
    answers = _all_at_once([lambda: _call(runtime, tokens["rep"], path)] * PARALLEL)
    assert sorted(a.status_code for a in answers) == [200] + [409] * (PARALLEL - 1)
    assert _closed_codes(answers) == {"state"}
    history = _history(runtime, record_id)
    assert history["approval_started"] == 1
    assert _transitions(runtime, record_id) == ["submit"]
    with runtime.engine.connect() as conn:
        running = conn.execute(
            select(func.count()).where(
                process_instances.c.record_id == record_id, process_instances.c.kind == "approval"
            )
        ).scalar_one()
        open_now = conn.execute(
            select(func.count()).where(tasks.c.record_id == record_id, tasks.c.status == "open")
        ).scalar_one()
    assert running == 1 and open_now == 1


def test_a_withdrawal_racing_the_approval_leaves_one_outcome(single: Any) -> None:
    runtime, tokens = single
    record_id = _submitted(runtime, tokens)
    task = _task_of(runtime, record_id, "legal1")
    calls = [lambda: _call(runtime, tokens["legal1"], f"/api/v1/tasks/{task}/approve")] * (PARALLEL // 2)
    calls += [lambda: _call(runtime, tokens["rep"], f"/api/v1/t/doc/{record_id}/transitions/withdraw")] * (
        PARALLEL // 2
    )
    answers = _all_at_once(calls)
    assert sorted(a.status_code for a in answers) == [200] + [409] * (PARALLEL - 1), [a.text for a in answers]
    transitions = _transitions(runtime, record_id)
    assert transitions in (["submit", "approve"], ["submit", "withdraw"])
    status = _status(runtime, record_id)
    assert status == ("approved" if transitions[-1] == "approve" else "draft")
    history = _history(runtime, record_id)
    assert history["approve"] + history["approval_cancelled"] == 1
