"""Approvals as Chinese users expect them: copies, added approvers, nudges, withdrawal, the route
ahead, inbox views, and outcome notices in the reader's language."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import update

from runtime.db import write
from runtime.schema.system import users
from tests.runtime.process.approval_pack import Desk


@pytest.fixture
def desk(db_url: str, tmp_path: Path) -> Iterator[Desk]:
    built = Desk(db_url, tmp_path)
    yield built
    built.runtime.engine.dispose()


def instance_of(desk: Desk, record: int) -> int:
    items = desk.clients["rep"].get(f"/api/v1/t/doc/{record}/approvals").json()["items"]
    return int(items[-1]["id"])


def test_the_submitter_hears_the_outcome_in_their_language_and_when_it_changes(desk: Desk) -> None:
    record = desk.submitted()
    desk.decide("ann")
    desk.decide("bob")
    assert desk.status(record) == "done"
    assert desk.messages("rep")[0] == "Approved: Doc D-001 (Review)"
    with write(desk.runtime.engine) as conn:
        conn.execute(update(users).where(users.c.username == "rep").values(language="zh"))
    assert desk.messages("rep")[0] == "已审批通过：文档 D-001（评审）"


def test_a_rejection_tells_the_submitter_the_comment(desk: Desk) -> None:
    record = desk.submitted()
    assert desk.decide("ann", "reject", comment="price too low").status_code == 200
    assert desk.status(record) == "draft"
    assert desk.messages("rep")[0] == "Rejected: Doc D-001 (Review · Manager) — price too low"


def test_a_task_notice_uses_the_records_title_and_is_read_once_the_task_is_done(desk: Desk) -> None:
    desk.submitted()
    notices = desk.clients["ann"].get("/api/v1/notifications").json()
    assert notices["items"][0]["message"] == "待您审批：文档 D-001（评审 · 经理审批）"
    assert notices["unread"] == 1
    desk.decide("ann")
    assert desk.clients["ann"].get("/api/v1/notifications").json()["unread"] == 0


def test_copies_go_to_the_steps_and_the_approvals_cc_with_a_cc_list(desk: Desk) -> None:
    desk.submitted()
    desk.decide("ann")
    assert desk.messages("carl") == ["抄送：文档 D-001 本步骤已通过（评审 · 经理审批）"]
    assert [t["kind"] for t in desk.tasks("carl", "cc")] == ["cc"]
    assert desk.messages("wendy") == []
    desk.decide("bob")
    assert desk.messages("wendy") == ["CC: Doc D-001 approved (Review)"]
    assert desk.tasks("wendy", "todo") == [] and len(desk.tasks("wendy", "cc")) == 1
    refused = desk.clients["wendy"].post(
        f"/api/v1/tasks/{desk.tasks('wendy', 'cc')[0]['id']}/approve", json={}
    )
    assert refused.status_code == 404  # a copy is not a decision


def test_an_approver_added_before_oneself_decides_first(desk: Desk) -> None:
    desk.submitted()
    task = desk.tasks("ann")[0]
    added = desk.clients["ann"].post(
        f"/api/v1/tasks/{task['id']}/add_approver", json={"to": desk.uid("dave"), "position": "before"}
    )
    assert added.status_code == 200, added.text
    assert added.json()["kind"] == "consult"
    waiting = desk.clients["ann"].post(f"/api/v1/tasks/{task['id']}/approve", json={})
    assert waiting.status_code == 409 and waiting.json()["errors"][0]["code"] == "waiting"
    assert desk.tasks("bob") == []
    assert desk.decide("dave").status_code == 200
    assert desk.tasks("bob") == []  # back with ann, not passed yet
    assert desk.decide("ann").status_code == 200
    assert [t["step"] for t in desk.tasks("bob")] == ["final"]


def test_an_approver_added_before_oneself_who_rejects_rejects(desk: Desk) -> None:
    record = desk.submitted()
    task = desk.tasks("ann")[0]
    desk.clients["ann"].post(
        f"/api/v1/tasks/{task['id']}/add_approver", json={"to": desk.uid("dave"), "position": "before"}
    )
    assert desk.decide("dave", "reject", comment="no").status_code == 200
    assert desk.status(record) == "draft"


def test_an_approver_added_after_oneself_decides_in_ones_place(desk: Desk) -> None:
    desk.submitted()
    task = desk.tasks("ann")[0]
    added = desk.clients["ann"].post(
        f"/api/v1/tasks/{task['id']}/add_approver",
        json={"to": desk.uid("dave"), "position": "after", "comment": "fine by me; dave knows the client"},
    )
    assert added.status_code == 200
    assert desk.tasks("bob") == []
    assert desk.decide("dave").status_code == 200
    assert [t["step"] for t in desk.tasks("bob")] == ["final"]
    assert [t["status"] for t in desk.tasks("ann", "done")] == ["forwarded"]


def test_adding_an_approver_where_the_step_does_not_allow_it_is_refused(desk: Desk) -> None:
    desk.submitted()
    desk.decide("ann")
    task = desk.tasks("bob")[0]
    answer = desk.clients["bob"].post(
        f"/api/v1/tasks/{task['id']}/add_approver", json={"to": desk.uid("dave"), "position": "after"}
    )
    assert answer.status_code == 403


def test_the_submitter_nudges_at_most_once_an_hour(desk: Desk) -> None:
    record = desk.submitted()
    url = f"/api/v1/approvals/{instance_of(desk, record)}/nudge"
    assert desk.clients["rep"].post(url).json() == {"notified": 1}
    assert desk.messages("ann")[0].endswith("催办：文档 D-001 等待您审批（评审 · 经理审批）")
    again = desk.clients["rep"].post(url)
    assert again.status_code == 409 and again.json()["errors"][0]["code"] == "too_soon"
    assert desk.clients["ann"].post(url).status_code == 404  # only the submitter nudges
    desk.clock.now += dt.timedelta(hours=1)
    assert desk.clients["rep"].post(url).status_code == 200


def test_the_submitter_withdraws_while_nobody_has_decided(desk: Desk) -> None:
    record = desk.submitted()
    url = f"/api/v1/approvals/{instance_of(desk, record)}/withdraw"
    assert desk.clients["ann"].post(url, json={}).status_code == 404
    answer = desk.clients["rep"].post(url, json={"comment": "wrong customer"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["state"] == "withdrawn"
    assert desk.status(record) == "draft" and desk.tasks("ann") == []


def test_withdrawing_after_a_decision_is_refused(desk: Desk) -> None:
    record = desk.submitted()
    desk.decide("ann")
    answer = desk.clients["rep"].post(f"/api/v1/approvals/{instance_of(desk, record)}/withdraw", json={})
    assert answer.status_code == 409 and answer.json()["errors"][0]["code"] == "decided"


def test_the_route_ahead_shows_the_steps_and_who_decides(desk: Desk) -> None:
    rep = desk.clients["rep"]
    made = rep.post("/api/v1/t/doc", json={"number": "D-002"}).json()
    before = rep.get(f"/api/v1/t/doc/{made['id']}/approvals/route").json()["items"][0]
    assert before["running"] is False
    assert [(s["step"], [a["display"] for a in s["approvers"]]) for s in before["steps"]] == [
        ("manager", ["ann"]),
        ("final", ["bob"]),
    ]
    rep.post(f"/api/v1/t/doc/{made['id']}/transitions/submit", json={})
    desk.decide("ann")
    during = rep.get(f"/api/v1/t/doc/{made['id']}/approvals/route").json()["items"][0]
    assert [(s["step"], s["current"]) for s in during["steps"]] == [("final", True)]


def test_the_inbox_views_list_and_count_each_kind(desk: Desk) -> None:
    first = desk.submitted("D-001")
    desk.submitted("D-002")
    desk.decide("ann")
    views = desk.clients["ann"].get("/api/v1/tasks", params={"view": "todo"}).json()
    assert views["counts"] == {"todo": 1, "done": 1, "cc": 0, "started": 0}
    started = desk.clients["rep"].get("/api/v1/tasks", params={"view": "started"}).json()
    assert [item["record_id"] for item in started["items"]] == [first + 1, first]
    assert started["counts"]["started"] == 2
    paged = desk.clients["rep"].get("/api/v1/tasks", params={"view": "started", "limit": 1}).json()
    assert len(paged["items"]) == 1 and paged["next_offset"] == 1
    wrong = desk.clients["rep"].get("/api/v1/tasks", params={"view": "mine"})
    assert wrong.status_code == 422
