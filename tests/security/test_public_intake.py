"""Threats to the sales pack's public web-to-lead form and its lead webhook (docs/security.md,
threats and defences): flooding, probing who is known, setting staff-only fields, other sites'
browsers, forged or replayed webhooks. Both databases."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from httpx import Response

from runtime.boot import Runtime, start
from runtime.identity.actor import SYSTEM
from runtime.process.engine import engine_for
from runtime.process.webhooks import verify
from runtime.process.worker import Worker
from tests.runtime.process.receiver import Receiver, webhook_receiver
from tests.support import SALES

URL = "/api/v1/public/sales/web_lead"
SECRET = "marketing-tool-secret"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with webhook_receiver() as received:
        yield received


@pytest.fixture
def sales(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, receiver: Receiver
) -> Iterator[Runtime]:
    monkeypatch.setenv("FORMLOOM_SALES_LEAD_WEBHOOK_URL", receiver.url)
    monkeypatch.setenv("FORMLOOM_SALES_LEAD_WEBHOOK_SECRET", SECRET)
    runtime = start([SALES], db_url, tmp_path / "files")
    yield runtime
    runtime.engine.dispose()


def leads(runtime: Runtime) -> list[dict[str, object]]:
    return list(runtime.service.list_page("sales", "lead", [("sort", "id"), ("limit", "500")])["items"])


def lead(i: int) -> dict[str, str]:
    return {"company": f"公司{i}", "contact_name": f"联系人{i}", "email": f"p{i}@example.cn"}


def test_a_flood_from_one_address_stores_only_the_rate(sales: Runtime) -> None:
    def post(i: int) -> int:
        with TestClient(sales.api, client=("203.0.113.50", 1000 + i)) as client:
            return client.post(URL, json=lead(i)).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        codes = list(pool.map(post, range(40)))
    assert codes.count(202) == 5 and codes.count(429) == 35  # the pack's rate: 5/minute
    assert len(leads(sales)) == 5


def test_the_answer_never_tells_whether_someone_is_known(sales: Runtime) -> None:
    known = sales.service.create(
        "sales",
        "lead",
        {"company": "云帆", "contact_name": "王芳", "email": "wf@yunfan.cn", "source": "webinar"},
        SYSTEM,
    )
    client = TestClient(sales.api)
    answers: list[Response] = [
        client.post(
            URL, json={"company": "云帆科技", "contact_name": "王芳", "email": "WF@yunfan.cn", "title": "CTO"}
        ),
        client.post(URL, json={"company": "新公司", "contact_name": "李雷", "email": "new@example.cn"}),
        client.post(URL, json={"company": "Bot", "contact_name": "Bot", "email": "b@b.cn", "homepage": "x"}),
    ]
    shown = {(a.status_code, a.content, a.headers["content-type"]) for a in answers}
    assert len(shown) == 1
    stored = leads(sales)
    assert [x["email"] for x in stored] == ["wf@yunfan.cn", "new@example.cn"]
    assert stored[0]["id"] == known["id"] and stored[0]["title"] == "CTO"  # merged: an empty field filled
    assert stored[0]["company"] == "云帆" and stored[0]["source"] == "webinar"  # nothing overwritten


def test_staff_only_fields_cannot_be_set_from_outside(sales: Runtime) -> None:
    client = TestClient(sales.api)
    for key, value in (("owner", 1), ("status", "sql"), ("score", 100), ("account", 1), ("budget", "9")):
        answer = client.post(URL, json={**lead(1), key: value})
        assert answer.status_code == 422, key
        assert [(p["field"], p["code"]) for p in answer.json()["errors"]] == [(key, "unknown_field")]
    assert leads(sales) == []


def test_other_sites_browsers_may_not_post(sales: Runtime) -> None:
    client = TestClient(sales.api)
    assert client.post(URL, json=lead(1), headers={"Origin": "https://attacker.example"}).status_code == 403
    page = client.post("/public/sales/web_lead", data=lead(1), headers={"Origin": "https://attacker.example"})
    assert page.status_code == 403 and leads(sales) == []
    assert client.get("/public/sales/web_lead").headers["X-Frame-Options"] == "DENY"  # no origins allowed


def test_the_lead_webhook_cannot_be_forged_or_replayed(
    sales: Runtime, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    TestClient(sales.api).post(URL, json=lead(1))
    Worker(engine_for(sales.service), "w").run_until_idle()
    [call] = receiver.calls
    now = dt.datetime.now(dt.UTC)
    header = call.headers["x-formloom-signature"]
    assert verify(SECRET, call.body, header, now)
    body = json.loads(call.body)
    assert body["event"] == "lead_created" and body["record"]["email"] == "p1@example.cn"
    assert "budget" not in body["record"] and "owner" not in body["record"]  # only what marketing needs
    forged = call.body.replace(b"p1@example.cn", b"evil@example.cn")
    assert not verify(SECRET, forged, header, now)
    assert not verify(SECRET, call.body, header, now + dt.timedelta(hours=1))
    monkeypatch.delenv("FORMLOOM_SALES_LEAD_WEBHOOK_SECRET")  # never sent unsigned
    TestClient(sales.api).post(URL, json=lead(2))
    Worker(engine_for(sales.service), "w2").run_once()
    assert len(receiver.calls) == 1
