""" "My tasks": four views with their counts and pages, added approvers, nudges and withdrawals."""

from __future__ import annotations

import re

import pytest

from runtime.web import inbox_pages
from tests.runtime.process.approval_pack import Desk
from tests.runtime.web.desk import alerts, approval_of, signed_in


def tabs(html: str) -> dict[str, str]:
    """Each view's tab: its count, and `*` after it when it is the current view."""
    found = re.findall(
        r'id="view-(\w+)" href="[^"]+" (aria-current="page")?>[^<]*<span class="count">(\d+)', html
    )
    return {view: count + ("*" if current else "") for view, current, count in found}


def cards(html: str, kind: str = "task") -> list[str]:
    return re.findall(rf'id="{kind}-(\d+)"', html)


def test_the_views_list_and_count_the_users_own_tasks(desk: Desk) -> None:
    first = desk.submitted("D-001")
    desk.submitted("D-002")
    ann = signed_in(desk, "ann")
    task = desk.tasks("ann")[-1]
    answer = ann.post_form(f"/tasks/{task['id']}/approve", {"comment": "好的"})
    assert answer.status_code == 303 and answer.headers["location"] == "/tasks?done=approve"
    todo = ann.get("/tasks")
    assert tabs(todo.text) == {"todo": "1*", "done": "1", "started": "0", "cc": "0"}
    assert (
        ">待办 <" in todo.text
        and ">已办 <" in todo.text
        and "我发起的" in todo.text
        and "抄送我的" in todo.text
    )
    assert "文档 D-002" in todo.text and "D-001" not in todo.text
    done = ann.get("/tasks?view=done")
    assert tabs(done.text)["done"] == "1*"
    assert cards(done.text) == [str(task["id"])]
    assert (
        '<span class="state task-approved">同意</span> · <time>2026-12-04 10:00</time> — “好的”' in done.text
    )
    assert "审批当前状态：审批中" in done.text

    rep = signed_in(desk, "rep")
    started = rep.get("/tasks?view=started")
    assert tabs(started.text) == {"todo": "0", "done": "0", "started": "2*", "cc": "0"}
    assert cards(started.text, "approval") == [
        str(approval_of(desk, first + 1)),
        str(approval_of(desk, first)),
    ]
    assert (
        "now at Final · waiting for bob" in started.text
        and "now at Manager · waiting for ann" in started.text
    )

    carl = signed_in(desk, "carl")  # the manager step copies carl
    copies = carl.get("/tasks?view=cc")
    assert (
        tabs(copies.text)["cc"] == "1*" and "文档 D-001" in copies.text and "评审 · 经理审批" in copies.text
    )
    assert "没有待办。" in carl.get("/tasks").text


def test_each_view_is_paged(desk: Desk, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(inbox_pages, "PAGE", 2)
    for number in ("D-001", "D-002", "D-003"):
        desk.submitted(number)
    rep = signed_in(desk, "rep")
    first = rep.get("/tasks?view=started")
    assert len(cards(first.text, "approval")) == 2 and "D-003" in first.text and "D-001" not in first.text
    assert (
        'href="/tasks?view=started&amp;offset=2" rel="next"' in first.text and 'rel="prev"' not in first.text
    )
    second = rep.get("/tasks?view=started&offset=2")
    assert len(cards(second.text, "approval")) == 1 and "D-001" in second.text
    assert (
        'href="/tasks?view=started&amp;offset=0" rel="prev"' in second.text
        and 'rel="next"' not in second.text
    )
    assert tabs(rep.get("/tasks?view=nonsense&offset=x").text)["todo"] == "0*", (
        "an unknown view is the to-do list"
    )


def test_an_approver_added_before_decides_first_and_the_task_waits(desk: Desk) -> None:
    desk.submitted()
    ann = signed_in(desk, "ann")
    task = desk.tasks("ann")[0]["id"]
    page = ann.get("/tasks")
    assert 'value="before" checked' in page.text and 'value="after"' in page.text, "the step allows both"
    assert f'formaction="/tasks/{task}/add_approver"' in page.text
    answer = ann.post_form(f"/tasks/{task}/add_approver", {"position": "before", "add_to": desk.uid("dave")})
    assert answer.status_code == 303 and answer.headers["location"] == "/tasks?done=add_approver"
    waiting = ann.get("/tasks?done=add_approver")
    assert "已加签。" in waiting.text and "等待中：dave 先审批。" in waiting.text
    assert f'action="/tasks/{task}/approve"' not in waiting.text, "a waiting task cannot be decided yet"
    dave = signed_in(desk, "dave")
    asked = dave.get("/tasks")
    assert "ann added you to decide before them" in asked.text
    consult = cards(asked.text)[0]
    assert dave.post_form(f"/tasks/{consult}/approve", {}).status_code == 303
    assert f'action="/tasks/{task}/approve"' in ann.get("/tasks").text, "back with ann once dave approved"


def test_adding_an_approver_is_offered_only_where_the_step_allows_it(desk: Desk) -> None:
    desk.submitted()
    desk.decide("ann")
    bob = signed_in(desk, "bob")
    task = desk.tasks("bob")[0]["id"]
    page = bob.get("/tasks")
    assert cards(page.text) == [str(task)] and "add_approver" not in page.text
    refused = bob.post_form(f"/tasks/{task}/add_approver", {"position": "after", "add_to": desk.uid("dave")})
    assert refused.status_code == 403
    assert alerts(refused.text) == ["This step does not allow adding an approver there."]
    nobody = bob.post_form(f"/tasks/{task}/delegate", {"to": ""})
    assert nobody.status_code == 422 and alerts(nobody.text) == ["Choose a user from the list first."]
    assert desk.tasks("bob")[0]["status"] == "open"


def test_the_submitter_nudges_and_withdraws_from_started(desk: Desk) -> None:
    record = desk.submitted()
    approval = approval_of(desk, record)
    rep = signed_in(desk, "rep")
    page = rep.get("/tasks?view=started")
    assert f'action="/approvals/{approval}/nudge"' in page.text
    assert f'action="/approvals/{approval}/withdraw"' in page.text
    nudged = rep.post_form(f"/approvals/{approval}/nudge", {})
    assert nudged.headers["location"] == "/tasks?view=started&done=nudge"
    assert desk.messages("ann")[0].endswith("催办：文档 D-001 等待您审批（评审 · 经理审批）")
    again = rep.post_form(f"/approvals/{approval}/nudge", {})
    assert again.status_code == 409
    assert alerts(again.text) == ["You can nudge once every 1h"]
    rep.post_form("/account/language", {"language": "zh", "next": "/tasks"})
    assert alerts(rep.post_form(f"/approvals/{approval}/nudge", {}).text) == ["刚刚催办过，请稍后再试。"]
    rep.post_form("/account/language", {"language": "en", "next": "/tasks"})
    ann = signed_in(desk, "ann")  # reads Chinese
    assert ann.post_form(f"/approvals/{approval}/nudge", {}).status_code == 404, "only the submitter nudges"
    withdrawn = rep.post_form(f"/approvals/{approval}/withdraw", {"comment": "wrong customer"})
    assert withdrawn.headers["location"] == "/tasks?view=started&done=withdraw"
    assert desk.status(record) == "draft"
    after = rep.get("/tasks?view=started&done=withdraw")
    assert (
        "The approval was withdrawn." in after.text
        and '<span class="state state-withdrawn">withdrawn' in after.text
    )
    assert f"/approvals/{approval}/nudge" not in after.text


def test_withdrawing_is_offered_only_while_nobody_has_decided(desk: Desk) -> None:
    record = desk.submitted()
    desk.decide("ann")
    approval = approval_of(desk, record)
    rep = signed_in(desk, "rep")
    page = rep.get("/tasks?view=started")
    assert f"/approvals/{approval}/nudge" in page.text and f"/approvals/{approval}/withdraw" not in page.text
    refused = rep.post_form(f"/approvals/{approval}/withdraw", {})
    assert refused.status_code == 409 and "Someone has decided already" in alerts(refused.text)[0]
    assert desk.status(record) == "review"


def test_every_post_needs_the_csrf_token(desk: Desk) -> None:
    record = desk.submitted()
    approval = approval_of(desk, record)
    rep = signed_in(desk, "rep")
    for path in (f"/approvals/{approval}/withdraw", f"/approvals/{approval}/nudge"):
        answer = rep.post(path, data={}, follow_redirects=False)
        assert answer.status_code == 403
    ann = signed_in(desk, "ann")
    task = desk.tasks("ann")[0]["id"]
    forged = ann.post(f"/tasks/{task}/add_approver", data={"position": "after", "add_to": desk.uid("dave")})
    assert forged.status_code == 403
    assert desk.status(record) == "review" and desk.messages("ann")[0].startswith("待您审批")
    assert [t["status"] for t in desk.tasks("ann")] == ["open"]
