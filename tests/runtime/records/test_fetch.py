"""Values carried from linked records (`fetch`, `fetch_mode`) and LOOKUP: the API, the live
preview and the web form agree; load checks point at the expression. Both databases."""

from __future__ import annotations

import json
import re
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runtime.identity.actor import SYSTEM
from runtime.loading.loader import load_pack
from runtime.loading.problems import DefinitionError
from tests.runtime.records.link_pack import FORMS, Sales, served
from tests.support import write_files, write_pack


@pytest.fixture
def sales(db_url: str, tmp_path: Path) -> Iterator[Sales]:
    yield from served(db_url, tmp_path)


def ref(value: Any) -> int | None:
    return value["id"] if isinstance(value, dict) else value


def test_follow_fills_the_field_and_follows_its_link(sales: Sales) -> None:
    ids = sales.ids
    made = sales.admin.post("/api/v1/t/quote", json={"opportunity": ids["acme_deal"]})
    assert made.status_code == 201, made.text
    quote = made.json()
    assert ref(quote["account"]) == ids["acme"]
    assert quote["payment_terms"] == "net30", "a fetch may read a field another fetch filled"
    moved = sales.admin.patch(f"/api/v1/t/quote/{quote['id']}", json={"opportunity": ids["bolt_deal"]})
    assert moved.status_code == 200, moved.text
    assert ref(moved.json()["account"]) == ids["bolt"], "follow: the account follows the opportunity"
    assert moved.json()["payment_terms"] == "net30", "default: a value in the field is kept"
    echoed = sales.admin.patch(
        f"/api/v1/t/quote/{quote['id']}", json={"opportunity": ids["acme_deal"], "account": ids["bolt"]}
    )
    assert ref(echoed.json()["account"]) == ids["acme"], "sending the stored value back is not setting it"


def test_a_value_the_user_sets_stops_the_following(sales: Sales) -> None:
    ids = sales.ids
    quote = sales.admin.post("/api/v1/t/quote", json={"opportunity": ids["acme_deal"]}).json()
    own = sales.admin.patch(f"/api/v1/t/quote/{quote['id']}", json={"account": ids["bolt"]})
    assert ref(own.json()["account"]) == ids["bolt"]
    other_deal = sales.make("opportunity", {"name": "Acme, again", "account": ids["acme"]})
    later = sales.admin.patch(f"/api/v1/t/quote/{quote['id']}", json={"opportunity": other_deal})
    assert ref(later.json()["account"]) == ids["bolt"], "the user's account stays"
    # a value equal to what the fetch gives is indistinguishable from a fetched one: it follows again
    same = sales.admin.patch(f"/api/v1/t/quote/{quote['id']}", json={"opportunity": ids["bolt_deal"]})
    assert ref(same.json()["account"]) == ids["bolt"]
    again = sales.admin.patch(f"/api/v1/t/quote/{quote['id']}", json={"opportunity": ids["acme_deal"]})
    assert ref(again.json()["account"]) == ids["acme"]
    given = sales.admin.post(
        "/api/v1/t/quote", json={"opportunity": ids["acme_deal"], "account": ids["bolt"]}
    )
    assert ref(given.json()["account"]) == ids["bolt"], "a value given on create is the user's"
    cleared = sales.admin.post("/api/v1/t/quote", json={"opportunity": ids["acme_deal"]}).json()
    emptied = sales.admin.patch(
        f"/api/v1/t/quote/{cleared['id']}", json={"account": None, "payment_terms": None}
    )
    assert emptied.json()["account"] is None, "emptying it is setting it too"
    moved = sales.admin.patch(f"/api/v1/t/quote/{cleared['id']}", json={"opportunity": ids["bolt_deal"]})
    assert moved.json()["account"] is None


def test_default_fills_an_empty_field_when_its_source_changes(sales: Sales) -> None:
    ids = sales.ids
    quote = sales.admin.post("/api/v1/t/quote", json={"title": "No account yet"}).json()
    assert quote["payment_terms"] is None
    later = sales.admin.patch(f"/api/v1/t/quote/{quote['id']}", json={"account": ids["bolt"]})
    assert later.json()["payment_terms"] == "net60"
    chosen = sales.admin.post("/api/v1/t/quote", json={"account": ids["bolt"], "payment_terms": "net30"})
    assert chosen.json()["payment_terms"] == "net30"


def test_the_tier_price_follows_the_quantity_until_the_user_sets_it(sales: Sales) -> None:
    ids = sales.ids
    lines = [
        {"product": ids["widget"], "quantity": 5},
        {"product": ids["widget"], "quantity": 10},
        {"product": ids["widget"], "quantity": 99.5},
        {"product": ids["widget"], "quantity": 250},
        {"product": ids["gizmo"], "quantity": 250},
        {"product": ids["widget"], "quantity": 3, "unit_price": "70.00"},
    ]
    made = sales.admin.post("/api/v1/t/quote", json={"account": ids["acme"], "lines": lines})
    assert made.status_code == 201, made.text
    quote = made.json()
    prices = [row["unit_price"] for row in quote["lines"]]
    assert prices == ["100.00", "90.00", "90.00", "80.00", "50.00", "70.00"]
    assert quote["total"] == "43065.00"
    rows = [
        {"id": quote["lines"][0]["id"], "quantity": 120},  # follows: the 100+ tier
        {"id": quote["lines"][5]["id"], "quantity": 200},  # set by the user: kept
        {"product": ids["widget"], "quantity": 12},  # a new row
    ]
    changed = sales.admin.patch(f"/api/v1/t/quote/{quote['id']}", json={"lines": rows})
    assert changed.status_code == 200, changed.text
    assert [row["unit_price"] for row in changed.json()["lines"]] == ["80.00", "70.00", "90.00"]
    sales.admin.patch(f"/api/v1/t/product/{ids['widget']}", json={"price": 120})
    kept = sales.admin.patch(f"/api/v1/t/quote/{quote['id']}", json={"title": "unchanged lines"})
    assert [row["unit_price"] for row in kept.json()["lines"]] == ["80.00", "70.00", "90.00"], (
        "a stored value is not refetched while its inputs stay"
    )


def test_the_preview_gives_what_the_save_stores(sales: Sales) -> None:
    ids = sales.ids
    service = sales.runtime.service
    body = {
        "opportunity": ids["bolt_deal"],
        "lines": [{"product": ids["widget"], "quantity": 150}, {"product": ids["gizmo"], "quantity": 2}],
    }
    preview = service.preview("t", "quote", body, SYSTEM)
    saved = service.create("t", "quote", body)
    assert preview.record.fetched == {"account": ids["bolt"], "payment_terms": "net60"}
    assert [str(row.fetched["unit_price"]) for row in preview.children["lines"]] == [
        row["unit_price"] for row in saved["lines"]
    ]
    assert str(preview.record.values["total"]) == saved["total"]
    update = {"opportunity": ids["acme_deal"]}
    again = service.preview("t", "quote", update, SYSTEM, saved["id"])
    stored = service.update("t", "quote", saved["id"], update)
    assert again.record.fetched["account"] == stored["account"]["id"] == ids["acme"]
    assert "payment_terms" not in again.record.fetched, "default mode keeps the stored value"


def live(web: Any, data: dict[str, str]) -> dict[str, Any]:
    answer = web.post_form("/app/t/quote/_live", data, headers={"HX-Request": "true"})
    assert answer.status_code == 204, answer.text
    return dict(json.loads(answer.headers["HX-Trigger"])["formloom:live"])


def test_the_web_form_follows_until_the_user_types(sales: Sales) -> None:
    ids = sales.ids
    web = sales.web
    page = web.get("/app/t/quote/new").text
    assert 'name="account._fetched"' in page and 'name="payment_terms._fetched"' in page
    first = live(web, {"opportunity": str(ids["acme_deal"]), "account": "", "account._fetched": ""})
    filled = first["record"]["fetched"]
    assert filled["account"] == {"value": str(ids["acme"]), "display": "Acme", "kind": "link"}
    assert filled["payment_terms"]["value"] == "net30"
    # the page wrote the account into the input and its marker: still following
    following = {"opportunity": str(ids["bolt_deal"]), "account": str(ids["acme"])}
    second = live(web, {**following, "account._fetched": str(ids["acme"])})
    assert second["record"]["fetched"]["account"]["display"] == "Bolt"
    # the user typed over it: their value stays
    third = live(web, {**following, "account._fetched": str(ids["gone"])})
    assert "account" not in third["record"]["fetched"]
    rows = live(
        web,
        {
            "account": str(ids["acme"]),
            "lines[0].product": str(ids["widget"]),
            "lines[0].quantity": "150",
            "lines[0].unit_price": "",
            "lines[0].unit_price._fetched": "",
        },
    )["rows"]
    assert rows[0]["fetched"]["lines[0].unit_price"]["value"] == "80.00"
    # saving the form as the page left it stores what the preview showed
    saved = web.post_form(
        "/app/t/quote/new",
        {
            "opportunity": str(ids["bolt_deal"]),
            "account": str(ids["acme"]),
            "account._fetched": str(ids["acme"]),
            "payment_terms": "net30",
            "payment_terms._fetched": "net30",
        },
    )
    assert saved.status_code == 303, saved.text
    quote_id = re.search(r"/app/t/quote/(\d+)", saved.headers["location"])
    assert quote_id is not None
    stored = sales.admin.get(f"/api/v1/t/quote/{quote_id.group(1)}").json()
    assert ref(stored["account"]) == ids["bolt"] and stored["payment_terms"] == "net60"
    edit = web.get(f"/app/t/quote/{quote_id.group(1)}/edit").text
    assert f'name="account._fetched" value="{ids["bolt"]}"' in edit


def test_a_new_form_opened_with_a_link_given_shows_what_it_carries(sales: Sales) -> None:
    ids = sales.ids
    page = sales.web.get(f"/app/t/quote/new?opportunity={ids['bolt_deal']}").text
    assert f'name="account._fetched" value="{ids["bolt"]}"' in page, "the account came with the opportunity"
    assert re.search(rf'name="account" value="{ids["bolt"]}"', page)
    assert 'value="Bolt"' in page, "the picker shows the account's title"
    assert 'name="payment_terms._fetched" value="net60"' in page
    plain = sales.web.get("/app/t/quote/new").text
    assert 'name="account._fetched" value=""' in plain


def test_lookup_runs_in_sql_too(sales: Sales) -> None:
    ids = sales.ids
    sales.admin.post("/api/v1/t/quote", json={"title": "w", "main_product": ids["widget"]})
    sales.admin.post("/api/v1/t/quote", json={"title": "g", "main_product": ids["gizmo"]})
    where = "LOOKUP(50, main_product.tiers.min_quantity, main_product.tiers.unit_price) == 90"
    found = sales.admin.get("/api/v1/t/quote", params={"where": where})
    assert found.status_code == 200, found.text
    assert [q["title"] for q in found.json()["items"]] == ["w"]
    own = sales.admin.get(
        "/api/v1/t/product", params={"where": "LOOKUP(150, tiers.min_quantity, tiers.unit_price) == 80"}
    )
    assert [p["name"] for p in own.json()["items"]] == ["Widget"]


# -- load checks --------------------------------------------------------------------------


def problems(tmp_path: Path, fields: str) -> list[str]:
    forms = dict(FORMS)
    forms["quote"] = "form: quote\nlabel: Quote\nfields:\n" + textwrap.indent(textwrap.dedent(fields), "  ")
    pack = write_pack(tmp_path / "bad", forms)
    write_files(pack, {"app.yaml": "app: t\nlabel: T\nversion: '1'\nroles: [{key: rep}]\n"})
    try:
        load_pack(pack)
    except DefinitionError as error:
        return [str(p) for p in error.problems]
    return []


OPP = "- {key: opportunity, type: link, to: opportunity}\n"


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (
            OPP + '- {key: account, type: link, to: account, fetch: "opportunity.acount"}\n',
            "5:53: form 'opportunity' has no field 'acount'",
        ),
        (
            OPP + '- {key: account, type: text, fetch: "opportunity.account"}\n',
            "5:40: the expression gives a ref value; this needs a text value",
        ),
        (
            OPP + '- {key: account, type: link, to: account, fetch: "opportunity.account", formula: "1"}\n',
            "5:52: a field with a fetch cannot also have a formula",
        ),
        (
            '- {key: lines, type: table, form: quote_line, fetch: "1"}\n',
            "4:56: a table field cannot fetch a value",
        ),
        (
            '- {key: lines, type: table, form: quote_line}\n- {key: n, type: integer, fetch: "COUNT(lines)"}',
            "5:37: a fetch cannot read the record's own rows ('lines'); use a formula",
        ),
        (
            '- {key: a, type: integer, formula: "1"}\n- {key: b, type: integer, fetch: "a + 1"}\n',
            "5:37: a fetch cannot read the formula 'a'",
        ),
        (
            '- {key: a, type: integer, fetch: "b"}\n- {key: b, type: integer, fetch: "a"}\n',
            "fetches refer to each other in a circle",
        ),
        ("- {key: a, type: integer, fetch_mode: default}\n", "4:41: fetch_mode needs a fetch"),
        (
            '- {key: a, type: integer, fetch: "LOOKUP(1, lines.x, lines.y)"}\n',
            "4:47: form 'quote' has no table field 'lines'",
        ),
    ],
)
def test_fetches_are_checked_at_load_with_positions(tmp_path: Path, fields: str, expected: str) -> None:
    found = problems(tmp_path, fields)
    assert any(p.startswith("forms/quote.yaml:") and expected in p for p in found), found
