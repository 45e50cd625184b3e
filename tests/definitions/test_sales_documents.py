"""The sales pack's documents (definitions/sales/documents/), on both databases.

Sending a quote keeps the PDF the customer receives on the quote, rendered for the rep who
sent it, in Chinese with the company's letterhead; a contract renders from the template its
`template` field chose; another rep can reach neither.
"""

from __future__ import annotations

import time
from io import BytesIO

from pypdf import PdfReader

from runtime.boot import Runtime
from tests.definitions.sales_pack import as_user
from tests.definitions.test_sales_process import act


def test_sending_a_quote_keeps_the_pdf_the_customer_receives(sales: Runtime) -> None:
    rep, other = as_user(sales, "li.rep"), as_user(sales, "zhou.rep")
    opportunity = rep.get("/api/v1/sales/opportunity", params={"limit": 1}).json()["items"][0]
    product = rep.get("/api/v1/sales/product", params={"sku": "FL-PLT-USR"}).json()["items"][0]
    line = {
        "product": product["id"],
        "quantity": 10,
        "unit_price": product["list_price"],
        "discount_pct": "0.05",
    }
    body = {"opportunity": opportunity["id"], "account": opportunity["account"]["id"], "lines": [line]}
    answer = rep.post("/api/v1/sales/quote", json=body)
    assert answer.status_code == 201, answer.text
    quote = answer.json()  # a discount within the rep's own band: approved on submit
    assert act(rep, "quote", quote["id"], "submit")["status"] == "approved"
    started = time.perf_counter()
    sent = act(rep, "quote", quote["id"], "send")
    took = time.perf_counter() - started
    kept = sent["sent_document"]
    assert sent["status"] == "sent" and kept["name"] == f"报价单-{quote['number']}.pdf"
    content = rep.get(kept["url"]).content
    assert content.startswith(b"%PDF-")
    text = "\n".join(page.extract_text() for page in PdfReader(BytesIO(content)).pages)
    assert "销售云平台用户许可" in text and "杭州示例云软件有限公司" in text and quote["number"] in text
    assert other.get(kept["url"]).status_code == 404
    base = f"/api/v1/sales/quote/{quote['id']}/documents"
    assert [other.get(url).status_code for url in (base, f"{base}/quote.pdf", f"{base}/quote.html")] == [
        404
    ] * 3
    print(f"\nsend with its PDF: {took:.2f} s")


def test_a_contract_renders_from_the_template_it_chose(sales: Runtime) -> None:
    rep, other = as_user(sales, "li.rep"), as_user(sales, "zhou.rep")
    contract = rep.get("/api/v1/sales/contract", params={"limit": 1}).json()["items"][0]
    base = f"/api/v1/sales/contract/{contract['id']}/documents"
    listed = rep.get(base).json()["items"]
    assert [(d["key"], d["template"], d["ready"]) for d in listed] == [
        ("contract", "contract_standard.html.j2", True)
    ]
    html = rep.get(f"{base}/contract.html").text
    assert "<h1>软件订阅合同</h1>" in html and "第一条　合同标的及金额" in html
    assert "人民币叁拾玖万肆仟伍佰玖拾陆元整" in html and "招商银行杭州分行营业部" in html
    changed = rep.patch(f"/api/v1/sales/contract/{contract['id']}", json={"template": "framework_agreement"})
    assert changed.status_code == 200, changed.text
    assert rep.get(base).json()["items"][0]["template"] == "contract_framework.html.j2"
    html = rep.get(f"{base}/contract.html").text
    assert "<h1>框架采购协议</h1>" in html and "不构成甲方的采购承诺" in html
    assert other.get(f"{base}/contract.html").status_code == 404
