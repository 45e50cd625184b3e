"""The `email` effect: e-mail an address a record holds (a customer contact, not a user), in
its language, with option labels and attachments; and `record.labels` in notify messages."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from runtime.boot import Runtime
from runtime.db import write
from runtime.identity.directory import create_user
from runtime.identity.tokens import create_token
from runtime.process.engine import ProcessEngine
from runtime.process.mail import Attachment, MailSettings, send
from runtime.process.worker import Worker
from runtime.schema.system import audit, jobs, users
from tests.runtime.process.smtp import smtp_server
from tests.support import serve, write_files, write_pack

APP = """\
app: t
label: {zh: 测试, en: Test}
version: 1.0.0
"""
PERSON = """\
form: person
label: {zh: 联系人, en: Person}
title_field: name
fields:
  - {key: name, type: text}
  - {key: email, type: email}
  - key: lang
    type: select
    options: [{key: zh, label: {zh: 中文, en: Chinese}}, {key: en, label: {zh: 英文, en: English}}]
"""
ORDER = """\
form: order
label: {zh: 订单, en: Order}
title_field: title
fields:
  - {key: title, type: text}
  - {key: person, type: link, to: person}
  - {key: buyer, type: link, to: person}
  - {key: owner, type: user}
  - {key: doc, type: attachment}
  - key: status
    type: select
    default: open
    options:
      - {key: open, label: {zh: 待处理, en: Open}}
      - {key: shipped, label: {zh: 已发货, en: Shipped}}
  - key: tags
    type: multi_select
    options: [{key: rush, label: {zh: 加急, en: Rush}}, {key: gift, label: {zh: 礼品, en: Gift}}]
"""
# A child row's form holds a path of two links: item → order → person.
ITEM = """\
form: item
label: {zh: 明细, en: Item}
fields:
  - {key: order, type: link, to: order}
  - {key: name, type: text}
"""
WORKFLOW = """\
workflow: order_flow
form: order
field: status
states: [{key: open}, {key: shipped}]
transitions:
  - {action: ship, from: open, to: shipped}
"""
SHIPPED = """\
automation: shipped
form: order
trigger: transitioned
effects:
  - email:
      to:
        - {email_field: person.email, language_field: person.lang}
        - {email_field: buyer.email, language_field: buyer.lang}
      subject:
        zh: "订单 {{ record.title }}：{{ record.labels.status }}"
        en: "Order {{ record.title }}: {{ record.labels.status }}"
      message:
        zh: >-
          {{ recipient.name }}，您好：订单 {{ record.title }}
          {{ record.labels.status }}（{{ record.labels.tags }}）
        en: >-
          Dear {{ recipient.name }}, order {{ record.title }}
          is {{ record.labels.status }} ({{ record.labels.tags }})
      attach: doc
  - notify:
      to: {user_field: owner}
      message:
        zh: "订单 {{ record.title }}：{{ record.labels.status }}"
        en: "Order {{ record.title }}: {{ record.labels.status }}"
"""
ITEM_ADDED = """\
automation: item_added
form: item
trigger: created
effects:
  - email:
      to: {email_field: order.person.email}
      message: "Item {{ record.name }} added"
"""


class Site:
    """The pack served, with a worker whose e-mails are kept instead of sent."""

    def __init__(self, db_url: str, root: Path) -> None:
        pack = write_pack(root / "pack", {"person": PERSON, "order": ORDER, "item": ITEM})
        write_files(
            pack,
            {
                "app.yaml": APP,
                "workflows/order.yaml": WORKFLOW,
                "automations/shipped.yaml": SHIPPED,
                "automations/item_added.yaml": ITEM_ADDED,
            },
        )
        self.runtime: Runtime
        self.runtime, self.admin = serve(pack, db_url, root / "files")
        self.engine.mail = MailSettings(host="outbox.invalid")
        self.sent: list[dict[str, Any]] = []
        self.worker = Worker(self.engine, "test", send_mail=self._keep)
        with write(self.runtime.engine) as conn:
            self.owner_id = create_user(conn, "owner", None, roles=("admin",), language="en")
            self.owner_token = create_token(conn, "owner", "test")

    @property
    def engine(self) -> ProcessEngine:
        hooks = self.runtime.service.hooks
        assert isinstance(hooks, ProcessEngine)
        return hooks

    def _keep(
        self,
        settings: MailSettings,
        to: str,
        subject: str,
        body: str,
        key: str,
        /,
        *,
        attachments: Sequence[Attachment] = (),
    ) -> None:
        self.sent.append({"to": to, "subject": subject, "body": body, "key": key, "files": list(attachments)})

    def create(self, form: str, values: dict[str, Any]) -> int:
        answer = self.admin.post(f"/api/v1/t/{form}", json=values)
        assert answer.status_code == 201, answer.text
        return int(answer.json()["id"])

    def person(self, name: str, email: str | None, lang: str) -> int:
        return self.create("person", {"name": name, "email": email, "lang": lang})

    def ship(self, order: int) -> None:
        answer = self.admin.post(f"/api/v1/t/order/{order}/transitions/ship", json={})
        assert answer.status_code == 200, answer.text

    def deliver(self) -> list[dict[str, Any]]:
        self.worker.run_until_idle()
        sent, self.sent = self.sent, []
        return sorted(sent, key=lambda m: str(m["to"]))


@pytest.fixture
def site(db_url: str, tmp_path: Path) -> Iterator[Site]:
    built = Site(db_url, tmp_path)
    yield built
    built.runtime.engine.dispose()


def test_each_address_gets_the_email_in_its_language_with_option_labels(site: Site) -> None:
    wang = site.person("王磊", "wang@example.cn", "zh")
    anna = site.person("Anna", "anna@example.com", "en")
    order = site.create("order", {"title": "SO-1", "person": wang, "buyer": anna, "tags": ["rush", "gift"]})
    site.ship(order)
    zh_mail, en_mail = sorted(site.deliver(), key=lambda m: m["to"] != "wang@example.cn")
    assert zh_mail["to"] == "wang@example.cn"
    assert zh_mail["subject"] == "订单 SO-1：已发货"
    assert zh_mail["body"] == "王磊，您好：订单 SO-1 已发货（加急, 礼品）"
    assert en_mail["to"] == "anna@example.com"
    assert en_mail["subject"] == "Order SO-1: Shipped"
    assert en_mail["body"] == "Dear Anna, order SO-1 is Shipped (Rush, Gift)"
    assert zh_mail["files"] == en_mail["files"] == []
    # each e-mail is noted in the record's history
    with site.runtime.engine.connect() as conn:
        stmt = select(audit.c.changes).where(audit.c.action == "email", audit.c.record_id == order)
        notes = [dict(row) for row in conn.execute(stmt).scalars()]
    assert sorted(n["to"] for n in notes) == ["anna@example.com", "wang@example.cn"]
    assert {n["attachments"] for n in notes} == {0}


def test_an_empty_link_or_address_sends_nothing_and_one_address_gets_one_email(site: Site) -> None:
    nobody = site.person("Nobody", None, "en")
    twice = site.person("Twice", "twice@example.com", "en")
    site.ship(site.create("order", {"title": "SO-2", "person": nobody}))
    assert site.deliver() == []
    site.ship(site.create("order", {"title": "SO-3", "person": twice, "buyer": twice}))
    assert [m["to"] for m in site.deliver()] == ["twice@example.com"]


def test_a_language_that_is_not_zh_or_en_and_no_language_field_give_chinese(site: Site) -> None:
    person = site.person("Li", "li@example.cn", "zh")
    item = site.create("order", {"title": "SO-4", "person": person})
    site.create("item", {"order": item, "name": "齿轮"})
    (mail,) = site.deliver()
    # a path of two links (item → order → person); the message was written in one language
    assert (mail["to"], mail["subject"], mail["body"]) == (
        "li@example.cn",
        "Item 齿轮 added",
        "Item 齿轮 added",
    )


def test_the_files_of_attachment_fields_go_with_the_email(site: Site) -> None:
    upload = site.admin.post(
        "/api/v1/files", files={"file": ("quote.pdf", b"%PDF-1.4 quote", "application/pdf")}
    )
    assert upload.status_code in (200, 201), upload.text
    person = site.person("Anna", "anna@example.com", "en")
    order = site.create("order", {"title": "SO-5", "person": person, "doc": upload.json()["id"]})
    site.ship(order)
    (mail,) = site.deliver()
    assert mail["files"] == [("quote.pdf", "application/pdf", b"%PDF-1.4 quote")]
    with site.runtime.engine.connect() as conn:
        (payload,) = conn.execute(select(jobs.c.payload).where(jobs.c.kind == "email")).scalars()
    assert (
        payload["to"] == "anna@example.com" and len(payload["attachments"]) == 1
    )  # the file named, not held


def test_without_smtp_settings_nothing_is_queued(site: Site) -> None:
    site.engine.mail = None
    person = site.person("Anna", "anna@example.com", "en")
    site.ship(site.create("order", {"title": "SO-6", "person": person}))
    with site.runtime.engine.connect() as conn:
        assert conn.execute(select(jobs.c.id).where(jobs.c.kind == "email")).all() == []


def test_notify_messages_show_option_labels_in_the_readers_language(site: Site) -> None:
    owner = TestClient(site.runtime.api, headers={"Authorization": f"Bearer {site.owner_token}"})
    order = site.create("order", {"title": "SO-7", "owner": site.owner_id})
    site.ship(order)
    (item,) = owner.get("/api/v1/notifications").json()["items"]
    assert item["message"] == "Order SO-7: Shipped"
    # the same notification, read after switching to Chinese, follows the language
    with write(site.runtime.engine) as conn:
        conn.execute(update(users).where(users.c.id == site.owner_id).values(language="zh"))
    (item,) = owner.get("/api/v1/notifications").json()["items"]
    assert item["message"] == "订单 SO-7：已发货"


def test_send_attaches_files_as_mime_parts() -> None:
    with smtp_server() as (inbox, port):
        settings = MailSettings(host="127.0.0.1", port=port, sender="crm@example.com", timeout=5)
        send(
            settings,
            "wang@example.cn",
            "报价单 QT-1",
            "附件是报价单",
            "email:record:1",
            attachments=[("报价单-QT-1.pdf", "application/pdf", b"%PDF-1.4 x")],
        )
    message = inbox.messages[0].message
    parts = list(message.iter_attachments())
    assert [p.get_filename() for p in parts] == ["报价单-QT-1.pdf"]
    assert parts[0].get_content_type() == "application/pdf"
    assert parts[0].get_content() == b"%PDF-1.4 x"
    body = message.get_body(preferencelist=("plain",))
    assert body is not None and body.get_content().strip() == "附件是报价单"
