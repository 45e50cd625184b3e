"""The sales pack's records that connect, through the API (both databases): a quote takes its
account from the opportunity and its lines their unit price from the product's price tiers,
its contact must be one of the account's, inactive products are refused, and converting a
lead of a company that is already an account uses that account and its contact."""

from __future__ import annotations

from typing import Any

from runtime.boot import Runtime
from runtime.db import write
from runtime.identity.actor import SYSTEM
from runtime.identity.directory import user_id_of
from tests.definitions.sales_pack import as_user
from tests.definitions.test_sales_scoring import WEBINAR_LEAD

HUAXIN = "上海华信精密制造有限公司"


def one(runtime: Runtime, form: str, **where: str) -> dict[str, Any]:
    items = runtime.service.list_page("sales", form, list(where.items()), SYSTEM)["items"]
    assert len(items) == 1, items
    return dict(items[0])


def errors(answer: Any) -> list[tuple[str, str]]:
    assert answer.status_code == 422, answer.text
    return [(e["field"], e["code"]) for e in answer.json()["errors"]]


def test_a_quote_fills_its_account_and_tier_prices_and_checks_its_links(sales: Runtime) -> None:
    rep = as_user(sales, "li.rep")
    deal = one(sales, "opportunity", name="华信精密 销售云平台项目")
    licence = one(
        sales, "product", sku="FL-PLT-USR"
    )  # list 1200; tiers 1200 from 1, 1080 from 50, 960 from 200
    training = one(sales, "product", sku="FL-TRN-ADM")  # list 8000, no tiers
    lines = [
        {"product": licence["id"], "quantity": 10},
        {"product": licence["id"], "quantity": 60},
        {"product": licence["id"], "quantity": 300},
        {"product": training["id"], "quantity": 1},
        {"product": licence["id"], "quantity": 300, "unit_price": 900},
    ]
    made = rep.post("/api/v1/sales/quote", json={"opportunity": deal["id"], "lines": lines})
    assert made.status_code == 201, made.text
    quote = made.json()
    assert quote["account"]["id"] == deal["account"]["id"], "the account comes with the opportunity"
    assert [line["unit_price"] for line in quote["lines"]] == [
        "1200.00",
        "1080.00",
        "960.00",
        "8000.00",
        "900.00",
    ]
    moved = rep.patch(
        f"/api/v1/sales/quote/{quote['id']}",
        json={"lines": [{"id": quote["lines"][0]["id"], "quantity": 250}]},
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["lines"][0]["unit_price"] == "960.00", "the price follows the quantity's tier"

    # the contact must be one of the quote's account: 张伟 is 云帆科技's
    zhang = one(sales, "contact", name="张伟")
    wang = one(sales, "contact", name="王磊")
    refused = rep.post("/api/v1/sales/quote", json={"opportunity": deal["id"], "contact": zhang["id"]})
    assert errors(refused) == [("contact", "link_filter")]
    right = rep.post("/api/v1/sales/quote", json={"opportunity": deal["id"], "contact": wang["id"]})
    assert right.status_code == 201, right.text

    director = as_user(sales, "zhao.director")
    assert (
        director.patch(f"/api/v1/sales/product/{training['id']}", json={"active": False}).status_code == 200
    )
    line = {"product": training["id"], "quantity": 1}
    stopped = rep.post("/api/v1/sales/quote", json={"opportunity": deal["id"], "lines": [line]})
    assert errors(stopped) == [("lines[0].product", "link_filter")]
    kept = rep.patch(f"/api/v1/sales/quote/{quote['id']}", json={"terms": "as agreed"})
    assert kept.status_code == 200, "lines already holding the product stay valid: " + kept.text


def test_converting_a_lead_of_a_known_company_uses_its_account_and_contact(sales: Runtime) -> None:
    marketing, rep = as_user(sales, "wu.marketing"), as_user(sales, "li.rep")
    account = one(sales, "account", name=HUAXIN)
    contact = one(sales, "contact", name="王磊")
    accounts_before = len(sales.service.list_page("sales", "account", [("limit", "100")], SYSTEM)["items"])
    body = {**WEBINAR_LEAD, "company": HUAXIN, "contact_name": "王磊", "email": contact["email"]}
    made = marketing.post("/api/v1/sales/lead", json=body, params={"allow_duplicate": "true"})
    assert made.status_code == 201, made.text
    lead = made.json()
    assert lead["status"] == "mql"
    with write(sales.engine) as conn:
        owner = user_id_of(conn, "li.rep")
    handed = marketing.post(
        f"/api/v1/sales/lead/{lead['id']}/transitions/hand_off", json={"values": {"owner": owner}}
    )
    assert handed.status_code == 200, handed.text
    converted = rep.post(f"/api/v1/sales/lead/{lead['id']}/transitions/convert", json={})
    assert converted.status_code == 200, converted.text
    assert converted.json()["account"]["id"] == account["id"], "the existing account, not a second one"
    assert converted.json()["contact"]["id"] == contact["id"], "and its contact with that e-mail"
    accounts = sales.service.list_page("sales", "account", [("limit", "100")], SYSTEM)["items"]
    assert len(accounts) == accounts_before
    assert [a["id"] for a in accounts if a["name"] == HUAXIN] == [account["id"]]
    deals = sales.service.list_page("sales", "opportunity", [("lead", str(lead["id"]))], SYSTEM)["items"]
    assert [(d["account"]["id"], d["contact"]["id"]) for d in deals] == [(account["id"], contact["id"])]
