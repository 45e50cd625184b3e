"""Department fields, and user fields limited by role or department, on both databases.

A department field names a department of the org chart: it defaults to the writer's
department, reads as `{id, display}`, filters by id, sorts by name, exports its name,
groups a dashboard and, as the form's `department_field`, widens the `team` scope.
User fields with `roles` or `within` take only users who qualify (422 `not_eligible`),
and their web picker offers only those users.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from runtime.boot import Runtime, start
from runtime.db import write
from runtime.identity.directory import create_department, create_user, set_password
from runtime.identity.tokens import create_token
from runtime.schema.system import users
from tests.support import WEB_PASSWORD, web_client, write_files, write_pack

APP = """\
app: t
label: Test
version: '1'
roles:
  - {key: rep}
  - {key: manager}
"""
TICKET = """\
form: ticket
label: {zh: 工单, en: Ticket}
title_field: title
department_field: department
fields:
  - {key: title, type: text, label: {zh: 标题, en: Title}}
  - {key: department, type: department, label: {zh: 部门, en: Department}, default: current_user_department}
  - {key: reviewer, type: user, roles: [manager]}
  - {key: handler, type: user, within: [east]}
  - {key: helper, type: user, roles: [rep], within: [sales]}
list:
  columns: [title, department]
permissions:
  - {roles: [rep], can: [create, read, update], scope: team}
  - {roles: [manager], can: [create, read, update, export]}
"""
BOARD = """\
dashboard: board
label: Board
widgets:
  - key: by_department
    label: By department
    chart: bar
    source: ticket
    dimensions: [{key: unit, field: department}]
    measures: [{key: tickets, agg: count}]
    sort: unit
"""


@dataclass
class Org:
    """The running app, its departments and users by key, and a token per user."""

    runtime: Runtime
    units: dict[str, int]
    people: dict[str, int]
    tokens: dict[str, str]

    def client(self, username: str) -> TestClient:
        return TestClient(self.runtime.api, headers={"Authorization": f"Bearer {self.tokens[username]}"})


@pytest.fixture
def org(db_url: str, tmp_path: Path) -> Iterator[Org]:
    pack = write_pack(tmp_path / "pack", {"ticket": TICKET})
    (pack / "app.yaml").write_text(APP, encoding="utf-8")
    write_files(pack, {"dashboards/board.yaml": BOARD})
    runtime = start([pack], db_url, tmp_path / "files")
    units: dict[str, int] = {}
    people: dict[str, int] = {}
    with write(runtime.engine) as conn:
        units["sales"] = create_department(conn, "sales", "Sales")
        units["east"] = create_department(conn, "east", "East sales", parent="sales")
        units["west"] = create_department(conn, "west", "West sales", parent="sales")
        units["support"] = create_department(conn, "support", "Support")
        for name, roles, unit in [
            ("ann", ("rep",), "east"),
            ("bob", ("rep",), "west"),
            ("carl", ("manager",), "sales"),
            ("dora", ("manager",), "support"),
            ("eve", ("rep",), "support"),
            ("root", ("admin",), None),
        ]:
            people[name] = create_user(
                conn, name, None, display_name=name.title(), roles=roles, department=unit
            )
        tokens = {name: create_token(conn, name, "test") for name in people}
    yield Org(runtime, units, people, tokens)
    runtime.engine.dispose()


def _create(org: Org, who: str, body: dict[str, Any]) -> Any:
    return org.client(who).post("/api/v1/t/ticket", json=body)


def _errors(answer: Any) -> list[tuple[str, str]]:
    assert answer.status_code == 422, answer.text
    return [(e["field"], e["code"]) for e in answer.json()["errors"]]


# --- the department field ----------------------------------------------------------------------


def test_the_writers_department_is_the_default_and_reads_as_id_and_name(org: Org) -> None:
    made = _create(org, "ann", {"title": "Printer"})
    assert made.status_code == 201, made.text
    assert made.json()["department"] == {"id": org.units["east"], "display": "East sales"}
    chosen = _create(org, "ann", {"title": "Desk", "department": {"id": org.units["west"]}})
    assert chosen.json()["department"] == {"id": org.units["west"], "display": "West sales"}
    by_root = _create(org, "root", {"title": "Nobody's"})  # an admin without a department
    assert by_root.json()["department"] is None
    again = org.client("ann").get(f"/api/v1/t/ticket/{made.json()['id']}")
    assert again.json()["department"] == {"id": org.units["east"], "display": "East sales"}


def test_a_department_that_does_not_exist_is_refused(org: Org) -> None:
    answer = _create(org, "ann", {"title": "Lost", "department": 99999})
    assert _errors(answer) == [("department", "not_found")]
    assert "no department with id 99999" in answer.text
    assert _errors(_create(org, "ann", {"title": "Bad", "department": "east"})) == [("department", "type")]


def test_filters_and_sorts_by_department(org: Org) -> None:
    for title, unit in [("a", "west"), ("b", "east"), ("c", "support"), ("d", None)]:
        body = {"title": title, "department": org.units[unit] if unit else None}
        assert _create(org, "root", body).status_code == 201
    api = org.client("root")

    def titles(query: str) -> list[str]:
        answer = api.get(f"/api/v1/t/ticket?{query}")
        assert answer.status_code == 200, answer.text
        return [r["title"] for r in answer.json()["items"]]

    east, west = org.units["east"], org.units["west"]
    assert titles(f"department={east}") == ["b"]
    assert titles(f"department__ne={east}&sort=title") == ["a", "c", "d"]
    assert titles(f"department__in={east},{west}&sort=title") == ["a", "b"]
    assert titles("department__isnull=true") == ["d"]
    assert titles("sort=department") == ["b", "c", "a", "d"]  # East sales, Support, West sales, empty
    assert titles("sort=-department") == ["a", "c", "b", "d"]
    assert titles(f"where=department == {west}") == ["a"]
    refused = api.get("/api/v1/t/ticket?department__gt=1")
    assert refused.status_code == 422 and refused.json()["errors"][0]["code"] == "invalid_operator"


def test_export_shows_the_department_name(org: Org) -> None:
    _create(org, "ann", {"title": "Printer"})
    answer = org.client("carl").get("/api/v1/t/ticket/export.csv")
    assert answer.status_code == 200, answer.text
    rows = list(csv.reader(io.StringIO(answer.content.decode("utf-8-sig"))))
    assert rows == [["标题", "部门"], ["Printer", "East sales"]]  # in the reader's language (zh)


def test_a_dashboard_groups_by_a_department_field(org: Org) -> None:
    for who in ("ann", "ann", "bob", "root"):
        _create(org, who, {"title": who})
    answer = org.client("root").get("/api/v1/t/dashboards/board/widgets/by_department/data")
    assert answer.status_code == 200, answer.text
    rows = [([d["display"] for d in r["dimensions"]], r["values"]) for r in answer.json()["rows"]]
    assert rows == [(["East sales"], [2]), (["West sales"], [1]), ([None], [1])]
    drill = answer.json()["rows"][0]["drill"]
    assert drill is not None and f"department == {org.units['east']}" in unquote(drill)


def test_the_team_scope_counts_the_records_of_the_department_field(org: Org) -> None:
    made = _create(org, "eve", {"title": "For the east", "department": org.units["east"]}).json()
    assert org.client("ann").get(f"/api/v1/t/ticket/{made['id']}").status_code == 200  # east: her team
    assert org.client("bob").get(f"/api/v1/t/ticket/{made['id']}").status_code == 404  # west: not his
    assert org.client("eve").get(f"/api/v1/t/ticket/{made['id']}").status_code == 200  # she created it
    listed = org.client("ann").get("/api/v1/t/ticket").json()["items"]
    assert [r["title"] for r in listed] == ["For the east"]


# --- user fields limited by role and department ------------------------------------------------


def test_a_user_field_limited_by_role_or_department_refuses_users_who_do_not_qualify(org: Org) -> None:
    p = org.people
    refused = _create(
        org, "carl", {"title": "x", "reviewer": p["ann"], "handler": p["bob"], "helper": p["eve"]}
    )
    assert _errors(refused) == [
        ("reviewer", "not_eligible"),
        ("handler", "not_eligible"),
        ("helper", "not_eligible"),
    ]
    messages = {e["field"]: e["message"] for e in refused.json()["errors"]}
    assert (
        messages["reviewer"]
        == f"user {p['ann']} may not be chosen here: choose a user holding the role manager"
    )
    assert "in the department sales (or one below it)" in messages["helper"]
    # a manager who is no rep does not qualify for helper, though in sales
    assert _errors(_create(org, "carl", {"title": "x", "helper": p["carl"]})) == [("helper", "not_eligible")]
    # a user who does not exist is not found, not also ineligible
    assert _errors(_create(org, "carl", {"title": "x", "reviewer": 99999})) == [("reviewer", "not_found")]
    accepted = _create(
        org, "carl", {"title": "ok", "reviewer": p["dora"], "handler": p["ann"], "helper": p["ann"]}
    )
    assert accepted.status_code == 201, accepted.text
    assert accepted.json()["helper"] == {"id": p["ann"], "display": "Ann"}  # east is below sales


def test_a_user_the_record_holds_may_stay_after_moving_department(org: Org) -> None:
    made = _create(org, "carl", {"title": "t", "handler": org.people["ann"]}).json()
    with write(org.runtime.engine) as conn:
        conn.execute(
            update(users).where(users.c.id == org.people["ann"]).values(department_id=org.units["west"])
        )
    url = f"/api/v1/t/ticket/{made['id']}"
    assert org.client("carl").patch(url, json={"title": "renamed"}).status_code == 200
    assert org.client("carl").patch(url, json={"handler": org.people["ann"]}).status_code == 200
    other = _create(org, "carl", {"title": "new", "handler": org.people["ann"]})
    assert _errors(other) == [("handler", "not_eligible")]


def test_the_openapi_spec_describes_the_department_field(org: Org) -> None:
    spec = org.client("root").get("/openapi.json").json()["components"]["schemas"]
    create = next(
        v for k, v in spec.items() if k.endswith("Create") and "department" in v.get("properties", {})
    )
    department = create["properties"]["department"]["anyOf"][0]
    assert department == {"type": "integer", "minimum": 1, "description": "The id of a department"}
    reviewer = create["properties"]["reviewer"]["anyOf"][0]
    assert "holding the role manager" in reviewer["description"]


# --- the web form ------------------------------------------------------------------------------


def test_the_web_pickers_offer_departments_and_only_qualifying_users(org: Org) -> None:
    with write(org.runtime.engine) as conn:
        set_password(conn, "carl", WEB_PASSWORD)
    web = web_client(org.runtime, "carl")
    page = web.get("/app/t/ticket/new")
    assert page.status_code == 200
    assert 'value="Sales"' in page.text  # the default: the writer's department, by name
    reviewers = web.get("/app/t/ticket/_pick/reviewer?q=").text
    assert "Carl (carl)" in reviewers and "Dora (dora)" in reviewers
    assert "Ann (ann)" not in reviewers and "Eve (eve)" not in reviewers
    helpers = web.get("/app/t/ticket/_pick/helper?q=").text
    assert "Ann (ann)" in helpers and "Bob (bob)" in helpers
    assert "Eve (eve)" not in helpers and "Carl (carl)" not in helpers
    units = web.get("/app/t/ticket/_pick/department?q=sales").text
    assert "East sales" in units and "West sales" in units and "Support" not in units
    saved = web.post_form(
        "/app/t/ticket/new",
        {
            "title": "From the web",
            "department": str(org.units["support"]),
            "reviewer": str(org.people["ann"]),
        },
    )
    assert saved.status_code == 422 and "choose a user holding the role manager" in saved.text
    kept = web.post_form(
        "/app/t/ticket/new", {"title": "From the web", "department": str(org.units["support"])}
    )
    assert kept.status_code == 303, kept.text
    listed = web.get("/app/t/ticket").text
    assert "From the web" in listed and "Support" in listed  # the list shows the department's name
    record = web.get(kept.headers["location"].split("?")[0]).text
    assert "Support" in record
