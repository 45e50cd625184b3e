"""A small pack with a lead form and public intakes of every kind, served with a clock the tests move."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from runtime.boot import Runtime, start
from runtime.intake import tokens
from runtime.schema.system import audit
from tests.support import ManualClock, admin_token, write_files, write_pack

T0 = dt.datetime(2026, 5, 11, 9, 0, tzinfo=dt.UTC)
APP = """\
app: t
label: Test
version: 1.0.0
roles:
  - {key: marketing, label: Marketing}
"""
LEAD = """\
form: lead
label: {zh: 线索, en: Lead}
title_field: company
fields:
  - {key: company, type: text, label: {zh: 公司, en: Company}, required: true, max_length: 100}
  - {key: email, type: email, label: {zh: 邮箱, en: E-mail}}
  - {key: phone, type: phone, label: {zh: 电话, en: Phone}}
  - {key: source, type: select, options: [web, fair, sem], required: true}
  - {key: campaign, type: text}
  - {key: notes, type: long_text}
  - {key: wants_demo, type: boolean, default: false}
  - {key: topics, type: multi_select, options: [erp, crm]}
  - {key: possible_duplicate, type: boolean, default: false}
  - {key: score, type: integer}
  - {key: voucher, type: text, unique: true}
  - {key: account, type: link, to: account}
rules:
  - check: "phone != null or email != null"
    message: {zh: 请填写电话或邮箱, en: Give a phone number or an e-mail address}
    fields: [phone, email]
duplicates:
  - [email]
  - [phone]
permissions:
  - {roles: [marketing], can: [create, read, update]}
"""
ACCOUNT = """\
form: account
label: Account
fields:
  - {key: name, type: text}
"""
COMMON = "form: lead\ndefaults: {source: web}\nas_role: marketing\n"
INTAKES = {
    # the everyday one: three a minute per address, a page token two seconds old at least
    "contact": COMMON
    + """fields: [company, email, phone, notes, wants_demo, topics, source, campaign]
hidden: [campaign]
rate: 3/minute
min_seconds: 2
allowed_origins: ["https://www.example.com", "http://localhost:3000"]
thank_you: {zh: 谢谢！, en: Thank you!}
label: {zh: 联系我们, en: Contact us}
""",
    "keeper": COMMON
    + """fields: [company, email, phone, notes, voucher]
rate: 100/minute
on_duplicate: keep
flag: {possible_duplicate: true}
""",
    "merger": COMMON
    + "fields: [company, email, phone, notes, wants_demo]\nrate: 100/minute\non_duplicate: merge\n",
    "dropper": COMMON + "fields: [company, email, phone, notes]\nrate: 100/minute\non_duplicate: drop\n",
    "strict": COMMON
    + "fields: [company, email]\nrequire_token: true\nredirect: https://www.example.com/thanks\n",
    "staffed": "form: lead\ndefaults: {source: fair}\nas_user: web.intake\nfields: [company, email]\n",
    "unstaffed": "form: lead\ndefaults: {source: fair}\nas_user: nobody.here\nfields: [company, email]\n",
}


@dataclass
class Site:
    """The served pack, its clock, an admin client and a client that has not signed in."""

    runtime: Runtime
    clock: ManualClock
    admin: TestClient
    visitor: TestClient

    def advance(self, **delta: float) -> None:
        self.clock.now += dt.timedelta(**delta)

    def leads(self) -> list[dict[str, Any]]:
        page = self.runtime.service.list_page("t", "lead", [("sort", "id")])
        return list(page["items"])

    def token(self, intake: str = "contact", seconds_ago: float = 10) -> str:
        """A page token issued `seconds_ago`."""
        return tokens.issue("t", intake, self.clock.now - dt.timedelta(seconds=seconds_ago))

    def channels(self) -> list[str]:
        with self.runtime.engine.connect() as conn:
            return list(conn.execute(select(audit.c.channel).where(audit.c.form == "lead")).scalars())

    def client(self, address: str) -> TestClient:
        """A visitor from another address."""
        return TestClient(self.runtime.api, client=(address, 50000))


def intake_pack(root: Path) -> Path:
    """The pack folder."""
    pack = write_pack(root, {"lead": LEAD, "account": ACCOUNT})
    (pack / "app.yaml").write_text(APP, encoding="utf-8")
    files = {f"intakes/{key}.yaml": f"intake: {key}\n{body}" for key, body in INTAKES.items()}
    return write_files(pack, files)


def serve_site(db_url: str, tmp_path: Path) -> Site:
    """Serve the pack at T0."""
    clock = ManualClock(T0)
    runtime = start([intake_pack(tmp_path / "pack")], db_url, tmp_path / "files", clock=clock)
    token = admin_token(runtime.engine)
    admin = TestClient(runtime.api, headers={"Authorization": f"Bearer {token}"})
    return Site(runtime, clock, admin, TestClient(runtime.api))
