"""The sales pack's permission matrix: role × form × operation, and what each role sees."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.support import user_token

# Operations each role may take on each form (list = read, post = create, patch = update, delete).
MATRIX = {
    "sales_rep": {
        "lead": "cru",
        "account": "cru",
        "quote": "cru",
        "product": "r",
        "scoring_settings": "r",
        "contract": "cru",
        "sales_order": "ru",
        "fulfilment_task": "cru",
        "payment_milestone": "r",
    },
    "sales_manager": {
        "lead": "crud",
        "account": "crud",
        "quote": "crud",
        "product": "r",
        "scoring_settings": "r",
        "contract": "crud",
        "sales_order": "rud",
        "fulfilment_task": "crud",
        "payment_milestone": "r",
    },
    "sales_director": {
        "lead": "crud",
        "account": "crud",
        "quote": "crud",
        "product": "crud",
        "scoring_settings": "r",
        "contract": "crud",
        "sales_order": "rud",
        "fulfilment_task": "crud",
        "payment_milestone": "r",
    },
    "marketing": {
        "lead": "cru",
        "account": "r",
        "quote": "",
        "product": "r",
        "scoring_settings": "ru",
        "contract": "",
        "sales_order": "",
        "fulfilment_task": "",
        "payment_milestone": "",
    },
    "finance": {
        "lead": "",
        "account": "r",
        "quote": "r",
        "product": "r",
        "scoring_settings": "",
        "contract": "r",
        "sales_order": "r",
        "fulfilment_task": "ru",
        "payment_milestone": "crud",
    },
    "legal": {
        "lead": "",
        "account": "r",
        "quote": "r",
        "product": "r",
        "scoring_settings": "",
        "contract": "ru",
        "sales_order": "",
        "fulfilment_task": "",
        "payment_milestone": "",
    },
}
DEMO_USER = {
    "sales_rep": "li.rep",
    "sales_manager": "qian.manager",
    "sales_director": "zhao.director",
    "marketing": "wu.marketing",
    "finance": "zheng.finance",
    "legal": "wang.legal",
}


def client_for(runtime, role: str) -> TestClient:  # type: ignore[no-untyped-def]
    token = user_token(runtime.engine, DEMO_USER[role], (role,))
    return TestClient(runtime.api, headers={"Authorization": f"Bearer {token}"})


def test_each_role_may_do_exactly_what_the_pack_grants(sales) -> None:  # type: ignore[no-untyped-def]
    for role in sorted(MATRIX):
        check_role(sales, role)


def check_role(runtime, role: str) -> None:  # type: ignore[no-untyped-def]
    client = client_for(runtime, role)
    for form, allowed in MATRIX[role].items():
        listing = client.get(f"/api/v1/sales/{form}")
        assert (listing.status_code == 200) == ("r" in allowed), (role, form, "read", listing.status_code)
        created = client.post(f"/api/v1/sales/{form}", json={})
        assert (created.status_code != 403) == ("c" in allowed), (role, form, "create", created.status_code)
        if "r" in allowed and listing.json()["items"]:
            record = listing.json()["items"][0]["id"]
            changed = client.patch(f"/api/v1/sales/{form}/{record}", json={})
            assert (changed.status_code != 403) == ("u" in allowed), (role, form, "update")
            deleted = client.delete(f"/api/v1/sales/{form}/999999")
            assert (deleted.status_code != 403) == ("d" in allowed), (role, form, "delete")


def test_scopes_and_hidden_fields(sales) -> None:  # type: ignore[no-untyped-def]
    counts = {
        role: len(client_for(sales, role).get("/api/v1/sales/lead").json()["items"])
        for role in ("sales_rep", "sales_manager", "sales_director")
    }
    assert 0 < counts["sales_rep"] <= counts["sales_manager"] <= counts["sales_director"] == 6
    product = client_for(sales, "sales_rep").get("/api/v1/sales/product").json()["items"][0]
    assert "unit_cost" not in product and "list_price" in product
    assert "unit_cost" in client_for(sales, "sales_director").get("/api/v1/sales/product").json()["items"][0]
