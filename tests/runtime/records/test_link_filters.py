"""Link filters: a link accepts (API, imports) and offers (web picker) only the records its
filter allows, reading the record being edited as `record.field` and a row's parent as
`parent.field`; checked at load with positions. Both databases."""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runtime.loading.loader import load_pack
from runtime.loading.problems import DefinitionError
from tests.runtime.records.link_pack import FORMS, Sales, served
from tests.support import write_files, write_pack


@pytest.fixture
def sales(db_url: str, tmp_path: Path) -> Iterator[Sales]:
    yield from served(db_url, tmp_path)


def problems_of(answer: Any) -> list[tuple[str, str]]:
    assert answer.status_code == 422, answer.text
    return [(p["field"], p["code"]) for p in answer.json()["errors"]]


def test_a_static_filter_refuses_records_that_do_not_meet_it(sales: Sales) -> None:
    ids = sales.ids
    refused = sales.admin.post("/api/v1/t/quote", json={"account": ids["gone"]})
    assert problems_of(refused) == [("account", "link_filter")]
    assert "active == true" in refused.json()["errors"][0]["message"]
    line = {"product": ids["relic"], "quantity": 1}
    assert problems_of(sales.admin.post("/api/v1/t/quote", json={"lines": [line]})) == [
        ("lines[0].product", "link_filter")
    ]
    made = sales.admin.post(
        "/api/v1/t/quote", json={"account": ids["acme"], "lines": [{"product": ids["gizmo"]}]}
    )
    assert made.status_code == 201, made.text


def test_a_filter_reads_the_record_being_edited(sales: Sales) -> None:
    ids = sales.ids
    wrong = sales.admin.post("/api/v1/t/quote", json={"account": ids["acme"], "contact": ids["bob"]})
    assert problems_of(wrong) == [("contact", "link_filter")]
    inactive = sales.admin.post("/api/v1/t/quote", json={"account": ids["acme"], "contact": ids["amy"]})
    assert problems_of(inactive) == [("contact", "link_filter")]
    no_account = sales.admin.post("/api/v1/t/quote", json={"contact": ids["ann"]})
    assert problems_of(no_account) == [("contact", "link_filter")], "record.account is empty: nothing matches"
    right = sales.admin.post("/api/v1/t/quote", json={"account": ids["acme"], "contact": ids["ann"]})
    assert right.status_code == 201, right.text


def test_a_child_row_filter_reads_the_parent_record(sales: Sales) -> None:
    ids = sales.ids
    body = {"account": ids["acme"], "lines": [{"product": ids["gizmo"], "contact": ids["bob"]}]}
    assert problems_of(sales.admin.post("/api/v1/t/quote", json=body)) == [
        ("lines[0].contact", "link_filter")
    ]
    body["lines"] = [{"product": ids["gizmo"], "contact": ids["ann"]}]
    made = sales.admin.post("/api/v1/t/quote", json=body)
    assert made.status_code == 201, made.text
    quote = made.json()
    # the parent's account changes: the row's contact no longer fits, although the row is not sent
    moved = sales.admin.patch(f"/api/v1/t/quote/{quote['id']}", json={"account": ids["bolt"]})
    assert ("lines[0].contact", "link_filter") in problems_of(moved)


def test_an_unchanged_link_stays_valid_and_a_changed_input_is_checked_again(sales: Sales) -> None:
    ids = sales.ids
    quote = sales.admin.post("/api/v1/t/quote", json={"account": ids["acme"], "contact": ids["ann"]}).json()
    sales.admin.patch(f"/api/v1/t/account/{ids['acme']}", json={"active": False})
    kept = sales.admin.patch(
        f"/api/v1/t/quote/{quote['id']}", json={"title": "Renewal", "account": ids["acme"]}
    )
    assert kept.status_code == 200, "the link was set before and did not change: " + kept.text
    again = sales.admin.patch(f"/api/v1/t/quote/{quote['id']}", json={"account": ids["bolt"]})
    assert problems_of(again) == [("contact", "link_filter")], "the filter's input changed"
    both = sales.admin.patch(
        f"/api/v1/t/quote/{quote['id']}", json={"account": ids["bolt"], "contact": ids["bob"]}
    )
    assert both.status_code == 200, both.text


def test_bulk_creates_and_imports_are_refused_per_record(sales: Sales) -> None:
    ids = sales.ids
    items = [
        {"account": ids["acme"], "contact": ids["ann"]},
        {"account": ids["bolt"], "contact": ids["ann"]},
        {"account": ids["gone"]},
    ]
    answer = sales.admin.post("/api/v1/t/quote/bulk", json=items)
    assert sorted(problems_of(answer)) == [("[1].contact", "link_filter"), ("[2].account", "link_filter")]
    assert sales.admin.get("/api/v1/t/quote").json()["items"] == [], "all or nothing"
    service = sales.runtime.service
    from runtime.records.errors import InvalidRecord

    with pytest.raises(InvalidRecord) as refused:
        service.create_many("t", "quote", [{"account": ids["bolt"], "contact": ids["bob"]}, items[1]])
    assert [(p.field, p.code) for p in refused.value.problems] == [("[1].contact", "link_filter")]


def test_missing_and_unreadable_records_get_no_filter_verdict(sales: Sales) -> None:
    ids = sales.ids
    missing = sales.admin.post("/api/v1/t/quote", json={"account": ids["acme"], "contact": 9999})
    assert problems_of(missing) == [("contact", "not_found")]
    # Abe is Acme's but the rep's contacts are their own: out of scope, and nothing more is said
    hidden = sales.rep.post("/api/v1/t/quote", json={"account": ids["bolt"], "contact": ids["abe"]})
    assert problems_of(hidden) == [("contact", "link_out_of_scope")]


def test_record_values_are_parameters_not_sql(sales: Sales, tmp_path: Path, db_url: str) -> None:
    forms = {
        "tag": "form: tag\nlabel: Tag\nfields:\n  - {key: name, type: text}\n",
        "note": textwrap.dedent(
            """\
            form: note
            label: Note
            fields:
              - {key: text, type: text}
              - {key: tag, type: link, to: tag, filter: "name == record.text"}
            """
        ),
    }
    from tests.support import serve

    runtime, client = serve(write_pack(tmp_path / "inj", forms, "inj"), db_url, tmp_path / "inj_files")
    try:
        tag = client.post("/api/v1/inj/tag", json={"name": "x' OR '1'='1"}).json()["id"]
        other = client.post("/api/v1/inj/tag", json={"name": "plain"}).json()["id"]
        ok = client.post("/api/v1/inj/note", json={"text": "x' OR '1'='1", "tag": tag})
        assert ok.status_code == 201, ok.text
        refused = client.post("/api/v1/inj/note", json={"text": "x' OR '1'='1", "tag": other})
        assert problems_of(refused) == [("tag", "link_filter")]
    finally:
        runtime.engine.dispose()


# -- the web picker -----------------------------------------------------------------------


def picked(answer: Any) -> list[str]:
    assert answer.status_code == 200, answer.text
    return re.findall(r'data-pick-display="([^"]+)"', answer.text)


def test_the_picker_offers_only_records_the_filter_accepts(sales: Sales) -> None:
    ids = sales.ids
    web = sales.web
    assert picked(web.get("/app/t/quote/_pick/account?q=")) == ["Acme", "Bolt"], "not Gone Ltd"
    assert picked(web.get("/app/t/quote/_pick/lines.product?q=")) == ["Gizmo", "Widget"]
    # the contact filter reads the quote's account: the page posts the form it is on
    form = {"account": str(ids["acme"]), "contact._search": ""}
    headers = {"HX-Request": "true", "HX-Trigger-Name": "contact._search"}
    assert picked(web.post_form("/app/t/quote/_pick/contact", form, headers=headers)) == ["Ann"], (
        "Acme's active contacts the rep may read"
    )
    form["account"] = str(ids["bolt"])
    assert picked(web.post_form("/app/t/quote/_pick/contact", form, headers=headers)) == ["Bob"]
    form["contact._search"] = "zz"
    assert picked(web.post_form("/app/t/quote/_pick/contact", form, headers=headers)) == []
    # the form draws the contact picker as a POST, the account picker as a GET
    page = web.get("/app/t/quote/new").text
    assert re.search(r'hx-post="/app/t/quote/_pick/contact"', page)
    assert re.search(r'hx-get="/app/t/quote/_pick/account"', page)


def test_a_row_picker_reads_its_row_and_the_parent(sales: Sales) -> None:
    ids = sales.ids
    web = sales.web
    form = {
        "opportunity": str(ids["bolt_deal"]),  # the account follows it: Bolt
        "lines[0].product": str(ids["gizmo"]),
        "lines[1].product": str(ids["gizmo"]),
        "lines[1].contact._search": "",
    }
    headers = {"HX-Request": "true", "HX-Trigger-Name": "lines[1].contact._search"}
    assert picked(web.post_form("/app/t/quote/_pick/lines.contact", form, headers=headers)) == ["Bob"]


def test_the_picker_of_a_stored_record_reads_its_stored_values(sales: Sales) -> None:
    ids = sales.ids
    quote = sales.rep.post("/api/v1/t/quote", json={"account": ids["bolt"]}).json()
    web = sales.web
    headers = {
        "HX-Request": "true",
        "HX-Trigger-Name": "contact._search",
        "HX-Current-URL": f"http://testserver/app/t/quote/{quote['id']}",
    }
    # a workflow action's form holds only its own fields: the rest comes from the stored record
    assert picked(web.post_form("/app/t/quote/_pick/contact", {"contact._search": ""}, headers=headers)) == [
        "Bob"
    ]


# -- load checks --------------------------------------------------------------------------


def load_problems(tmp_path: Path, quote_fields: str, line_fields: str = "") -> list[str]:
    forms = dict(FORMS)
    forms["quote"] = textwrap.dedent(
        """\
        form: quote
        label: Quote
        fields:
          - {key: account, type: link, to: account}
        """
    ) + textwrap.indent(textwrap.dedent(quote_fields), "  ")
    if line_fields:
        forms["quote"] += "  - {key: lines, type: table, form: quote_line}\n"
        forms["quote_line"] = "form: quote_line\nlabel: L\nchild: true\nfields:\n" + textwrap.indent(
            textwrap.dedent(line_fields), "  "
        )
    pack = write_pack(tmp_path / "bad", forms)
    write_files(pack, {"app.yaml": "app: t\nlabel: T\nversion: '1'\nroles: [{key: rep}]\n"})
    try:
        load_pack(pack)
    except DefinitionError as error:
        return [str(p) for p in error.problems]
    return []


@pytest.mark.parametrize(
    ("field", "expected"),
    [
        ('- {key: contact, type: link, to: contact, filter: "acount == 1"}', "5:54: unknown field 'acount'"),
        (
            '- {key: contact, type: link, to: contact, filter: "account == record.acount"}',
            "5:65: the record being edited (quote) has no field 'acount' (did you mean 'account'?)",
        ),
        (
            '- {key: contact, type: link, to: contact, filter: "name"}',
            "5:54: the expression gives a text value; this needs a boolean value",
        ),
        (
            '- {key: contact, type: link, to: contact, filter: "account == parent.account"}',
            "5:65: 'parent.' reads the record holding a child row: only a link of child rows has it",
        ),
    ],
)
def test_filters_are_checked_at_load_with_positions(tmp_path: Path, field: str, expected: str) -> None:
    found = load_problems(tmp_path, field)
    assert any(p.startswith("forms/quote.yaml:") and expected in p for p in found), found


def test_a_row_filter_may_read_the_parent_and_is_checked_against_it(tmp_path: Path) -> None:
    line = '- {key: contact, type: link, to: contact, filter: "account == parent.acount"}\n'
    found = load_problems(tmp_path, "", line)
    assert any(
        "quote_line.yaml:5:" in p and "the parent record (quote) has no field 'acount'" in p for p in found
    ), found
    assert load_problems(tmp_path, "", line.replace("acount", "account")) == []
