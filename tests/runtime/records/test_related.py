"""Related lists: a record page lists the records of other forms that link to it, as the
reader may read them (scope, hidden fields), counted, sorted and paged, one query per block
and its count; the API pages them at `…/{id}/related/{form}.{link}`; the web draws each block
with a "new" button that fills the link in; load checks with positions. Both databases."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from runtime.boot import Runtime
from runtime.identity.actor import Actor
from runtime.loading.loader import load_pack
from runtime.loading.problems import DefinitionError
from runtime.records.related import page_of
from tests.support import WebClient, count_queries, serve, user_token, web_client, write_files, write_pack

APP = """\
    app: t
    label: Test
    version: '1'
    roles:
      - {key: rep}
      - {key: boss}
    """
FORMS = {
    "customer": """\
        form: customer
        label: {zh: 客户, en: Customer}
        title_field: name
        owner_field: owner
        permissions:
          - {roles: [rep], can: [create, read, update], scope: own}
          - {roles: [boss], can: [create, read, update], scope: all}
        fields:
          - {key: name, type: text, required: true}
          - {key: owner, type: user, default: current_user}
        layout:
          - {section: Customer, fields: [name, owner]}
          - related: deal.customer
            label: {zh: 商机, en: Deals}
            columns: [title, amount, stage]
            sort: ["-amount"]
            page_size: 2
          - related: note.customer
            tab: {zh: 备注, en: Notes}
          - {related: visit.customer, label: Visits}
        """,
    "deal": """\
        form: deal
        label: {zh: 商机, en: Deal}
        title_field: title
        permissions:
          - {roles: [rep], can: [create, read, update], scope: own}
          - {roles: [boss], can: [create, read, update], scope: all}
        fields:
          - {key: title, type: text, required: true}
          - {key: customer, type: link, to: customer}
          - {key: amount, type: money}
          - {key: stage, type: select, options: [open, won], default: open}
          - {key: cost, type: money, hidden_for: [rep]}
          - {key: lines, type: table, form: deal_line}
        list:
          columns: [title, customer, cost]
        """,
    "deal_line": """\
        form: deal_line
        label: Deal line
        child: true
        fields:
          - {key: product, type: text}
          - {key: qty, type: integer}
        """,
    "note": """\
        form: note
        label: {zh: 备注, en: Note}
        permissions:
          - {roles: [boss], can: [create, read], scope: all}
        fields:
          - {key: text, type: text, required: true}
          - {key: customer, type: link, to: customer}
        """,
    "visit": """\
        form: visit
        label: Visit
        permissions:
          - {roles: [rep, boss], can: [create, read], scope: all}
        fields:
          - {key: place, type: text}
          - {key: customer, type: link, to: customer, hidden_for: [rep]}
        """,
}


@dataclass
class Crm:
    runtime: Runtime
    admin: TestClient
    rep: TestClient
    boss: TestClient
    web_rep: WebClient
    web_boss: WebClient
    ids: dict[str, int]

    def make(self, client: TestClient, form: str, body: dict[str, Any]) -> int:
        answer = client.post(f"/api/v1/t/{form}", json=body)
        assert answer.status_code == 201, answer.text
        return int(answer.json()["id"])


def _client(runtime: Runtime, name: str, roles: tuple[str, ...]) -> TestClient:
    token = user_token(runtime.engine, name, roles)
    return TestClient(runtime.api, headers={"Authorization": f"Bearer {token}"})


@pytest.fixture
def crm(db_url: str, tmp_path: Path) -> Iterator[Crm]:
    pack = write_files(write_pack(tmp_path / "pack", FORMS), {"app.yaml": APP})
    runtime, admin = serve(pack, db_url, tmp_path / "files")
    web_rep, web_boss = web_client(runtime, "rep", ("rep",)), web_client(runtime, "boss", ("boss",))
    rep, boss = _client(runtime, "rep", ("rep",)), _client(runtime, "boss", ("boss",))
    crm = Crm(runtime, admin, rep, boss, web_rep, web_boss, {})
    ids = crm.ids
    ids["mine"] = crm.make(rep, "customer", {"name": "Mine"})
    ids["other"] = crm.make(boss, "customer", {"name": "Other"})
    for title, amount in (("r1", 10), ("r2", 30)):
        ids[title] = crm.make(rep, "deal", {"title": title, "customer": ids["mine"], "amount": amount})
    for title, amount in (("b1", 20), ("b2", 50), ("b3", 40)):
        body = {"title": title, "customer": ids["mine"], "amount": amount, "cost": 5}
        ids[title] = crm.make(boss, "deal", {**body, "lines": [{"product": "x", "qty": 1}]})
    ids["elsewhere"] = crm.make(boss, "deal", {"title": "elsewhere", "customer": ids["other"], "amount": 99})
    crm.make(boss, "note", {"text": "hello", "customer": ids["mine"]})
    crm.make(boss, "visit", {"place": "Shanghai", "customer": ids["mine"]})
    try:
        yield crm
    finally:
        runtime.engine.dispose()


def titles(page: dict[str, Any]) -> list[str]:
    return [item["title"] for item in page["items"]]


# -- the API ------------------------------------------------------------------------------


def test_a_related_list_pages_the_records_linking_to_the_record(crm: Crm) -> None:
    url = f"/api/v1/t/customer/{crm.ids['mine']}/related/deal.customer"
    first = crm.boss.get(url)
    assert first.status_code == 200, first.text
    page = first.json()
    assert page["total"] == 5 and page["limit"] == 2 and page["next_offset"] == 2
    assert titles(page) == ["b2", "b3"], "sorted by the list's sort: -amount"
    assert page["items"][0]["lines"][0]["product"] == "x", "child rows come with the records, as in a list"
    assert titles(crm.boss.get(url, params={"offset": 4}).json()) == ["r1"]
    by_title = crm.boss.get(url, params={"sort": "title", "limit": 10}).json()
    assert titles(by_title) == ["b1", "b2", "b3", "r1", "r2"] and by_title["next_offset"] is None
    wrong = crm.boss.get(url, params={"sort": "nope"})
    assert wrong.status_code == 422 and wrong.json()["errors"][0]["field"] == "query.sort"


def test_a_related_list_holds_only_what_the_reader_may_read(crm: Crm) -> None:
    url = f"/api/v1/t/customer/{crm.ids['mine']}/related/deal.customer"
    page = crm.rep.get(url, params={"limit": 10}).json()
    assert page["total"] == 2 and titles(page) == ["r2", "r1"], "the rep's own deals only"
    assert all("cost" not in item for item in page["items"]), "hidden fields stay hidden"
    notes = crm.rep.get(f"/api/v1/t/customer/{crm.ids['mine']}/related/note.customer")
    assert notes.status_code == 403, "the rep may not read notes"
    visits = crm.rep.get(f"/api/v1/t/customer/{crm.ids['mine']}/related/visit.customer")
    assert visits.status_code == 403, "the link is hidden from the rep"
    assert crm.boss.get(f"/api/v1/t/customer/{crm.ids['mine']}/related/note.customer").json()["total"] == 1


def test_a_record_out_of_scope_or_an_unknown_relation_is_not_found(crm: Crm) -> None:
    other = crm.rep.get(f"/api/v1/t/customer/{crm.ids['other']}/related/deal.customer")
    assert other.status_code == 404, "the rep may not read the other customer"
    assert other.json()["errors"][0]["code"] == "not_found"
    assert crm.admin.get("/api/v1/t/customer/999/related/deal.customer").status_code == 404
    unknown = crm.admin.get(f"/api/v1/t/customer/{crm.ids['mine']}/related/deal.owner")
    assert unknown.status_code == 404 and unknown.json()["errors"][0]["code"] == "not_found"
    assert crm.admin.get(f"/api/v1/t/deal/{crm.ids['r1']}/related/deal.customer").status_code == 404


def test_the_related_routes_are_in_the_spec(crm: Crm) -> None:
    paths = crm.runtime.api.openapi()["paths"]
    operation = paths["/api/v1/t/customer/{record_id}/related/deal.customer"]["get"]
    assert {p["name"] for p in operation["parameters"]} >= {"record_id", "limit", "offset", "sort"}
    schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert schema["allOf"][0] == {"$ref": "#/components/schemas/TDealPage"}
    assert set(operation["responses"]) >= {"200", "401", "403", "404", "422"}


def test_one_query_per_block_and_its_count(crm: Crm) -> None:
    service, app = crm.runtime.service, crm.runtime.service.apps["t"]
    spec = app.forms["customer"].form.related_list("deal.customer")
    assert spec is not None
    admin = Actor(1, "admin", frozenset({"admin"}))
    with count_queries(crm.runtime.engine) as statements:
        page = page_of(service, app, spec, crm.ids["mine"], [("limit", "5")], admin, children=False)
    assert len(page["items"]) == 5 and len(statements) == 2, statements
    with count_queries(crm.runtime.engine) as few:
        page_of(service, app, spec, crm.ids["other"], [], admin, children=False)
    assert len(few) == 2


# -- the web ------------------------------------------------------------------------------


@pytest.fixture
def web(crm: Crm) -> WebClient:
    return crm.web_boss


def test_the_record_page_draws_each_block_with_its_count_and_new_button(crm: Crm, web: WebClient) -> None:
    mine = crm.ids["mine"]
    page = web.get(f"/app/t/customer/{mine}")
    assert page.status_code == 200, page.text
    html = page.text
    deals = _block(html, "deal.customer")
    assert "Deals" in deals and "(5)" in deals
    assert deals.index(">b2<") < deals.index(">b3<") and ">r1<" not in deals, "the first page, by -amount"
    assert f'href="/app/t/deal/new?customer={mine}"' in deals
    assert f'hx-get="/app/t/customer/{mine}/related/deal.customer?offset=2"' in deals
    assert ">Note <" in _block(html, "note.customer") and "Visits" in _block(html, "visit.customer")
    assert 'role="tab"' in html and ">Notes</button>" in html, "a block with a tab sits under it"


def test_a_block_pages_and_sorts_in_place_and_without_scripts(crm: Crm, web: WebClient) -> None:
    mine = crm.ids["mine"]
    fragment = web.get(f"/app/t/customer/{mine}/related/deal.customer?offset=4")
    assert fragment.status_code == 200 and "<html" not in fragment.text
    assert ">r1<" in fragment.text and 'rel="prev"' in fragment.text
    by_title = web.get(f"/app/t/customer/{mine}/related/deal.customer?sort=title").text
    assert by_title.index(">b1<") < by_title.index(">b2<") and 'aria-sort="ascending"' in by_title
    plain = web.get(f"/app/t/customer/{mine}?rel=deal.customer&offset=2").text
    block = _block(plain, "deal.customer")
    assert ">b1<" in block and ">r2<" in block and ">b2<" not in block
    assert web.get(f"/app/t/customer/{mine}/related/deal.nope").status_code == 404


def test_the_reader_sees_only_their_records_and_blocks(crm: Crm) -> None:
    rep = crm.web_rep
    html = rep.get(f"/app/t/customer/{crm.ids['mine']}").text
    deals = _block(html, "deal.customer")
    assert "(2)" in deals and ">b2<" not in deals and ">r2<" in deals
    assert 'data-related="note.customer"' not in html, "a form the rep cannot read is not shown"
    assert 'data-related="visit.customer"' not in html, "nor one whose link is hidden from them"
    assert rep.get(f"/app/t/customer/{crm.ids['mine']}/related/note.customer").status_code == 403


def test_new_opens_the_form_with_the_link_filled_in(crm: Crm, web: WebClient) -> None:
    mine = crm.ids["mine"]
    form = web.get(f"/app/t/deal/new?customer={mine}")
    assert form.status_code == 200, form.text
    assert re.search(rf'name="customer"[^>]*value="{mine}"', form.text), form.text
    assert 'value="Mine"' in form.text, "the picker shows the customer's name"
    other = crm.web_rep.get(f"/app/t/deal/new?customer={crm.ids['other']}").text
    assert f'value="#{crm.ids["other"]}"' in other, "a customer the rep cannot read shows as its id"


def test_the_record_page_costs_the_same_for_one_related_record_or_many(crm: Crm, web: WebClient) -> None:
    web.get(f"/app/t/customer/{crm.ids['other']}")  # warm up
    with count_queries(crm.runtime.engine) as one:
        assert web.get(f"/app/t/customer/{crm.ids['other']}").status_code == 200
    with count_queries(crm.runtime.engine) as many:
        assert web.get(f"/app/t/customer/{crm.ids['mine']}").status_code == 200
    assert len(one) == len(many), (len(one), len(many))


def _block(html: str, relation: str) -> str:
    start = html.index(f'data-related="{relation}"')
    return html[start : html.index("</section>", start)]


# -- load checks ------------------------------------------------------------------------


def _problems(tmp_path: Path, customer: str) -> list[str]:
    forms = {**FORMS, "customer": customer}
    pack = write_files(write_pack(tmp_path / "bad", forms), {"app.yaml": APP})
    with pytest.raises(DefinitionError) as caught:
        load_pack(pack)
    return [str(p) for p in caught.value.problems]


def test_related_lists_are_checked_with_positions(tmp_path: Path) -> None:
    customer = """\
        form: customer
        label: Customer
        fields:
          - {key: name, type: text}
        layout:
          - {section: Customer, fields: [name]}
          - {related: dael.customer}
          - {related: deal.title}
          - {related: deal.customer, columns: [titel, lines], sort: [stage, nope]}
          - {related: deal_line.product}
          - {related: deal.customer}
          - {related: deal, page_size: 0}
        """
    assert _problems(tmp_path, customer) == [
        "forms/customer.yaml:7:15: unknown form 'dael' (did you mean 'deal'?)",
        "forms/customer.yaml:8:15: 'title' is not a link field of deal",
        "forms/customer.yaml:9:40: unknown field 'titel' (did you mean 'title'?)",
        "forms/customer.yaml:9:47: 'lines' holds child rows: it cannot be a column",
        "forms/customer.yaml:9:69: unknown field 'nope'",
        "forms/customer.yaml:10:15: 'deal_line' is a child form: its rows are listed inside their record",
        "forms/customer.yaml:11:15: related list 'deal.customer' is given twice",
        "forms/customer.yaml:12:15: related: invalid relation 'deal': write form.link, "
        "such as quote.opportunity",
        "forms/customer.yaml:12:32: page_size: input should be greater than or equal to 1",
    ]


def test_a_related_list_must_link_to_its_own_form(tmp_path: Path) -> None:
    customer = """\
        form: customer
        label: Customer
        fields:
          - {key: name, type: text}
        layout:
          - {related: note.customer_x}
          - {related: deal.customer}
        """
    deal = FORMS["deal"].replace("to: customer}", "to: note}")
    forms = {**FORMS, "customer": customer, "deal": deal}
    pack = write_files(write_pack(tmp_path / "other", forms), {"app.yaml": APP})
    with pytest.raises(DefinitionError) as caught:
        load_pack(pack)
    assert [str(p) for p in caught.value.problems] == [
        "forms/customer.yaml:6:15: unknown field 'customer_x' of note (did you mean 'customer'?)",
        "forms/customer.yaml:7:15: 'deal.customer' links to note, not to customer",
    ]
