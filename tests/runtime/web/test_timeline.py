"""The timeline in people's terms: child rows by number and field, reapprovals by the fields that
changed; a change the approval or the state does not allow, refused at the top of the form; and
Withdraw offered only where the approval says where the record goes."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from runtime.boot import Runtime
from tests.runtime.web.desk import alerts
from tests.support import WebClient, serve, user_token, web_client, write_files, write_pack

APP = """\
app: t
label: T
version: 1.0.0
roles: [{key: rep}, {key: manager}]
"""
LINE = """
form: line
label: {zh: 明细, en: Line}
child: true
fields:
  - {key: item, type: text, label: {zh: 品名, en: Item}}
  - {key: discount, type: percent, label: {zh: 折扣率, en: Discount}}
  - {key: amount, type: money, label: {zh: 金额, en: Amount}}
"""
QUOTE = """
form: quote
label: {zh: 报价, en: Quote}
title_field: title
fields:
  - {key: title, type: text, required: true}
  - {key: discount, type: percent, label: {zh: 折扣率, en: Discount}}
  - {key: status, type: select, options: [draft, pending, approved, signed]}
  - {key: owner, type: user, default: current_user}
  - {key: lines, type: table, form: line, label: {zh: 报价明细, en: Lines}}
permissions:
  - {roles: [rep, manager], can: [create, read, update], scope: all}
"""
WORKFLOW = """
workflow: quote_flow
form: quote
field: status
states:
  - {key: draft, initial: true}
  - {key: pending}
  - {key: approved}
  - {key: signed, material: [lines]}
transitions:
  - {action: submit, from: draft, to: pending, effects: [{start_approval: quote_ok}]}
  - {action: approve, from: pending, to: approved, system: true}
  - {action: back, from: pending, to: draft, system: true}
  - {action: reopen, from: approved, to: pending, system: true}
  - {action: sign, from: approved, to: signed}
"""
APPROVAL = """
approval: quote_ok
form: quote
label: {zh: 折扣审批, en: Discount approval}
material: [discount, lines]
on_change: reapprove
steps:
  - {name: manager, approvers: {users: [mgr]}}
on_approved: [{transition: approve}]
on_rejected: [{transition: back}]
on_reapprove: [{transition: reopen}]
"""


class Shop:
    """The pack served, with an API client and a web client for the rep, and the manager's API client."""

    def __init__(self, db_url: str, root: Path) -> None:
        pack = write_pack(root / "pack", {"quote": QUOTE, "line": LINE})
        write_files(
            pack, {"app.yaml": APP, "workflows/quote.yaml": WORKFLOW, "approvals/quote.yaml": APPROVAL}
        )
        self.runtime: Runtime
        self.runtime, _ = serve(pack, db_url, root / "files")
        self.zh: WebClient = web_client(self.runtime, "rep", ("rep",), language="zh")
        self.en: WebClient = web_client(self.runtime, "mgr", ("manager",), language="en")
        self.api = {
            name: TestClient(
                self.runtime.api,
                headers={"Authorization": f"Bearer {user_token(self.runtime.engine, name, ())}"},
            )
            for name in ("rep", "mgr")
        }

    def quote(self, discount: str, lines: list[dict[str, Any]]) -> dict[str, Any]:
        made = self.api["rep"].post(
            "/api/v1/t/quote", json={"title": "Q1", "discount": discount, "lines": lines}
        )
        assert made.status_code == 201, made.text
        return dict(made.json())

    def patch(self, record: int, **values: Any) -> None:
        answer = self.api["rep"].patch(f"/api/v1/t/quote/{record}", json=values)
        assert answer.status_code == 200, answer.text

    def approved(self, record: int) -> None:
        assert (
            self.api["rep"].post(f"/api/v1/t/quote/{record}/transitions/submit", json={}).status_code == 200
        )
        task = self.api["mgr"].get("/api/v1/tasks").json()["items"][0]
        assert self.api["mgr"].post(f"/api/v1/tasks/{task['id']}/approve", json={}).status_code == 200

    def get(self, record: int) -> dict[str, Any]:
        return dict(self.api["rep"].get(f"/api/v1/t/quote/{record}").json())


@pytest.fixture
def shop(db_url: str, tmp_path: Path) -> Iterator[Shop]:
    built = Shop(db_url, tmp_path)
    yield built
    built.runtime.engine.dispose()


def changes(client: WebClient, record: int) -> list[str]:
    """The timeline's change lines, newest entry first, as text (`~x~` is struck out)."""
    page = client.get(f"/app/t/quote/{record}").text
    timeline = page[page.index('class="timeline"') :]
    found = re.findall(r'<li class="change-\w+">(.*?)</li>', timeline, re.S)
    return [re.sub(r"</?del>", "~", line) for line in found]


def summaries(client: WebClient, record: int) -> list[str]:
    page = client.get(f"/app/t/quote/{record}").text
    return re.findall(r'<p class="muted">(.*?)</p>', page[page.index('class="timeline"') :])


def test_child_rows_are_told_by_row_number_and_field(shop: Shop) -> None:
    quote = shop.quote("0", [{"item": "a", "discount": "0.1"}, {"item": "b", "discount": "0.45"}])
    a, b = (row["id"] for row in quote["lines"])
    shop.patch(quote["id"], lines=[{"id": a}, {"id": b, "discount": "0.7"}, {"item": "c", "amount": "5"}])
    zh = changes(shop.zh, quote["id"])
    assert zh[:2] == ["报价明细 第2行 折扣率: ~45%~ → 70%", "报价明细 添加第3行: 品名 c, 金额 ¥5.00"]
    en = changes(shop.en, quote["id"])
    assert en[:2] == ["Lines row 2 · Discount: ~45%~ → 70%", "Lines row 3 added: Item c, Amount CN¥5.00"]
    shop.patch(quote["id"], lines=[{"id": b}, {"id": shop.get(quote["id"])["lines"][2]["id"]}])
    zh = changes(shop.zh, quote["id"])
    assert zh[0] == "报价明细 删除第1行: ~品名 a, 折扣率 10%~"
    assert zh[1] == "报价明细 第1行 折扣率: ~45%~ → 70%", "rows are numbered as the record holds them now"
    assert "Lines row 1 removed: ~Item a, Discount 10%~" in changes(shop.en, quote["id"])


def test_a_reapproval_names_the_material_fields_that_changed(shop: Shop) -> None:
    quote = shop.quote("0.2", [{"item": "a", "discount": "0.1"}])
    shop.approved(quote["id"])
    row = quote["lines"][0]["id"]
    shop.patch(quote["id"], discount="0.45", lines=[{"id": row, "discount": "0.7"}])
    assert shop.get(quote["id"])["status"] == "pending"
    assert "修改了审批要素（折扣率、报价明细），重新审批" in summaries(shop.zh, quote["id"])
    assert "Changed what was approved (Discount, Lines): approval starts again" in summaries(
        shop.en, quote["id"]
    )
    page = shop.zh.get(f"/app/t/quote/{quote['id']}").text
    assert "<strong>重新审批</strong>" in page


def test_a_material_change_on_the_web_form_is_refused_at_the_top_and_the_input_kept(shop: Shop) -> None:
    quote = shop.quote("0.2", [{"item": "a", "discount": "0.1"}])
    shop.approved(quote["id"])
    assert shop.api["rep"].post(f"/api/v1/t/quote/{quote['id']}/transitions/sign", json={}).status_code == 200
    stored = shop.get(quote["id"])
    form = {
        "version": str(stored["version"]),
        "title": "Q1",
        "discount": "20",
        "_present": "lines",
        "lines[0].id": str(stored["lines"][0]["id"]),
        "lines[0].item": "a",
        "lines[0].discount": "35",
    }
    refused = shop.zh.post_form(f"/app/t/quote/{quote['id']}/edit", form)
    assert refused.status_code == 409
    assert alerts(refused.text)[0] == "报价明细已锁定，当前不能修改（审批或当前状态不允许）"
    assert 'name="lines[0].discount" value="35"' in refused.text, "what was typed stays"
    english = shop.en.post_form(f"/app/t/quote/{quote['id']}/edit", form)
    assert english.status_code == 409 and "Lines cannot change" in alerts(english.text)[0]
    assert shop.get(quote["id"])["lines"][0]["discount"].startswith("0.1")


def test_withdraw_is_offered_only_where_the_approval_says_where_the_record_goes(shop: Shop) -> None:
    quote = shop.quote("0.2", [{"item": "a"}])
    assert (
        shop.api["rep"].post(f"/api/v1/t/quote/{quote['id']}/transitions/submit", json={}).status_code == 200
    )
    page = shop.zh.get(f"/app/t/quote/{quote['id']}").text
    assert "/nudge" in page
    assert "/withdraw" not in page, (
        "no on_withdrawn: withdrawing would leave the quote pending with nothing running"
    )
    assert "/withdraw" not in shop.zh.get("/tasks?view=started").text
