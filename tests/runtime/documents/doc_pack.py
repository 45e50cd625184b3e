"""A small pack with documents (tests/runtime/documents/): offers to customers, with lines of
products, a margin hidden from reps, a letterhead from a settings form, two templates picked
by the offer's `kind`, a `when`, a document only managers may render, and a `send` step that
keeps the PDF on the offer."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from fastapi.testclient import TestClient

from runtime.boot import Runtime
from runtime.db import write
from runtime.identity.directory import user_id_of
from tests.support import serve, user_token, write_files, write_pack

APP = """\
    app: t
    label: {zh: 测试, en: Test}
    version: '1'
    timezone: Asia/Shanghai
    roles:
      - {key: rep}
      - {key: manager}
    """
FORMS = {
    "company": """\
        form: company
        label: {zh: 公司, en: Company}
        single: true
        title_field: name
        permissions:
          - {roles: [rep, manager], can: [read], scope: all}
        fields:
          - {key: name, type: text, default: 杭州示例科技有限公司}
        """,
    "product": """\
        form: product
        label: {zh: 产品, en: Product}
        title_field: name
        permissions:
          - {roles: [rep, manager], can: [create, read], scope: all}
        fields:
          - {key: name, type: text, required: true}
        """,
    "offer_line": """\
        form: offer_line
        label: {zh: 明细, en: Line}
        child: true
        fields:
          - {key: product, type: link, to: product, required: true}
          - {key: quantity, type: integer, label: {zh: 数量, en: Quantity}}
          - {key: price, type: money, label: {zh: 单价, en: Price}}
          - {key: cost, type: money, hidden_for: [rep]}
        """,
    "offer": """\
        form: offer
        label: {zh: 报价, en: Offer}
        title_field: number
        owner_field: owner
        permissions:
          - {roles: [rep], can: [create, read, update], scope: own}
          - {roles: [manager], can: [create, read, update], scope: all}
        fields:
          - {key: number, type: auto_number, pattern: "OF-{#####}"}
          - {key: customer, type: text, required: true, label: {zh: 客户, en: Customer}}
          - {key: owner, type: user, default: current_user}
          - key: kind
            type: select
            label: {zh: 类型, en: Kind}
            default: standard
            options:
              - {key: standard, label: {zh: 标准, en: Standard}}
              - {key: framework, label: {zh: 框架, en: Framework}}
              - {key: custom, label: {zh: 定制, en: Custom}}
          - {key: status, type: select, options: [draft, sent], default: draft}
          - {key: amount, type: money, label: {zh: 金额, en: Amount}}
          - {key: valid_until, type: date}
          - {key: margin, type: percent, hidden_for: [rep], label: {zh: 毛利率, en: Margin}}
          - {key: notes, type: long_text}
          - {key: lines, type: table, form: offer_line}
          - {key: sent_pdf, type: attachment, read_only: true}
        """,
}
WORKFLOW = """\
    workflow: offer_flow
    form: offer
    field: status
    states: [{key: draft}, {key: sent}]
    transitions:
      - action: send
        from: draft
        to: sent
        effects:
          - document: {document: offer, store_in: sent_pdf}
    """
OFFER_DOCUMENT = """\
    document: offer
    form: offer
    label: {zh: 报价单, en: Offer}
    template: offer.html.j2
    choose_by: kind
    templates:
      framework: framework.html.j2
    when: "customer != 'nobody'"
    """
INTERNAL_DOCUMENT = """\
    document: costing
    form: offer
    label: {zh: 成本核算, en: Costing}
    template: offer.html.j2
    roles: [manager]
    language: en
    """
OFFER_TEMPLATE = """\
    {% extends "formloom/base.html.j2" %}
    {% block content %}
    <h1>{{ document.label }} {{ record.number }}</h1>
    <p class="company">{{ settings.company.name }}</p>
    <p>{{ labels.customer }}: {{ record.customer }}</p>
    <p class="kind">{{ labels.kind }}: {{ record.kind }}</p>
    <p class="amount">{{ record.amount }} / {{ values.amount | chinese_amount }}</p>
    <p class="valid">{{ record.valid_until }}</p>
    <p class="margin">[{{ record.margin }}]</p>
    <table>{% for line in record.lines %}<tr><td>{{ line.product }}</td><td>{{ line.quantity }}</td>
    <td>{{ line.price }}</td><td class="cost">[{{ line.cost }}]</td></tr>{% endfor %}</table>
    {{ values.notes | paragraphs }}
    <img src="file:///etc/hostname" alt="">
    {% endblock %}
    """
FRAMEWORK_TEMPLATE = """\
    {% extends "formloom/base.html.j2" %}
    {% block content %}<h1>框架协议 {{ record.number }}</h1><p>{{ record.customer }}</p>{% endblock %}
    """


def write_doc_pack(root: Path) -> Path:
    """The pack, written under `root`."""
    pack = write_pack(root, FORMS)
    write_files(
        pack,
        {
            "app.yaml": APP,
            "workflows/offer.yaml": WORKFLOW,
            "documents/offer.yaml": OFFER_DOCUMENT,
            "documents/costing.yaml": INTERNAL_DOCUMENT,
            "documents/offer.html.j2": OFFER_TEMPLATE,
            "documents/framework.html.j2": FRAMEWORK_TEMPLATE,
        },
    )
    return pack


OFFER = {
    "customer": "上海华信精密制造有限公司",
    "amount": "12345.60",
    "valid_until": "2026-12-31",
    "margin": "0.42",
    "notes": "第一段\n第二行\n\n<b>第二段</b>",
}


@dataclass
class Served:
    """The pack served on one database, with a client per user."""

    runtime: Runtime
    admin: TestClient
    product: int

    def client(self, username: str, *roles: str) -> TestClient:
        """A client with a token of `username` (created with `roles` when missing)."""
        token = user_token(self.runtime.engine, username, roles)
        return TestClient(self.runtime.api, headers={"Authorization": f"Bearer {token}"})

    def user_id(self, username: str) -> int:
        """The id of a user (made by `client` first)."""
        with write(self.runtime.engine) as conn:
            return user_id_of(conn, username)

    def offer(self, owner: str | None = None, **values: object) -> dict[str, object]:
        """An offer with one line of the Chinese product, made by the admin for `owner`."""
        lines = [{"product": self.product, "quantity": 3, "price": "1200", "cost": "300"}]
        body = {**OFFER, "lines": lines, **values}
        if owner is not None:
            body["owner"] = self.user_id(owner)
        answer = self.admin.post("/api/v1/t/offer", json=body)
        assert answer.status_code == 201, answer.text
        return dict(answer.json())


def served(tmp_path: Path, db_url: str) -> Iterator[Served]:
    """Serve the pack (for a fixture: yields, then disposes of the engine)."""
    runtime, admin = serve(write_doc_pack(tmp_path / "pack"), db_url, tmp_path / "files")
    product = admin.post("/api/v1/t/product", json={"name": "销售云平台用户许可"}).json()["id"]
    yield Served(runtime, admin, product)
    runtime.engine.dispose()
