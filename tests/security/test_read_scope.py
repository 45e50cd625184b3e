"""Reads that must not escape the row scope or hidden fields (issue 14, items 1 and 2).

A rep may not point a link at a record they cannot read, and every expression a reader
writes (`where=`, sort, list search, export filters) sees a linked record only through
the reader's row scope: out of scope reads as null. Child rows' hidden fields are
unknown to the reader's expressions, as the parent's are.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from runtime.boot import Runtime, start
from runtime.db import write
from runtime.identity.directory import create_user
from runtime.identity.tokens import create_token
from tests.support import write_files, write_pack

APP = """\
app: t
label: Test
version: '1'
roles:
  - {key: rep}
"""
ACCOUNT = """\
form: account
label: Account
title_field: name
owner_field: owner
fields:
  - {key: name, type: text}
  - {key: phone, type: text}
  - {key: owner, type: user}
  - {key: parent, type: link, to: account}
permissions:
  - {roles: [rep], can: [create, read, update], scope: own}
"""
LEAD = """\
form: lead
label: Lead
title_field: title
owner_field: owner
fields:
  - {key: title, type: text}
  - {key: owner, type: user}
  - {key: account, type: link, to: account}
  - {key: lines, type: table, form: line}
  - {key: private_lines, type: table, form: line, hidden_for: [rep]}
  - {key: secret_total, type: money, formula: "SUM(lines.cost)", hidden_for: [rep]}
permissions:
  - {roles: [rep], can: [create, read, update, export], scope: own}
"""
LINE = """\
form: line
label: Line
child: true
fields:
  - {key: item, type: text}
  - {key: cost, type: money, hidden_for: [rep]}
  - {key: account, type: link, to: account}
"""


DASHBOARD = """\
dashboard: d
label: D
widgets:
  - key: by_account
    label: By account
    chart: table
    source: lead
    dimensions:
      - {key: account, field: account}
      - {key: phone, field: account.phone}
    measures:
      - {key: leads, agg: count}
  - key: filtered
    label: Filtered
    chart: number
    source: lead
    where: "account.name == 'Ann Corp'"
    measures:
      - {key: leads, agg: count}
"""


class Pack:
    """Two reps, an admin, and an account each rep owns."""

    def __init__(self, db_url: str, root: Path) -> None:
        pack = write_pack(root / "pack", {"account": ACCOUNT, "lead": LEAD, "line": LINE})
        write_files(pack, {"app.yaml": APP, "dashboards/d.yaml": DASHBOARD})
        self.runtime: Runtime = start([pack], db_url, root / "files")
        self.tokens: dict[str, str] = {}
        with write(self.runtime.engine) as conn:
            for name, role in [("ann", "rep"), ("bob", "rep"), ("root", "admin")]:
                create_user(conn, name, None, roles=(role,))
                self.tokens[name] = create_token(conn, name)
        self.ann_account = self.create("ann", "account", name="Ann Corp", phone="+8613912345678")["id"]
        self.bob_account = self.create("bob", "account", name="Bob Corp", phone="+8613800000000")["id"]

    def client(self, name: str) -> TestClient:
        return TestClient(self.runtime.api, headers={"Authorization": f"Bearer {self.tokens[name]}"})

    def create(self, user: str, form: str, **values: object) -> dict[str, object]:
        answer = self.client(user).post(f"/api/v1/t/{form}", json=values)
        assert answer.status_code == 201, answer.text
        return dict(answer.json())

    def titles(self, user: str, **params: str) -> list[str]:
        answer = self.client(user).get("/api/v1/t/lead", params=params)
        assert answer.status_code == 200, answer.text
        return [item["title"] for item in answer.json()["items"]]


@pytest.fixture
def pack(db_url: str, tmp_path: Path) -> Iterator[Pack]:
    built = Pack(db_url, tmp_path)
    yield built
    built.runtime.engine.dispose()


def _problems(answer: object) -> list[tuple[str, str, str]]:
    body = answer.json()  # type: ignore[attr-defined]
    return [(p["field"], p["code"], p["message"]) for p in body["errors"]]


def test_a_link_to_a_record_the_writer_cannot_read_is_refused_like_a_missing_one(pack: Pack) -> None:
    bob = pack.client("bob")
    hidden = bob.post("/api/v1/t/lead", json={"title": "probe", "account": pack.ann_account})
    missing = bob.post("/api/v1/t/lead", json={"title": "probe", "account": 987654})
    assert hidden.status_code == missing.status_code == 422
    assert _problems(hidden) == [
        ("account", "link_out_of_scope", f"no record you may link to has id {pack.ann_account}")
    ]
    assert _problems(missing) == [("account", "link_out_of_scope", "no record you may link to has id 987654")]
    in_a_row = bob.post(
        "/api/v1/t/lead", json={"title": "probe", "lines": [{"item": "x", "account": pack.ann_account}]}
    )
    assert _problems(in_a_row) == [
        ("lines[0].account", "link_out_of_scope", f"no record you may link to has id {pack.ann_account}")
    ]
    assert pack.titles("bob") == []  # nothing was written
    own = bob.post("/api/v1/t/lead", json={"title": "fine", "account": pack.bob_account})
    assert own.status_code == 201, own.text


def test_a_link_update_to_a_record_out_of_scope_is_refused_and_changes_nothing(pack: Pack) -> None:
    lead = pack.create("bob", "lead", title="mine", account=pack.bob_account)
    answer = pack.client("bob").patch(f"/api/v1/t/lead/{lead['id']}", json={"account": pack.ann_account})
    assert answer.status_code == 422
    assert _problems(answer)[0][:2] == ("account", "link_out_of_scope")
    stored = pack.client("root").get(f"/api/v1/t/lead/{lead['id']}").json()
    assert stored["account"]["id"] == pack.bob_account


def test_a_link_someone_else_set_may_stay_when_the_writer_saves_other_fields(pack: Pack) -> None:
    lead = pack.create("bob", "lead", title="mine", lines=[{"item": "a"}])
    root = pack.client("root")
    lines = [{"item": "a", "account": pack.ann_account}]
    set_by_admin = root.patch(
        f"/api/v1/t/lead/{lead['id']}", json={"account": pack.ann_account, "lines": lines}
    )
    assert set_by_admin.status_code == 200, set_by_admin.text
    bob = pack.client("bob")
    again = bob.patch(
        f"/api/v1/t/lead/{lead['id']}",
        json={
            "title": "renamed",
            "account": pack.ann_account,
            "lines": [{"item": "b", "account": pack.ann_account}],
        },
    )
    assert again.status_code == 200, again.text
    assert again.json()["account"] == {"id": pack.ann_account, "display": None}


def test_where_through_a_link_reads_an_out_of_scope_record_as_null(pack: Pack) -> None:
    lead = pack.create("bob", "lead", title="probe")
    pack.client("root").patch(f"/api/v1/t/lead/{lead['id']}", json={"account": pack.ann_account})
    assert pack.titles("root", where="STARTS_WITH(account.phone, '+86139')") == ["probe"]
    for where in [
        "STARTS_WITH(account.phone, '+86139')",
        "account.name == 'Ann Corp'",
        "account.phone > '+8613'",
        "LEN(account.name) > 0",
    ]:
        assert pack.titles("bob", where=f"id == {lead['id']} and {where}") == [], where
    assert pack.titles("bob", where="account.name == null and account != null") == ["probe"]


def test_where_through_a_link_still_reads_records_in_scope(pack: Pack) -> None:
    pack.create("bob", "lead", title="own", account=pack.bob_account)
    assert pack.titles("bob", where="account.name == 'Bob Corp'") == ["own"]
    assert pack.titles("bob", where="CONTAINS(account.phone, '138')") == ["own"]


def test_a_link_to_the_same_form_reads_the_linked_record_not_the_row_itself(pack: Pack) -> None:
    child = pack.create("ann", "account", name="Ann East", parent=pack.ann_account)
    answer = pack.client("ann").get("/api/v1/t/account", params={"where": "parent.name == 'Ann Corp'"})
    assert [item["id"] for item in answer.json()["items"]] == [child["id"]]
    pack.client("root").patch(f"/api/v1/t/account/{pack.bob_account}", json={"parent": pack.ann_account})
    by_bob = pack.client("bob").get("/api/v1/t/account", params={"where": "parent.name != null"})
    assert by_bob.json()["items"] == []


def test_sorting_by_a_link_orders_out_of_scope_titles_as_empty(pack: Pack) -> None:
    pack.client("root").patch(f"/api/v1/t/account/{pack.ann_account}", json={"name": "AAA"})
    pack.client("root").patch(f"/api/v1/t/account/{pack.bob_account}", json={"name": "ZZZ"})
    hidden = pack.create("bob", "lead", title="hidden")
    pack.create("bob", "lead", title="visible", account=pack.bob_account)
    pack.client("root").patch(f"/api/v1/t/lead/{hidden['id']}", json={"account": pack.ann_account})
    assert pack.titles("root", sort="account") == ["hidden", "visible"]
    assert pack.titles("bob", sort="account") == ["visible", "hidden"]  # empty values sort last
    assert pack.titles("bob", sort="-account") == ["visible", "hidden"]


def test_exports_filter_through_links_in_the_readers_scope(pack: Pack) -> None:
    lead = pack.create("bob", "lead", title="probe")
    pack.client("root").patch(f"/api/v1/t/lead/{lead['id']}", json={"account": pack.ann_account})
    answer = pack.client("bob").get(
        "/api/v1/t/lead/export.csv", params={"where": "account.name == 'Ann Corp'"}
    )
    assert answer.status_code == 200, answer.text
    assert "probe" not in answer.text


def test_hidden_fields_of_child_rows_are_unknown_to_the_readers_expressions(pack: Pack) -> None:
    lead = pack.create("bob", "lead", title="quote", lines=[{"item": "a"}])
    rows = [{"id": lead["lines"][0]["id"], "item": "a", "cost": "100.00"}]  # type: ignore[index]
    assert pack.client("root").patch(f"/api/v1/t/lead/{lead['id']}", json={"lines": rows}).status_code == 200
    bob = pack.client("bob")
    for where in [
        "SUM(lines.cost) > 50",
        "MAX(lines.cost) == 100",
        "COUNT(lines) > 0 and AVG(lines.cost) > 1",
    ]:
        answer = bob.get("/api/v1/t/lead", params={"where": where})
        assert answer.status_code == 422, where
        assert _problems(answer)[0][:2] == ("query.where", "unknown_field")
    assert pack.titles("bob", where="COUNT(lines) == 1") == ["quote"]
    assert pack.titles("root", where="SUM(lines.cost) > 50") == ["quote"]
    lead_rows = bob.get("/api/v1/t/lead").json()["items"]
    assert "cost" not in lead_rows[0]["lines"][0] and "secret_total" not in lead_rows[0]


def test_list_search_does_not_match_linked_titles_out_of_scope(pack: Pack) -> None:
    lead = pack.create("bob", "lead", title="probe")
    pack.client("root").patch(f"/api/v1/t/lead/{lead['id']}", json={"account": pack.ann_account})
    assert pack.titles("bob", where="CONTAINS(LOWER(account.name), 'ann')") == []


def test_hidden_fields_of_child_rows_cannot_be_written_and_keep_their_values(pack: Pack) -> None:
    refused = pack.client("bob").post(
        "/api/v1/t/lead", json={"title": "q", "lines": [{"item": "a", "cost": "1"}]}
    )
    assert refused.status_code == 422
    assert _problems(refused) == [("lines[0].cost", "unknown_field", "line has no field 'cost'")]
    lead = pack.create("bob", "lead", title="quote", lines=[{"item": "a"}])
    row_id = lead["lines"][0]["id"]  # type: ignore[index]
    root = pack.client("root")
    root.patch(
        f"/api/v1/t/lead/{lead['id']}", json={"lines": [{"id": row_id, "item": "a", "cost": "100.00"}]}
    )
    kept = pack.client("bob").patch(
        f"/api/v1/t/lead/{lead['id']}", json={"lines": [{"id": row_id, "item": "b"}]}
    )
    assert kept.status_code == 200, kept.text
    assert root.get(f"/api/v1/t/lead/{lead['id']}").json()["lines"][0]["cost"] == "100.00"


def test_dashboards_read_linked_records_through_the_viewers_scope(pack: Pack) -> None:
    lead = pack.create("bob", "lead", title="probe")
    pack.client("root").patch(f"/api/v1/t/lead/{lead['id']}", json={"account": pack.ann_account})
    url = "/api/v1/t/dashboards/d/widgets/{}/data"
    rows = pack.client("bob").get(url.format("by_account")).json()["rows"]
    assert [[d["display"] for d in row["dimensions"]] for row in rows] == [[None, None]]
    assert pack.client("bob").get(url.format("filtered")).json()["rows"][0]["values"] == [0]
    by_root = pack.client("root").get(url.format("by_account")).json()["rows"]
    assert [[d["display"] for d in row["dimensions"]] for row in by_root] == [["Ann Corp", "+8613912345678"]]
    assert pack.client("root").get(url.format("filtered")).json()["rows"][0]["values"] == [1]


def test_history_shows_a_linked_title_only_to_readers_of_that_record_now(pack: Pack) -> None:
    lead = pack.create("bob", "lead", title="probe")
    pack.client("root").patch(f"/api/v1/t/lead/{lead['id']}", json={"account": pack.ann_account})
    url = f"/api/v1/t/lead/{lead['id']}/history"
    by_bob = pack.client("bob").get(url).json()["items"][-1]["changes"]
    assert by_bob["account"] == [None, {"id": pack.ann_account, "display": None}]
    by_root = pack.client("root").get(url).json()["items"][-1]["changes"]
    assert by_root["account"] == [None, {"id": pack.ann_account, "display": "Ann Corp"}]
    pack.client("root").patch(f"/api/v1/t/account/{pack.ann_account}", json={"owner": _user_id(pack, "bob")})
    now_readable = pack.client("bob").get(url).json()["items"][-1]["changes"]
    assert now_readable["account"] == [None, {"id": pack.ann_account, "display": "Ann Corp"}]


def test_history_hides_hidden_fields_of_child_rows(pack: Pack) -> None:
    lead = pack.create("bob", "lead", title="quote", lines=[{"item": "a"}])
    row_id = lead["lines"][0]["id"]  # type: ignore[index]
    root = pack.client("root")
    root.patch(f"/api/v1/t/lead/{lead['id']}", json={"lines": [{"id": row_id, "item": "a", "cost": "7.00"}]})
    root.patch(
        f"/api/v1/t/lead/{lead['id']}",
        json={"lines": [{"id": row_id, "item": "b", "cost": "8.00"}, {"item": "c", "cost": "9.00"}]},
    )
    items = pack.client("bob").get(f"/api/v1/t/lead/{lead['id']}/history").json()["items"]
    assert "cost" not in str(items) and "7.00" not in str(items) and "9.00" not in str(items)
    assert items[1]["changes"] == {}  # only the cost changed
    last = items[2]["changes"]["lines"]
    assert last["changed"] == [{"id": row_id, "item": ["a", "b"]}]
    assert [row["item"] for row in last["added"]] == ["c"]
    assert "7.00" in str(root.get(f"/api/v1/t/lead/{lead['id']}/history").json()["items"])


def _user_id(pack: Pack, name: str) -> int:
    from sqlalchemy import select

    from runtime.schema.system import users

    with pack.runtime.engine.connect() as conn:
        return int(conn.execute(select(users.c.id).where(users.c.username == name)).scalar_one())


def test_a_table_field_hidden_from_a_role_is_neither_shown_nor_written_nor_probed(pack: Pack) -> None:
    lead = pack.create("bob", "lead", title="quote")
    root = pack.client("root")
    root.patch(f"/api/v1/t/lead/{lead['id']}", json={"private_lines": [{"item": "secret"}]})
    bob = pack.client("bob")
    assert "private_lines" not in bob.get(f"/api/v1/t/lead/{lead['id']}").json()
    assert "private_lines" not in bob.get("/api/v1/t/lead").json()["items"][0]
    written = bob.patch(f"/api/v1/t/lead/{lead['id']}", json={"private_lines": []})
    assert written.status_code == 422
    assert _problems(written)[0][:2] == ("private_lines", "unknown_field")
    probe = bob.get("/api/v1/t/lead", params={"where": "COUNT(private_lines) > 0"})
    assert _problems(probe)[0][:2] == ("query.where", "unknown_field")
    assert len(root.get(f"/api/v1/t/lead/{lead['id']}").json()["private_lines"]) == 1
