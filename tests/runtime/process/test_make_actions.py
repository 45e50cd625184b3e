"""Make actions: a user makes a record of another form from the record shown — a purchase
order from an approved request, its lines mapped from the request's items — through the
API (`…/{id}/actions`) and a button on the record page; who may (the action's roles, create
on the new form, read of the source, update with `store_in`), when (`states`: 409, `when`:
422), the history of both records, and the load checks with positions. Both databases."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from runtime.boot import Runtime
from runtime.loading.loader import load_pack
from runtime.loading.problems import DefinitionError
from tests.support import WebClient, serve, user_token, web_client, write_files, write_pack

APP = """\
    app: t
    label: Test
    version: '1'
    roles:
      - {key: rep}
      - {key: boss}
      - {key: clerk}
    """
FORMS = {
    "request": """\
        form: request
        label: {zh: 采购申请, en: Request}
        title_field: title
        permissions:
          - {roles: [rep], can: [create, read, update], scope: own}
          - {roles: [boss], can: [read, update], scope: all}
          - {roles: [clerk], can: [read], scope: all}
        fields:
          - {key: title, type: text, required: true}
          - {key: amount, type: money}
          - {key: status, type: select, options: [draft, approved], default: draft}
          - {key: items, type: table, form: request_item}
          - {key: order, type: link, to: order, read_only: true}
        actions:
          - key: make_order
            label: {zh: 生成采购单, en: Make a purchase order}
            make: order
            values: {request: id, title: "CONCAT('PO ', title)", total: amount}
            children:
              lines: {from: items, values: {name: name, quantity: qty, price: price}}
            roles: [rep, clerk]
            states: [approved]
            store_in: order
          - key: make_memo
            make: memo
            values: {text: title}
            when: "amount > 100"
            when_message: {zh: 金额须大于 100, en: Only above 100}
        """,
    "request_item": """\
        form: request_item
        label: Item
        child: true
        fields:
          - {key: name, type: text}
          - {key: qty, type: integer}
          - {key: price, type: money}
        """,
    "order": """\
        form: order
        label: {zh: 采购单, en: Purchase order}
        title_field: title
        permissions:
          - {roles: [rep], can: [create, read], scope: own}
          - {roles: [clerk], can: [create, read], scope: all}
          - {roles: [boss], can: [read], scope: all}
        fields:
          - {key: title, type: text, required: true}
          - {key: request, type: link, to: request}
          - {key: total, type: money}
          - {key: lines, type: table, form: order_line}
          - {key: lines_total, type: money, formula: "SUM(lines.amount)"}
        """,
    "order_line": """\
        form: order_line
        label: Line
        child: true
        fields:
          - {key: name, type: text, required: true}
          - {key: quantity, type: integer}
          - {key: price, type: money}
          - {key: amount, type: money, formula: "quantity * price"}
        """,
    "memo": """\
        form: memo
        label: Memo
        permissions:
          - {roles: [rep], can: [create, read], scope: own}
        fields:
          - {key: text, type: text}
        """,
}
WORKFLOW = """\
    workflow: request_flow
    form: request
    field: status
    states:
      - {key: draft, initial: true}
      - {key: approved}
    transitions:
      - {action: approve, from: draft, to: approved, roles: [boss]}
    """


@dataclass
class Shop:
    runtime: Runtime
    rep: TestClient
    boss: TestClient
    clerk: TestClient
    web: WebClient
    request: int

    def url(self, tail: str = "", request: int | None = None) -> str:
        return f"/api/v1/t/request/{request or self.request}/actions{tail}"

    def approve(self, request: int | None = None) -> None:
        answer = self.boss.post(f"/api/v1/t/request/{request or self.request}/transitions/approve")
        assert answer.status_code == 200, answer.text


def _client(runtime: Runtime, name: str, roles: tuple[str, ...]) -> TestClient:
    token = user_token(runtime.engine, name, roles)
    return TestClient(runtime.api, headers={"Authorization": f"Bearer {token}"})


def _pack(root: Path, forms: dict[str, str] = FORMS) -> Path:
    return write_files(write_pack(root, forms), {"app.yaml": APP, "workflows/request.yaml": WORKFLOW})


@pytest.fixture
def shop(db_url: str, tmp_path: Path) -> Iterator[Shop]:
    runtime, _ = serve(_pack(tmp_path / "pack"), db_url, tmp_path / "files")
    web = web_client(runtime, "rep", ("rep",))
    rep = _client(runtime, "rep", ("rep",))
    shop = Shop(
        runtime, rep, _client(runtime, "boss", ("boss",)), _client(runtime, "clerk", ("clerk",)), web, 0
    )
    items = [{"name": "Desk", "qty": 2, "price": 300}, {"name": "Chair", "qty": 4, "price": 80}]
    made = rep.post("/api/v1/t/request", json={"title": "Office", "amount": 920, "items": items})
    assert made.status_code == 201, made.text
    shop.request = int(made.json()["id"])
    try:
        yield shop
    finally:
        runtime.engine.dispose()


def _actions(client: TestClient, url: str) -> dict[str, dict[str, Any]]:
    answer = client.get(url)
    assert answer.status_code == 200, answer.text
    return {item["key"]: item for item in answer.json()["items"]}


# -- the API ------------------------------------------------------------------------------


def test_a_make_action_creates_the_record_with_mapped_values_and_rows(shop: Shop) -> None:
    shop.approve()
    listed = _actions(shop.rep, shop.url())
    assert listed["make_order"]["ready"] is True and listed["make_order"]["form"] == "order"
    answer = shop.rep.post(shop.url("/make_order"))
    assert answer.status_code == 201, answer.text
    order = answer.json()
    assert answer.headers["location"] == f"/api/v1/t/order/{order['id']}"
    assert order["title"] == "PO Office" and order["total"] == "920.00"
    assert order["request"] == {"id": shop.request, "display": "Office"}
    assert [(line["name"], line["quantity"], line["amount"]) for line in order["lines"]] == [
        ("Desk", 2, "600.00"),
        ("Chair", 4, "320.00"),
    ], "child rows mapped, their formulas computed"
    assert order["lines_total"] == "920.00"
    assert order["created_by"]["display"] == "rep", "the maker creates it"
    source = shop.rep.get(f"/api/v1/t/request/{shop.request}").json()
    assert source["order"]["id"] == order["id"], "store_in keeps the new record on the source"


def test_both_records_tell_the_story(shop: Shop) -> None:
    shop.approve()
    order = shop.rep.post(shop.url("/make_order")).json()
    source = shop.rep.get(f"/api/v1/t/request/{shop.request}/history").json()["items"]
    made = [e for e in source if e["action"] == "make"]
    assert len(made) == 1 and made[0]["channel"] == "action" and made[0]["user"]["display"] == "rep"
    assert made[0]["changes"] == {"action": "make_order", "form": "order", "id": order["id"]}
    trail = shop.rep.get(f"/api/v1/t/order/{order['id']}/history").json()["items"]
    assert [e["action"] for e in trail] == ["create", "made_from"]
    assert trail[1]["changes"] == {"action": "make_order", "form": "request", "id": shop.request}


def test_a_make_action_waits_for_its_states_and_its_condition(shop: Shop) -> None:
    listed = _actions(shop.rep, shop.url())
    assert listed["make_order"]["ready"] is False and "draft" in listed["make_order"]["reason"]
    refused = shop.rep.post(shop.url("/make_order"))
    assert refused.status_code == 409 and refused.json()["errors"][0]["code"] == "state"
    cheap = shop.rep.post("/api/v1/t/request", json={"title": "Pens", "amount": 20}).json()["id"]
    memo = _actions(shop.rep, shop.url(request=cheap))["make_memo"]
    assert memo == {
        "key": "make_memo",
        "label": None,
        "form": "memo",
        "ready": False,
        "reason": "Only above 100",
    }
    guarded = shop.rep.post(shop.url("/make_memo", request=cheap))
    assert guarded.status_code == 422, guarded.text
    assert guarded.json()["errors"][0] == {"field": None, "code": "guard", "message": "Only above 100"}
    assert shop.rep.post(shop.url("/make_memo")).status_code == 201
    assert shop.rep.get("/api/v1/t/memo").json()["items"][0]["text"] == "Office"


def test_who_may_make(shop: Shop) -> None:
    shop.approve()
    boss = _actions(shop.boss, shop.url())
    assert boss == {}, "the boss holds no role of make_order and may not create memos"
    assert shop.boss.post(shop.url("/make_order")).status_code == 403
    assert shop.clerk.post(shop.url("/make_order")).status_code == 403, "store_in needs update on the source"
    assert _actions(shop.clerk, shop.url()) == {}
    other = _client(shop.runtime, "other_rep", ("rep",))
    assert other.post(shop.url("/make_order")).status_code == 404, "a record out of scope is not found"
    assert other.get(shop.url()).status_code == 404
    unknown = shop.rep.post(shop.url("/make_nothing"))
    assert unknown.status_code == 404 and unknown.json()["errors"][0]["code"] == "not_found"
    assert shop.rep.get("/api/v1/t/order").json()["items"] == [], "nothing was made"


def test_the_action_routes_are_in_the_spec(shop: Shop) -> None:
    paths = shop.runtime.api.openapi()["paths"]
    post = paths["/api/v1/t/request/{record_id}/actions/make_order"]["post"]
    assert set(post["responses"]) >= {"201", "401", "403", "404", "409", "422"}
    created = post["responses"]["201"]["content"]["application/json"]["schema"]
    assert created["anyOf"][0] == {"$ref": "#/components/schemas/TOrder"}
    assert "/api/v1/t/request/{record_id}/actions" in paths


# -- the web ------------------------------------------------------------------------------


def test_the_record_page_has_a_button_that_makes_and_opens_the_record(shop: Shop) -> None:
    page = shop.web.get(f"/app/t/request/{shop.request}")
    assert 'data-make="make_order"' in page.text and "Make a purchase order" in page.text
    assert (
        'disabled aria-describedby="why-make-make_order"' in page.text
        and "Possible in: approved" in page.text
    )
    shop.approve()
    answer = shop.web.post_form(f"/app/t/request/{shop.request}/make/make_order", {})
    assert answer.status_code == 303, answer.text
    location = answer.headers["location"]
    assert location.startswith("/app/t/order/") and location.endswith("?made=1")
    opened = shop.web.get(location)
    assert opened.status_code == 200 and "PO Office" in opened.text and 'role="status"' in opened.text
    again = shop.web.get(f"/app/t/request/{shop.request}")
    assert "Make a purchase order · Purchase order #" in again.text, "the timeline tells what was made"


def test_a_refused_make_is_explained_on_the_page(shop: Shop) -> None:
    cheap = shop.rep.post("/api/v1/t/request", json={"title": "Pens", "amount": 20}).json()["id"]
    answer = shop.web.post_form(f"/app/t/request/{cheap}/make/make_memo", {})
    assert answer.status_code == 422 and "Only above 100" in answer.text
    assert 'role="alert"' in answer.text
    shop.web.csrf = "wrong"
    forged = shop.web.post_form(f"/app/t/request/{shop.request}/make/make_order", {})
    assert forged.status_code == 403, "no CSRF token, nothing made"


# -- load checks --------------------------------------------------------------------------


def test_make_actions_are_checked_with_positions(tmp_path: Path) -> None:
    request = """\
        form: request
        label: Request
        fields:
          - {key: title, type: text}
          - {key: amount, type: money}
          - {key: items, type: table, form: request_item}
        actions:
          - {key: one, make: ordre}
          - key: two
            make: order
            values: {titel: title, total: "'cheap'"}
            children: {rows: {from: items, values: {name: name}}, lines: {from: itmes, values: {name: qty}}}
            store_in: amount
            roles: [nobody]
            states: [approved]
            when: "amount + 1"
          - {key: one, make: memo}
        """
    forms = {**FORMS, "request": request}
    with pytest.raises(DefinitionError) as caught:
        load_pack(write_files(write_pack(tmp_path / "bad", forms), {"app.yaml": APP}))
    assert [str(p) for p in caught.value.problems] == [
        "forms/request.yaml:8:22: unknown form 'ordre' (did you mean 'order'?)",
        "forms/request.yaml:11:13: 'title' of order is required: give it a value in values",
        "forms/request.yaml:11:21: unknown field of order 'titel' (did you mean 'title'?)",
        "forms/request.yaml:11:36: the expression gives a text value; this needs a decimal value",
        "forms/request.yaml:12:22: 'rows' is not a table field of order",
        "forms/request.yaml:12:73: 'itmes' is not a table field of request",
        "forms/request.yaml:13:15: 'amount' is not a link field of request to order",
        "forms/request.yaml:14:13: unknown role 'nobody'",
        "forms/request.yaml:15:13: form 'request' has no workflow: its states cannot be named",
        "forms/request.yaml:16:12: the expression gives a decimal value; this needs a boolean value",
        "forms/request.yaml:17:11: action 'one' is given twice",
    ]
