"""The document routes, on both databases: who may render what, and what they get.

`GET …/{id}/documents` lists what the caller may render; `….html` and `….pdf` render for
the caller, through the records service, so a record outside their scope is 404 and the
fields hidden from them are not in the output. A `send` step keeps the PDF on the record.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from io import BytesIO
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pypdf import PdfReader

from tests.runtime.documents.doc_pack import Served, served
from tests.support import web_client

PRODUCT = "销售云平台用户许可"


@pytest.fixture
def pack(tmp_path: Path, db_url: str) -> Iterator[Served]:
    yield from served(tmp_path, db_url)


def pdf_text(content: bytes) -> str:
    assert content.startswith(b"%PDF-")
    return "\n".join(page.extract_text() for page in PdfReader(BytesIO(content)).pages)


def test_the_list_names_what_each_reader_may_render(pack: Served) -> None:
    rep, manager = pack.client("li", "rep"), pack.client("qian", "manager")
    offer = pack.offer(owner="li")
    base = f"/api/v1/t/offer/{offer['id']}/documents"
    answer = rep.get(base)
    assert answer.status_code == 200, answer.text
    assert answer.json()["items"] == [
        {
            "key": "offer",
            "label": {"zh": "报价单", "en": "Offer"},
            "ready": True,
            "reason": None,
            "template": "offer.html.j2",
            "html": f"{base}/offer.html",
            "pdf": f"{base}/offer.pdf",
        }
    ]
    assert [d["key"] for d in manager.get(base).json()["items"]] == [
        "costing",
        "offer",
    ]  # files in name order; costing: managers only


def test_html_is_the_record_as_its_reader_sees_it(pack: Served) -> None:
    rep, manager = pack.client("li", "rep"), pack.client("qian", "manager")
    offer = pack.offer(owner="li")
    url = f"/api/v1/t/offer/{offer['id']}/documents/offer.html"
    answer = rep.get(url)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "text/html; charset=utf-8"
    assert answer.headers["content-disposition"].startswith("inline; ")
    assert (
        "filename*=UTF-8''%E6%8A%A5%E4%BB%B7%E5%8D%95-OF-00001.html" in answer.headers["content-disposition"]
    )
    assert "sandbox" in answer.headers["content-security-policy"]
    html = answer.text
    assert "<h1>报价单 OF-00001</h1>" in html
    assert '<p class="company">杭州示例科技有限公司</p>' in html  # the settings form, read for the reader
    assert "客户: 上海华信精密制造有限公司" in html
    assert "类型: 标准" in html  # an option's label in the document's (the reader's) language
    assert "¥12,345.60 / 壹万贰仟叁佰肆拾伍元陆角" in html
    assert "2026年12月31日" in html
    assert f"<td>{PRODUCT}</td><td>3</td>" in html and "¥1,200.00" in html
    assert '<p class="margin">[]</p>' in html and '<td class="cost">[]</td>' in html  # hidden from reps
    assert "<p>第一段<br>第二行</p><p>&lt;b&gt;第二段&lt;/b&gt;</p>" in html  # values are escaped
    assert "Noto Sans CJK SC" in html  # the default stylesheet and its CJK font stack
    seen = manager.get(url).text
    assert '<p class="margin">[42%]</p>' in seen and '<td class="cost">[¥300.00]</td>' in seen


def test_pdf_has_the_chinese_text_and_takes_its_measure(pack: Served) -> None:
    rep = pack.client("li", "rep")
    offer = pack.offer(owner="li")
    started = time.perf_counter()
    answer = rep.get(f"/api/v1/t/offer/{offer['id']}/documents/offer.pdf", params={"download": "true"})
    took = time.perf_counter() - started
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/pdf"
    assert answer.headers["content-disposition"].startswith('attachment; filename="offer-1.pdf"; filename*=')
    text = pdf_text(answer.content)
    assert PRODUCT in text and "上海华信精密制造有限公司" in text and "壹万贰仟叁佰肆拾伍元陆角" in text
    assert "42%" not in text and "300.00" not in text  # the margin and cost are hidden from reps
    print(f"\nPDF of one offer: {took:.2f} s, {len(answer.content)} bytes")


def test_others_records_are_not_found_and_roles_are_kept(pack: Served) -> None:
    li, wang = pack.client("li", "rep"), pack.client("wang", "rep")
    offer = pack.offer(owner="li")
    base = f"/api/v1/t/offer/{offer['id']}/documents"
    for url in (base, f"{base}/offer.html", f"{base}/offer.pdf"):
        answer = wang.get(url)
        assert answer.status_code == 404, (url, answer.text)
        assert answer.json()["errors"][0]["code"] == "not_found"
    costing = li.get(f"{base}/costing.html")
    assert costing.status_code == 403 and costing.json()["errors"][0]["code"] == "forbidden"
    assert li.get("/api/v1/t/offer/999/documents/offer.html").status_code == 404
    assert li.get(f"{base}/nothing.pdf").status_code == 404
    assert TestClient(pack.runtime.api).get(f"{base}/offer.html").status_code == 401


def test_the_record_chooses_its_template_and_when_decides(pack: Served) -> None:
    manager = pack.client("qian", "manager")
    framework = pack.offer(kind="framework")
    answer = manager.get(f"/api/v1/t/offer/{framework['id']}/documents/offer.html")
    assert "<h1>框架协议 OF-00001</h1>" in answer.text
    custom = pack.offer(kind="custom")  # no template of its own: the document's `template`
    assert (
        "<h1>报价单 OF-00002</h1>" in manager.get(f"/api/v1/t/offer/{custom['id']}/documents/offer.html").text
    )
    nobody = pack.offer(customer="nobody")
    base = f"/api/v1/t/offer/{nobody['id']}/documents"
    listed = {d["key"]: d for d in manager.get(base).json()["items"]}["offer"]
    assert not listed["ready"] and "does not hold" in listed["reason"]
    refused = manager.get(f"{base}/offer.html")
    assert refused.status_code == 409 and refused.json()["errors"][0]["code"] == "unavailable"
    english = manager.get(f"{base}/costing.html").text  # `language: en`, `when` not set
    assert "<h1>Costing OF-00003</h1>" in english and "Kind: Standard" in english
    assert "December 31, 2026" in english


def test_the_send_step_keeps_the_pdf_as_its_taker_saw_it(pack: Served) -> None:
    li, wang, manager = pack.client("li", "rep"), pack.client("wang", "rep"), pack.client("qian", "manager")
    offer = pack.offer(owner="li")
    sent = li.post(f"/api/v1/t/offer/{offer['id']}/transitions/send", json={})
    assert sent.status_code == 200, sent.text
    record = li.get(f"/api/v1/t/offer/{offer['id']}").json()
    kept = record["sent_pdf"]
    assert (record["status"], kept["name"], kept["type"]) == (
        "sent",
        "报价单-OF-00001.pdf",
        "application/pdf",
    )
    content = manager.get(kept["url"])
    assert content.status_code == 200
    text = pdf_text(content.content)
    assert PRODUCT in text and "42%" not in text  # rendered for li, who may not see the margin
    assert wang.get(kept["url"]).status_code == 404


def test_the_routes_are_in_the_spec(pack: Served) -> None:
    paths = pack.admin.get("/openapi.json").json()["paths"]
    listing = paths["/api/v1/t/offer/{record_id}/documents"]["get"]
    assert {"200", "401", "403", "404"} <= set(listing["responses"])
    pdf = paths["/api/v1/t/offer/{record_id}/documents/offer.pdf"]["get"]
    assert "application/pdf" in pdf["responses"]["200"]["content"]
    html = paths["/api/v1/t/offer/{record_id}/documents/costing.html"]["get"]
    assert "text/html" in html["responses"]["200"]["content"]
    assert {"404", "409", "422"} <= set(html["responses"])


def test_the_record_page_links_to_its_documents(pack: Served) -> None:
    web = web_client(pack.runtime, "zhou", ("rep",), language="zh")
    offer = pack.offer(owner="zhou", customer="nobody")
    page = web.get(f"/app/t/offer/{offer['id']}")
    assert page.status_code == 200
    assert 'data-document="offer"' in page.text and "此记录当前不能生成该文档" in page.text
    offer = pack.offer(owner="zhou")
    page = web.get(f"/app/t/offer/{offer['id']}").text
    assert f'href="/api/v1/t/offer/{offer["id"]}/documents/offer.pdf?download=true"' in page
    assert "预览" in page and 'data-document="costing"' not in page
    preview = web.get(f"/api/v1/t/offer/{offer['id']}/documents/offer.html")  # the session is enough
    assert preview.status_code == 200 and "上海华信精密制造有限公司" in preview.text
