"""A `create` effect's `match`: converting a lead uses the account (and contact) that already
exists instead of making a second one, whoever may read it; checked at load with positions.
Both databases."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from runtime.boot import Runtime
from runtime.loading.loader import load_pack
from runtime.loading.problems import DefinitionError
from tests.support import serve, user_token, write_files, write_pack

APP = """\
    app: t
    label: Test
    version: '1'
    roles:
      - {key: rep}
    """
FORMS = {
    "account": """\
        form: account
        label: Account
        title_field: name
        owner_field: owner
        fields:
          - {key: name, type: text, required: true}
          - {key: phone, type: text}
          - {key: owner, type: user, default: current_user}
        duplicates:
          - [name]
        permissions:
          - {roles: [rep], can: [create, read], scope: own}
        """,
    "contact": """\
        form: contact
        label: Contact
        title_field: name
        fields:
          - {key: name, type: text, required: true}
          - {key: email, type: email}
          - {key: account, type: link, to: account}
        permissions:
          - {roles: [rep], can: [create, read], scope: own}
        """,
    "deal": """\
        form: deal
        label: Deal
        fields:
          - {key: name, type: text}
          - {key: account, type: link, to: account}
          - {key: contact, type: link, to: contact}
        permissions:
          - {roles: [rep], can: [create, read], scope: own}
        """,
    "lead": """\
        form: lead
        label: Lead
        fields:
          - {key: company, type: text, required: true}
          - {key: person, type: text}
          - {key: email, type: email}
          - {key: phone, type: text}
          - {key: status, type: select, options: [open, converted], default: open}
          - {key: account, type: link, to: account}
          - {key: contact, type: link, to: contact}
        permissions:
          - {roles: [rep], can: [create, read, update], scope: own}
        """,
}
WORKFLOW = """\
    workflow: lead_flow
    form: lead
    field: status
    states:
      - {key: open, initial: true}
      - {key: converted, final: true}
    transitions:
      - action: convert
        from: open
        to: converted
        roles: [rep]
        effects:
          - create:
              form: account
              store_in: account
              match: "LOWER(name) == LOWER(record.company)"
              values: {name: company, phone: phone}
            when: "account == null"
          - create:
              form: contact
              store_in: contact
              match: "account == record.account and email == record.email"
              values: {name: person, email: email, account: account}
          - create:
              form: deal
              values: {name: company, account: account, contact: contact}
    """


@dataclass
class Served:
    runtime: Runtime
    admin: TestClient
    rep: TestClient
    other: TestClient


@pytest.fixture
def served(db_url: str, tmp_path: Path) -> Iterator[Served]:
    pack = write_pack(tmp_path / "pack", FORMS)
    write_files(pack, {"app.yaml": APP, "workflows/lead.yaml": WORKFLOW})
    runtime, admin = serve(pack, db_url, tmp_path / "files")

    def client(name: str) -> TestClient:
        token = user_token(runtime.engine, name, ("rep",))
        return TestClient(runtime.api, headers={"Authorization": f"Bearer {token}"})

    try:
        yield Served(runtime, admin, client("rita"), client("otto"))
    finally:
        runtime.engine.dispose()


def convert(client: TestClient, lead: dict[str, Any]) -> dict[str, Any]:
    made = client.post("/api/v1/t/lead", json=lead)
    assert made.status_code == 201, made.text
    answer = client.post(f"/api/v1/t/lead/{made.json()['id']}/transitions/convert", json={})
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def ids(value: Any) -> int:
    return int(value["id"]) if isinstance(value, dict) else int(value)


def names(admin: TestClient, form: str) -> list[str]:
    items = admin.get(f"/api/v1/t/{form}", params={"sort": "id", "limit": "50"}).json()["items"]
    return [item["name"] for item in items]


def test_a_second_lead_of_the_same_company_reuses_its_account_and_contact(served: Served) -> None:
    admin, rep = served.admin, served.rep
    first = convert(rep, {"company": "Acme Ltd", "person": "Ann", "email": "ann@acme.cn", "phone": "1"})
    assert names(admin, "account") == ["Acme Ltd"] and names(admin, "contact") == ["Ann"]
    second = convert(rep, {"company": "ACME LTD", "person": "Ann B.", "email": "ann@acme.cn", "phone": "2"})
    assert ids(second["account"]) == ids(first["account"]), "the account matching by name is used"
    assert ids(second["contact"]) == ids(first["contact"]), "so is the account's contact with that e-mail"
    assert names(admin, "account") == ["Acme Ltd"] and names(admin, "contact") == ["Ann"]
    account = admin.get(f"/api/v1/t/account/{ids(first['account'])}").json()
    assert account["phone"] == "1", "a record found is used as it is, not overwritten"
    deals = admin.get("/api/v1/t/deal", params={"sort": "id"}).json()["items"]
    assert [(ids(d["account"]), ids(d["contact"])) for d in deals] == [
        (ids(first["account"]), ids(first["contact"]))
    ] * 2
    third = convert(rep, {"company": "Acme Ltd", "person": "Bo", "email": "bo@acme.cn"})
    assert ids(third["account"]) == ids(first["account"])
    assert ids(third["contact"]) != ids(first["contact"]), "another e-mail: a new contact of the account"
    other = convert(rep, {"company": "Bolt", "person": "Bob", "email": "ann@acme.cn"})
    assert ids(other["account"]) != ids(first["account"])
    assert ids(other["contact"]) != ids(first["contact"]), "the same e-mail at another account is not a match"
    assert names(admin, "account") == ["Acme Ltd", "Bolt"]


def test_the_match_sees_records_the_converting_user_cannot_read(served: Served) -> None:
    first = convert(served.rep, {"company": "Acme Ltd", "person": "Ann", "email": "ann@acme.cn"})
    assert served.other.get(f"/api/v1/t/account/{ids(first['account'])}").status_code == 404
    second = convert(served.other, {"company": "acme ltd", "person": "Otto", "email": "otto@acme.cn"})
    assert ids(second["account"]) == ids(first["account"])
    assert names(served.admin, "account") == ["Acme Ltd"]


def test_a_link_already_set_is_kept_and_nothing_matches_an_empty_value(served: Served) -> None:
    admin = served.admin
    made = admin.post("/api/v1/t/account", json={"name": "Acme Ltd"}).json()
    own = admin.post("/api/v1/t/account", json={"name": "Chosen Co"})
    chosen = convert(admin, {"company": "Acme Ltd", "person": "Ann", "account": own.json()["id"]})
    assert ids(chosen["account"]) == own.json()["id"], "the effect's `when` skipped it"
    nameless = convert(admin, {"company": "Acme Ltd", "person": "Nils"})  # no e-mail: no contact matches
    assert ids(nameless["account"]) == made["id"]
    again = convert(admin, {"company": "Acme Ltd", "person": "Nils"})
    assert ids(again["contact"]) != ids(nameless["contact"]), "an empty e-mail matches nothing"


# -- load checks --------------------------------------------------------------------------


def load_problems(tmp_path: Path, effect: str) -> list[str]:
    workflow = (
        WORKFLOW.split("        effects:\n")[0]
        + "        effects:\n"
        + textwrap.indent(textwrap.dedent(effect), " " * 10)
    )
    pack = write_pack(tmp_path / "bad", FORMS)
    write_files(pack, {"app.yaml": APP, "workflows/lead.yaml": workflow})
    try:
        load_pack(pack)
    except DefinitionError as error:
        return [str(p) for p in error.problems]
    return []


@pytest.mark.parametrize(
    ("effect", "expected"),
    [
        (
            '- create: {form: account, store_in: account, match: "name == record.compny"}\n',
            "workflows/lead.yaml:13:68: the record being edited (lead) has no field 'compny'"
            " (did you mean 'company'?)",
        ),
        (
            '- create: {form: account, match: "name"}\n',
            "workflows/lead.yaml:13:41: the expression gives a text value; this needs a boolean value",
        ),
        (
            '- create: {form: contact, for_each: account, match: "name == record.person"}\n',
            "workflows/lead.yaml:13:59: match finds one record to use: it cannot go with for_each",
        ),
    ],
)
def test_a_match_is_checked_at_load_with_positions(tmp_path: Path, effect: str, expected: str) -> None:
    found = load_problems(tmp_path, effect)
    assert any(p.startswith(expected) for p in found), found
    assert load_problems(tmp_path, '- create: {form: account, match: "name == record.company"}\n') == []
