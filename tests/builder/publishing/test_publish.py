"""Publishing definition changes: every rule of docs/schema-changes.md, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import inspect, text

from builder.publishing.backup import read_backup
from builder.publishing.publish import PublishRefused, make_plan, publish
from builder.publishing.purge import find_retired, purge
from runtime.boot import NotPublished, start
from runtime.db import make_engine
from runtime.loading.loader import load_pack
from tests.support import write_pack

ACCOUNT = """\
form: account
label: Account
title_field: name
fields:
  - {key: name, type: text, required: true}
"""

LEAD_V1 = """\
form: lead
label: Lead
fields:
  - {key: company, type: text, max_length: 100}
  - {key: amount, type: text}
  - {key: stage, type: select, options: [new, won, lost]}
  - {key: notes, type: long_text}
  - {key: code, type: text}
  - {key: account, type: link, to: account, on_delete: set_null}
"""


class Scenario:
    """A pack at version 1 with some rows, and helpers to publish edited versions."""

    def __init__(self, db_url: str, root: Path) -> None:
        self.url = db_url
        self.root = root
        self.versions = 0
        runtime = start([self.pack(LEAD_V1)], db_url, root / "files")
        service = runtime.service
        account = service.create("t", "account", {"name": "Acme"})
        service.create(
            "t",
            "lead",
            {
                "company": "A very long company name",
                "amount": "12.5",
                "stage": "lost",
                "notes": "keep me",
                "code": "X",
                "account": account["id"],
            },
        )
        service.create("t", "lead", {"company": "B", "amount": "n/a", "stage": "new", "code": "X"})
        runtime.engine.dispose()
        self.engine = make_engine(db_url)

    def pack(self, lead: str) -> Path:
        self.versions += 1
        return write_pack(self.root / f"v{self.versions}", {"account": ACCOUNT, "lead": lead})

    def publish(self, lead: str, **options: object) -> object:
        return publish(self.engine, load_pack(self.pack(lead)), backups=self.root / "backups", **options)

    def rows(self) -> list[dict[str, object]]:
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(text("SELECT * FROM t__lead ORDER BY id")).mappings()]

    def read(self, lead: str) -> list[dict[str, object]]:
        runtime = start([self.root / f"v{self.versions}"], self.url, self.root / "files")
        items = runtime.service.list_page("t", "lead", [("sort", "id")])["items"]
        runtime.engine.dispose()
        return items


@pytest.fixture
def scenario(db_url: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    built = Scenario(db_url, tmp_path)
    yield built
    built.engine.dispose()


def test_adding_a_nullable_field_only_adds_a_column(scenario: Scenario) -> None:
    plan = make_plan(scenario.engine, load_pack(scenario.pack(LEAD_V1 + "  - {key: city, type: text}\n")))
    assert [s.words for s in plan.steps] == ["add column city (VARCHAR(255))"]
    assert not plan.refusals


def test_a_required_field_without_default_is_refused_with_the_row_count(scenario: Scenario) -> None:
    with pytest.raises(PublishRefused) as caught:
        scenario.publish(LEAD_V1 + "  - {key: city, type: text, required: true}\n")
    assert "2 existing row(s) have no value" in caught.value.plan.render("sqlite")
    assert "city" not in scenario.rows()[0]


def test_a_required_field_with_a_default_backfills(scenario: Scenario) -> None:
    scenario.publish(LEAD_V1 + "  - {key: city, type: text, required: true, default: Shanghai}\n")
    assert [r["city"] for r in scenario.rows()] == ["Shanghai", "Shanghai"]


def test_renaming_a_field_keeps_its_data(scenario: Scenario) -> None:
    scenario.publish(LEAD_V1.replace("{key: company,", "{key: company_name, renamed_from: company,"))
    assert scenario.rows()[0]["company_name"] == "A very long company name"


def test_a_field_renamed_before_keeps_its_renamed_from_while_its_old_key_is_reused_and_renamed(
    scenario: Scenario,
) -> None:
    renamed = LEAD_V1.replace("{key: code, type: text}", "{key: ref, renamed_from: code, type: text}")
    scenario.publish(renamed)
    scenario.publish(renamed + "  - {key: code, type: text}\n")
    with scenario.engine.begin() as conn:
        conn.execute(text("UPDATE t__lead SET code = 'new'"))
    again = renamed + "  - {key: tag, renamed_from: code, type: text}\n"
    plan = make_plan(scenario.engine, load_pack(scenario.pack(again)))
    assert [s.words for s in plan.steps] == ["rename column code to tag: the data stays"]
    scenario.publish(again)
    assert [(r["ref"], r["tag"]) for r in scenario.rows()] == [("X", "new"), ("X", "new")]


def test_removing_a_field_retires_it_and_adding_it_back_restores_it(scenario: Scenario) -> None:
    without = LEAD_V1.replace("  - {key: notes, type: long_text}\n", "")
    scenario.publish(without)
    assert scenario.rows()[0]["notes"] == "keep me"  # kept in the table …
    assert "notes" not in scenario.read(without)[0]  # … hidden from the API
    scenario.publish(LEAD_V1)
    assert scenario.read(LEAD_V1)[0]["notes"] == "keep me"


def test_a_type_change_that_loses_values_is_refused_then_coerced_with_a_backup(scenario: Scenario) -> None:
    retyped = LEAD_V1.replace("{key: amount, type: text}", "{key: amount, type: decimal, scale: 2}")
    with pytest.raises(PublishRefused) as caught:
        scenario.publish(retyped)
    assert "1 row(s) hold values that do not convert (ids 2)" in caught.value.plan.render("sqlite")
    assert scenario.rows()[1]["amount"] == "n/a"
    outcome = scenario.publish(retyped, coerce=True)
    assert [r["amount"] for r in scenario.read(retyped)] == ["12.50", None]
    saved = read_backup(outcome.backup)  # type: ignore[attr-defined]
    assert [(b["column"], b["id"], b["value"]) for b in saved] == [("amount", 2, "n/a")]


def test_a_type_change_where_every_value_converts_goes_through(scenario: Scenario) -> None:
    retyped = LEAD_V1.replace("{key: code, type: text}", "{key: code, type: select, options: [X, Y]}")
    with pytest.raises(Exception, match="pattern"):
        load_pack(scenario.pack(retyped))  # option keys are lowercase: the loader says so first
    retyped = LEAD_V1.replace(
        "{key: stage, type: select, options: [new, won, lost]}", "{key: stage, type: text}"
    )
    scenario.publish(retyped)
    assert [r["stage"] for r in scenario.read(retyped)] == ["lost", "new"]


def test_narrowing_max_length_is_refused_with_examples(scenario: Scenario) -> None:
    narrow = LEAD_V1.replace("max_length: 100", "max_length: 5")
    plan = make_plan(scenario.engine, load_pack(scenario.pack(narrow)))
    assert "1 row(s) have values longer than 5 characters (ids 1)" in plan.render("sqlite")
    assert plan.refusals and plan.refusals[0].coercible


def test_removing_a_used_option_is_refused(scenario: Scenario) -> None:
    fewer = LEAD_V1.replace("options: [new, won, lost]", "options: [new, won]")
    with pytest.raises(PublishRefused) as caught:
        scenario.publish(fewer)
    assert "1 row(s) still use the removed option(s) (ids 1)" in caught.value.plan.render("sqlite")


def test_adding_unique_lists_the_repeated_values(scenario: Scenario) -> None:
    unique = LEAD_V1.replace("{key: code, type: text}", "{key: code, type: text, unique: true}")
    with pytest.raises(PublishRefused) as caught:
        scenario.publish(unique)
    assert "1 value(s) are held by several rows (e.g. X)" in caught.value.plan.render("sqlite")
    scenario.publish(unique, coerce=True)
    assert [r["code"] for r in scenario.rows()] == ["X", None]


def test_a_refused_publish_changes_nothing(scenario: Scenario) -> None:
    before = scenario.rows()
    mixed = LEAD_V1.replace("  - {key: notes, type: long_text}\n", "") + (
        "  - {key: city, type: text, required: true}\n"
    )
    with pytest.raises(PublishRefused):
        scenario.publish(mixed)
    assert scenario.rows() == before


def test_renaming_a_form_keeps_its_rows_and_links(scenario: Scenario) -> None:
    account = ACCOUNT.replace("form: account", "form: customer\nrenamed_from: account")
    lead = LEAD_V1.replace("to: account", "to: customer")
    version = write_pack(scenario.root / "renamed", {"customer": account, "lead": lead})
    publish(scenario.engine, load_pack(version), backups=scenario.root / "b")
    tables = inspect(scenario.engine).get_table_names()
    assert "t__customer" in tables and "t__account" not in tables
    runtime = start([version], scenario.url, scenario.root / "files")
    first = runtime.service.get("t", "lead", 1)
    assert first["account"] == {"id": 1, "display": "Acme"}
    runtime.engine.dispose()


def test_serve_refuses_an_unpublished_change_and_names_the_command(scenario: Scenario) -> None:
    changed = scenario.pack(LEAD_V1 + "  - {key: city, type: text}\n")
    with pytest.raises(NotPublished, match="formloom publish"):
        start([changed], scenario.url, scenario.root / "files")


def test_purge_backs_up_then_drops_retired_columns(scenario: Scenario) -> None:
    without = LEAD_V1.replace("  - {key: notes, type: long_text}\n", "")
    scenario.publish(without)
    app = load_pack(scenario.root / f"v{scenario.versions}")
    assert find_retired(scenario.engine, app).columns == [("t__lead", "notes")]
    _, path = purge(scenario.engine, app, scenario.root / "backups")
    assert "notes" not in scenario.rows()[0]
    assert [(b["id"], b["value"]) for b in read_backup(path)] == [(1, "keep me")]  # type: ignore[arg-type]


def test_history_records_every_publish(scenario: Scenario) -> None:
    from runtime.schema import published

    scenario.publish(LEAD_V1 + "  - {key: city, type: text}\n", author="consultant")
    with scenario.engine.connect() as conn:
        versions = published.history(conn, "t")
    assert [v.author for v in versions] == ["consultant", "formloom"]
    assert versions[0].plan["steps"][0]["words"] == "add column city (VARCHAR(255))"
