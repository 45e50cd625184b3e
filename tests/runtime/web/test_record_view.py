"""The record page: values, workflow actions (with their values and guards), approvals, timeline."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import select

from runtime.boot import Runtime
from runtime.db import write
from runtime.identity.actor import SYSTEM
from runtime.schema.system import notifications, users
from runtime.schema.types import utcnow
from tests.runtime.process.approval_pack import Desk
from tests.runtime.web.desk import alerts, approval_of, signed_in
from tests.runtime.web.pack import deal_pack
from tests.support import count_queries, serve, web_client


@pytest.fixture
def crm(db_url: str, tmp_path: Path) -> Runtime:
    runtime, _ = serve(deal_pack(tmp_path / "pack"), db_url, tmp_path / "files")
    return runtime


def deal(runtime: Runtime, record_id: int) -> dict:
    return dict(runtime.service.get("crm", "deal", record_id, SYSTEM))


def new_deal(runtime: Runtime, username: str, **values: str) -> int:
    client = web_client(runtime, username, ("rep",))
    answer = client.post_form("/app/crm/deal/new", {"title": "Deal", **values})
    assert answer.status_code == 303, answer.text
    return int(re.findall(r"/deal/(\d+)", answer.headers["location"])[0])


def test_the_record_page_shows_formatted_values_and_the_actions_the_user_may_take(crm: Runtime) -> None:
    record_id = new_deal(crm, "rita", amount="1200", discount="25", tags="hot")
    page = web_client(crm, "rita", ("rep",)).get(f"/app/crm/deal/{record_id}")
    assert page.status_code == 200
    assert "25%" in page.text and "900.00" in page.text
    assert 'data-action="submit"' in page.text
    assert 'summary class="button primary" data-action="win"' in page.text, "win asks for an account"
    assert "Created" in page.text, "the timeline starts with the creation"
    assert re.search(r'role="tab"[^>]*aria-selected="true" >Details</button>', page.text)


def test_an_action_with_values_moves_the_record_and_a_guard_refusal_is_shown(crm: Runtime) -> None:
    record_id = new_deal(crm, "rita")
    rep = web_client(crm, "rita", ("rep",))
    account = rep.post_form("/app/crm/account/new", {"name": "Acme"})
    account_id = re.findall(r"/account/(\d+)", account.headers["location"])[0]
    refused = rep.post_form(f"/app/crm/deal/{record_id}/do/win", {"account": account_id})
    assert refused.status_code in (409, 422)
    assert "A won deal needs an amount" in refused.text
    assert deal(crm, record_id)["status"] == "open"
    crm.service.update("crm", "deal", record_id, {"amount": 10}, None, SYSTEM)
    missing = rep.post_form(f"/app/crm/deal/{record_id}/do/win", {"account": ""})
    assert missing.status_code == 422 and deal(crm, record_id)["status"] == "open"
    taken = rep.post_form(f"/app/crm/deal/{record_id}/do/win", {"account": account_id, "comment": "signed"})
    assert taken.status_code == 303
    assert deal(crm, record_id)["status"] == "won"
    page = rep.get(f"/app/crm/deal/{record_id}")
    assert "open → won (Mark won)" in page.text
    assert "“signed”" in page.text


def test_approvals_show_on_the_record_and_are_decided_from_the_inbox(crm: Runtime) -> None:
    boss = web_client(crm, "bea", ("boss",))
    record_id = new_deal(crm, "rita")
    rep = web_client(crm, "rita", ("rep",))
    rep.post_form(f"/app/crm/deal/{record_id}/do/submit", {})
    inbox = boss.get("/tasks")
    task_id = re.findall(r'id="task-(\d+)"', inbox.text)[0]
    assert f'href="/app/crm/deal/{record_id}"' in inbox.text and "Big deal approval · The boss" in inbox.text
    assert "<dt>owner</dt><dd>rita</dd>" in inbox.text, "the list columns tell the approver what it is"
    record_page = boss.get(f"/app/crm/deal/{record_id}")
    assert (
        "Big deal approval" in record_page.text and f'action="/tasks/{task_id}/approve"' in record_page.text
    )
    no_comment = boss.post_form(f"/tasks/{task_id}/reject", {"comment": ""})
    assert no_comment.status_code == 422 and "comment" in no_comment.text
    assert deal(crm, record_id)["status"] == "pending"
    done = boss.post_form(f"/tasks/{task_id}/approve", {"comment": "fine"})
    assert done.headers["location"] == "/tasks?done=approve"
    assert deal(crm, record_id)["status"] == "won"
    assert "Nothing to do." in boss.get("/tasks").text


def test_a_task_is_delegated_to_another_user(crm: Runtime) -> None:
    boss = web_client(crm, "bea", ("boss",))
    deputy = web_client(crm, "dan", ("rep",))
    record_id = new_deal(crm, "rita")
    web_client(crm, "rita", ("rep",)).post_form(f"/app/crm/deal/{record_id}/do/submit", {})
    task_id = re.findall(r'id="task-(\d+)"', boss.get("/tasks").text)[0]
    dan_id = re.findall(r'data-pick-id="(\d+)"', boss.get("/users/_pick?q=dan").text)[0]
    answer = boss.post_form(f"/tasks/{task_id}/delegate", {"to": dan_id, "comment": "on leave"})
    assert answer.status_code == 303, re.findall(r"notice error[^>]*>(.*?)</div>", answer.text, re.S)
    assert f'href="/app/crm/deal/{record_id}"' in deputy.get("/tasks").text


def test_notifications_are_listed_opened_and_marked_read(crm: Runtime) -> None:
    record_id = new_deal(crm, "rita")
    rep = web_client(crm, "rita", ("rep",))
    with write(crm.engine) as conn:
        rita = conn.execute(select(users.c.id).where(users.c.username == "rita")).scalar_one()
        conn.execute(
            notifications.insert().values(
                user_id=rita,
                app="crm",
                form="deal",
                record_id=record_id,
                message="Hello Rita",
                created_at=utcnow(),
            )
        )
    polled = rep.get("/nav/counts", headers={"HX-Request": "true"})
    assert '<span id="count-unread" hx-swap-oob="true"><span class="badge">1</span></span>' in polled.text, (
        "the navigation polls its counts, so a new notification shows without a reload"
    )
    page = rep.get("/notifications")
    assert "Hello Rita" in page.text
    assert '<span class="badge">1</span>' in page.text
    notification_id = re.findall(r"/notifications/(\d+)/read", page.text)[0]
    opened = rep.post_form(f"/notifications/{notification_id}/read", {"next": f"/app/crm/deal/{record_id}"})
    assert opened.headers["location"] == f"/app/crm/deal/{record_id}"
    assert '<span class="badge">' not in rep.get("/notifications").text


def test_the_inbox_reads_its_records_in_one_query_per_form(crm: Runtime) -> None:
    boss = web_client(crm, "bea", ("boss",))
    rep = web_client(crm, "rita", ("rep",))
    for _ in range(2):
        rep.post_form(f"/app/crm/deal/{new_deal(crm, 'rita')}/do/submit", {})
    with count_queries(crm.engine) as two:
        boss.get("/tasks")
    for _ in range(6):
        rep.post_form(f"/app/crm/deal/{new_deal(crm, 'rita')}/do/submit", {})
    with count_queries(crm.engine) as eight:
        page = boss.get("/tasks")
    assert page.text.count('class="panel task-card"') == 8
    ignore = "FROM formloom_apps"  # the once-a-second publish check
    assert len([q for q in eight if ignore not in q]) == len([q for q in two if ignore not in q])


# -- the route ahead, withdraw and nudge (the approval desk of the process tests) ----------------


def route(html: str) -> list[str]:
    """The route panel's steps as "label: people", the current one starred."""
    panel = html[html.index('id="route-title"') : html.index("</section>", html.index('id="route-title"'))]
    found = re.findall(
        r'<li class="route-step( current)?".*?<strong>(.*?)</strong>.*?<span>(.*?)</span>', panel, re.S
    )
    return [f"{label}: {people}" + ("*" if current else "") for current, label, people in found]


def test_the_record_shows_the_route_ahead_before_and_during_its_approval(desk: Desk) -> None:
    rep = signed_in(desk, "rep")
    made = desk.clients["rep"].post("/api/v1/t/doc", json={"number": "D-002"}).json()
    before = rep.get(f"/app/t/doc/{made['id']}").text
    assert "if submitted now" in before and route(before) == ["Manager: ann", "Final: bob"]
    desk.clients["rep"].post(f"/api/v1/t/doc/{made['id']}/transitions/submit", json={})
    during = rep.get(f"/app/t/doc/{made['id']}").text
    assert "in progress" in during and route(during) == ["Manager: ann*", "Final: bob"]
    assert 'aria-current="step"' in during
    desk.decide("ann")
    ann = signed_in(desk, "ann")  # reads Chinese
    assert route(ann.get(f"/app/t/doc/{made['id']}").text) == ["终审: bob*"]
    desk.decide("bob")
    assert 'id="route-title"' not in rep.get(f"/app/t/doc/{made['id']}").text, "approved: no route ahead"


def test_the_submitter_nudges_and_withdraws_on_the_record_page(desk: Desk) -> None:
    record = desk.submitted()
    approval = approval_of(desk, record)
    rep, ann = signed_in(desk, "rep"), signed_in(desk, "ann")
    base = f"/app/t/doc/{record}/approvals/{approval}"
    assert f'action="{base}/nudge"' in rep.get(f"/app/t/doc/{record}").text
    assert f"{base}/nudge" not in ann.get(f"/app/t/doc/{record}").text, "only the submitter sees them"
    assert ann.post_form(f"{base}/nudge", {}).status_code == 404
    nudged = rep.post_form(f"{base}/nudge", {})
    assert nudged.headers["location"] == f"/app/t/doc/{record}?done=nudge"
    assert "The approvers were reminded." in rep.get(nudged.headers["location"]).text
    again = rep.post_form(f"{base}/nudge", {})
    assert again.status_code == 409 and alerts(again.text) == ["You can nudge once every 1h"]
    assert rep.post(f"{base}/withdraw", data={}, follow_redirects=False).status_code == 403, "CSRF"
    withdrawn = rep.post_form(f"{base}/withdraw", {"comment": "wrong customer"})
    assert withdrawn.headers["location"] == f"/app/t/doc/{record}?done=withdraw"
    page = rep.get(withdrawn.headers["location"]).text
    assert desk.status(record) == "draft"
    assert "The approval was withdrawn." in page and '<span class="state state-withdrawn">withdrawn' in page
    assert "if submitted now" in page, "withdrawn: the route shows again, as a new submission would take it"
    assert "<strong>Approval withdrawn</strong>" in page and "“wrong customer”" in page


def test_the_timeline_tells_added_approvers_nudges_and_deadlines(desk: Desk) -> None:
    record = desk.submitted()
    task = desk.tasks("ann")[0]["id"]
    desk.clients["ann"].post(
        f"/api/v1/tasks/{task}/add_approver", json={"to": desk.uid("dave"), "position": "before"}
    )
    desk.clients["rep"].post(f"/api/v1/approvals/{approval_of(desk, record)}/nudge")
    desk.at("2026-12-08 10:30")  # one working day on: the manager step's reminder
    carl = signed_in(desk, "carl")  # reads Chinese; may read every doc
    text = re.sub(r"\s+", " ", carl.get(f"/app/t/doc/{record}").text)
    assert "<strong>加签</strong> · ann" in text and "前加签：dave 先审批" in text
    assert "<strong>催办</strong> · rep" in text and "评审 · 提醒 ann、dave" in text
    assert "<strong>超时提醒</strong> · 系统" in text and "评审 · 经理审批" in text
    assert "经理审批 · dave（加签） · 待处理" in text and "经理审批 · ann · 等待加签人审批" in text
