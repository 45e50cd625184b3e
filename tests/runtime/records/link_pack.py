"""A tiny sales pack for link filters and fetched values (tests/runtime/records/test_link_filters.py,
test_fetch.py): quotes pick an opportunity (the account follows), a contact of that account,
and lines whose unit price comes from the product's price tier for the quantity."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from fastapi.testclient import TestClient

from runtime.boot import Runtime
from tests.support import WebClient, serve, user_token, web_client, write_files, write_pack

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
        permissions:
          - {roles: [rep], can: [create, read, update], scope: all}
        fields:
          - {key: name, type: text, required: true}
          - {key: payment_terms, type: select, options: [net30, net60]}
          - {key: active, type: boolean, default: true}
        """,
    "contact": """\
        form: contact
        label: Contact
        title_field: name
        permissions:
          - {roles: [rep], can: [create, read], scope: own}
        fields:
          - {key: name, type: text, required: true}
          - {key: account, type: link, to: account}
          - {key: active, type: boolean, default: true}
        """,
    "price_tier": """\
        form: price_tier
        label: Price tier
        child: true
        fields:
          - {key: min_quantity, type: decimal, scale: 2, required: true}
          - {key: unit_price, type: money, required: true}
        """,
    "product": """\
        form: product
        label: Product
        title_field: name
        permissions:
          - {roles: [rep], can: [create, read, update], scope: all}
        fields:
          - {key: name, type: text, required: true}
          - {key: price, type: money}
          - {key: active, type: boolean, default: true}
          - {key: tiers, type: table, form: price_tier}
        """,
    "opportunity": """\
        form: opportunity
        label: Opportunity
        title_field: name
        permissions:
          - {roles: [rep], can: [create, read, update], scope: all}
        fields:
          - {key: name, type: text, required: true}
          - {key: account, type: link, to: account}
        """,
    "quote_line": """\
        form: quote_line
        label: Quote line
        child: true
        fields:
          - {key: product, type: link, to: product, filter: "active == true"}
          - {key: contact, type: link, to: contact, filter: "account == parent.account"}
          - {key: quantity, type: decimal, scale: 2, default: 1}
          - key: unit_price
            type: money
            fetch: >-
              COALESCE(LOOKUP(quantity, product.tiers.min_quantity, product.tiers.unit_price),
                       product.price)
          - {key: amount, type: money, formula: "quantity * unit_price"}
        """,
    "quote": """\
        form: quote
        label: Quote
        permissions:
          - {roles: [rep], can: [create, read, update], scope: all}
        fields:
          - {key: title, type: text}
          - {key: opportunity, type: link, to: opportunity}
          - {key: account, type: link, to: account, fetch: opportunity.account, filter: "active == true"}
          - key: contact
            type: link
            to: contact
            filter: "account == record.account and active == true"
          - key: payment_terms
            type: select
            options: [net30, net60]
            fetch: account.payment_terms
            fetch_mode: default
          - {key: main_product, type: link, to: product}
          - {key: lines, type: table, form: quote_line}
          - {key: total, type: money, formula: "SUM(lines.amount)"}
        """,
}


@dataclass
class Sales:
    """The served pack: the runtime, an admin and a rep API client, and the ids made."""

    runtime: Runtime
    admin: TestClient
    rep: TestClient
    web: WebClient
    ids: dict[str, int]

    def make(self, form: str, body: dict[str, object], client: TestClient | None = None) -> int:
        answer = (client or self.admin).post(f"/api/v1/t/{form}", json=body)
        assert answer.status_code == 201, answer.text
        return int(answer.json()["id"])


def served(db_url: str, tmp_path: Path) -> Iterator[Sales]:
    """The pack served, with two active accounts and one inactive, their contacts and
    opportunities, and a tiered product."""
    pack = write_pack(tmp_path / "pack", FORMS)
    write_files(pack, {"app.yaml": APP})
    runtime, admin = serve(pack, db_url, tmp_path / "files")
    web = web_client(runtime, "rep", ("rep",))  # the rep signs in on the web too
    rep = TestClient(
        runtime.api, headers={"Authorization": f"Bearer {user_token(runtime.engine, 'rep', ('rep',))}"}
    )
    sales = Sales(runtime, admin, rep, web, {})
    ids = sales.ids
    ids["acme"] = sales.make("account", {"name": "Acme", "payment_terms": "net30"})
    ids["bolt"] = sales.make("account", {"name": "Bolt", "payment_terms": "net60"})
    ids["gone"] = sales.make("account", {"name": "Gone Ltd", "active": False})
    ids["ann"] = sales.make("contact", {"name": "Ann", "account": ids["acme"]}, rep)
    ids["amy"] = sales.make("contact", {"name": "Amy", "account": ids["acme"], "active": False}, rep)
    ids["bob"] = sales.make("contact", {"name": "Bob", "account": ids["bolt"]}, rep)
    ids["abe"] = sales.make("contact", {"name": "Abe (admin's)", "account": ids["acme"]})
    ids["acme_deal"] = sales.make("opportunity", {"name": "Acme deal", "account": ids["acme"]})
    ids["bolt_deal"] = sales.make("opportunity", {"name": "Bolt deal", "account": ids["bolt"]})
    tiers = [{"min_quantity": 10, "unit_price": 90}, {"min_quantity": 100, "unit_price": 80}]
    ids["widget"] = sales.make("product", {"name": "Widget", "price": 100, "tiers": tiers})
    ids["gizmo"] = sales.make("product", {"name": "Gizmo", "price": 50})
    ids["relic"] = sales.make("product", {"name": "Relic", "price": 5, "active": False})
    try:
        yield sales
    finally:
        runtime.engine.dispose()
