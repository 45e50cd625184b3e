"""Role, row and field permissions, enforced by the records service on every path."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from runtime.boot import start
from runtime.db import write
from runtime.identity.directory import create_department, create_user
from runtime.identity.tokens import create_token
from tests.support import write_pack

APP = """\
app: t
label: Test
version: '1'
roles:
  - {key: rep}
  - {key: manager}
  - {key: auditor}
"""
ACCOUNT = """\
form: account
label: Account
title_field: name
owner_field: owner
fields:
  - {key: name, type: text}
  - {key: owner, type: user}
permissions:
  - {roles: [rep], can: [create, read], scope: own}
  - {roles: [manager], can: [read], scope: team}
"""
DEAL = """\
form: deal
label: Deal
title_field: title
owner_field: owner
fields:
  - {key: title, type: text}
  - {key: email, type: email}
  - {key: amount, type: money, hidden_for: [rep]}
  - {key: status, type: select, options: [open, won], read_only_for: [rep]}
  - {key: owner, type: user, read_only_for: [rep]}
  - {key: account, type: link, to: account, on_delete: set_null}
duplicates:
  - [email]
permissions:
  - {roles: [rep], can: [create, read, update], scope: own}
  - {roles: [manager], can: [read, update, delete, export], scope: team}
  - {roles: [auditor], can: [read], scope: "status == 'won'"}
  - {roles: [public], can: [create]}
"""
CONFIG = """\
form: config
label: Config
fields:
  - {key: note, type: text}
"""


class Office:
    """An org chart (east under head office, west beside it), one user per role, and records."""

    def __init__(self, db_url: str, root: Path) -> None:
        pack = write_pack(root / "pack", {"account": ACCOUNT, "deal": DEAL, "config": CONFIG})
        (pack / "app.yaml").write_text(APP, encoding="utf-8")
        self.runtime = start([pack], db_url, root / "files")
        self.tokens: dict[str, str] = {}
        with write(self.runtime.engine) as conn:
            create_department(conn, "head", "Head office")
            create_department(conn, "east", "East", parent="head")
            create_department(conn, "west", "West")
            for name, role, department in [
                ("ann", "rep", "east"),
                ("bob", "rep", "west"),
                ("meg", "manager", "head"),
                ("walt", "manager", "west"),
                ("aud", "auditor", None),
                ("root", "admin", None),
            ]:
                create_user(conn, name, None, roles=(role,), department=department)
                self.tokens[name] = create_token(conn, name)
        self.anonymous = TestClient(self.runtime.api)

    def client(self, name: str) -> TestClient:
        return TestClient(self.runtime.api, headers={"Authorization": f"Bearer {self.tokens[name]}"})


@pytest.fixture
def office(db_url: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    built = Office(db_url, tmp_path)
    yield built
    built.runtime.engine.dispose()


def deal(office: Office, name: str, **values: object) -> dict[str, object]:
    response = office.client(name).post("/api/v1/t/deal", json={"title": name, **values})
    assert response.status_code == 201, response.text
    return dict(response.json())


def titles(office: Office, name: str, query: str = "") -> list[str]:
    response = office.client(name).get(f"/api/v1/t/deal?sort=id{query}")
    assert response.status_code == 200, response.text
    return [r["title"] for r in response.json()["items"]]


def test_row_scope_own_team_all_and_expression(office: Office) -> None:
    deal(office, "ann")
    deal(office, "bob")
    office.client("root").post("/api/v1/t/deal", json={"title": "won deal", "status": "won"})
    assert titles(office, "ann") == ["ann"]
    assert titles(office, "bob") == ["bob"]
    assert titles(office, "meg") == ["ann"]  # head office's subtree holds east, not west
    assert titles(office, "walt") == ["bob"]
    assert titles(office, "aud") == ["won deal"]
    assert titles(office, "root") == ["ann", "bob", "won deal"]


def test_operations_a_role_lacks_answer_403(office: Office) -> None:
    ann_deal = deal(office, "ann")
    assert office.client("aud").post("/api/v1/t/deal", json={"title": "x"}).status_code == 403
    assert office.client("ann").delete(f"/api/v1/t/deal/{ann_deal['id']}").status_code == 403
    assert office.client("ann").get("/api/v1/t/config").status_code == 403  # no permissions: admins only
    assert office.client("meg").delete(f"/api/v1/t/deal/{ann_deal['id']}").status_code == 204


def test_records_outside_the_scope_answer_404_on_every_route(office: Office) -> None:
    bob_deal = deal(office, "bob", email="bob@x.cn")
    ann = office.client("ann")
    url = f"/api/v1/t/deal/{bob_deal['id']}"
    assert ann.get(url).status_code == 404
    assert ann.patch(url, json={"title": "mine now"}).status_code == 404
    assert ann.get(f"{url}/history").status_code == 404
    assert ann.get(f"{url}/duplicates").status_code == 404
    assert office.client("bob").get(url).json()["title"] == "bob"


def test_hidden_fields_cannot_be_read_filtered_sorted_or_written(office: Office) -> None:
    root = office.client("root")
    root.post("/api/v1/t/deal", json={"title": "big", "amount": 900, "owner": 1})
    mine = deal(office, "ann")
    ann = office.client("ann")
    assert "amount" not in ann.get(f"/api/v1/t/deal/{mine['id']}").json()
    for probe in ("amount__gt=100", "sort=-amount", "where=amount > 100", "amount__isnull=true"):
        answer = ann.get(f"/api/v1/t/deal?{probe}")
        assert answer.status_code == 422, probe
    refused = ann.post("/api/v1/t/deal", json={"title": "x", "amount": 5})
    assert refused.json()["errors"] == [
        {"field": "amount", "code": "unknown_field", "message": "deal has no field 'amount'"}
    ]
    assert "amount" not in str(ann.get(f"/api/v1/t/deal/{mine['id']}/history").json())


def test_read_only_fields_refuse_writes(office: Office) -> None:
    mine = deal(office, "ann")
    answer = office.client("ann").patch(f"/api/v1/t/deal/{mine['id']}", json={"status": "won"})
    assert answer.json()["errors"][0]["code"] == "read_only"
    meg = office.client("meg")
    assert meg.patch(f"/api/v1/t/deal/{mine['id']}", json={"status": "won"}).status_code == 200


def test_links_to_records_outside_the_scope_show_no_title(office: Office) -> None:
    account = office.client("bob").post("/api/v1/t/account", json={"name": "Bob's secret client"}).json()
    root = office.client("root")
    linked = root.post("/api/v1/t/deal", json={"title": "x", "account": account["id"], "owner": 1}).json()
    ann_view = office.client("ann").get(f"/api/v1/t/deal/{linked['id']}").json()
    assert ann_view["account"] == {"id": account["id"], "display": None}
    assert office.client("walt").get("/api/v1/t/account").json()["items"][0]["name"] == "Bob's secret client"


def test_duplicate_checks_do_not_reveal_records_outside_the_scope(office: Office) -> None:
    deal(office, "bob", email="same@x.cn")
    answer = office.client("ann").post("/api/v1/t/deal", json={"title": "t", "email": "same@x.cn"})
    assert answer.status_code == 409
    problem = answer.json()["errors"][0]
    assert "candidates" not in problem and "cannot see" in problem["message"]


def test_public_may_only_do_what_a_definition_grants(office: Office) -> None:
    assert office.anonymous.post("/api/v1/t/deal", json={"title": "web lead"}).status_code == 201
    assert office.anonymous.get("/api/v1/t/deal").status_code == 401
    assert office.anonymous.post("/api/v1/t/account", json={"name": "x"}).status_code == 401


def test_every_write_is_in_the_audit_trail(office: Office) -> None:
    mine = deal(office, "ann", email="a@x.cn")
    office.client("ann").patch(f"/api/v1/t/deal/{mine['id']}", json={"title": "renamed"})
    trail = office.client("root").get(f"/api/v1/t/deal/{mine['id']}/history").json()["items"]
    assert [(e["action"], e["channel"], e["user"]["display"]) for e in trail] == [
        ("create", "api", "ann"),
        ("update", "api", "ann"),
    ]
    assert trail[1]["changes"] == {"title": ["ann", "renamed"]}
    for method in ("delete", "patch", "put", "post"):
        answer = getattr(office.client("root"), method)(f"/api/v1/t/deal/{mine['id']}/history")
        assert answer.status_code in (404, 405), method
