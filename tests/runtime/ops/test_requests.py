"""Operator endpoints: probes without sign-in that reveal nothing, metrics behind a token, request ids."""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from runtime.boot import Runtime
from runtime.db import write
from runtime.ops.metrics import TOKEN_ENV
from runtime.ops.requests import JsonLines
from runtime.process import jobs
from tests.support import serve, write_pack

ITEM = """
form: item
label: Item
fields:
  - {key: name, type: text, label: Name, required: true}
"""


@pytest.fixture
def app(db_url: str, tmp_path: Path) -> Iterator[tuple[Runtime, TestClient]]:
    runtime, client = serve(write_pack(tmp_path / "pack", {"item": ITEM}), db_url, tmp_path / "files")
    yield runtime, client
    runtime.engine.dispose()


def test_probes_answer_without_sign_in_and_name_only_their_checks(app: tuple[Runtime, TestClient]) -> None:
    runtime, _ = app
    anonymous = TestClient(runtime.api)
    assert anonymous.get("/healthz").json() == {"status": "alive"}
    ready = anonymous.get("/readyz")
    assert ready.status_code == 200
    checks = {"database": True, "migrations": True, "published": True}
    assert ready.json() == {"ready": True, "checks": checks}
    assert ready.headers["cache-control"] == "no-store"


def test_a_server_that_serves_another_version_than_the_published_one_is_not_ready(
    app: tuple[Runtime, TestClient],
) -> None:
    runtime, _ = app
    runtime.live.hashes["t"] = "a version published before"  # as if this server missed a publish
    runtime.live.checked_at = float("inf")  # and had not looked again yet
    answer = TestClient(runtime.api).get("/readyz")
    assert answer.status_code == 503
    assert answer.json()["checks"]["published"] is False


def test_metrics_are_off_without_a_token_and_refused_without_the_right_one(
    app: tuple[Runtime, TestClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime, client = app
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    assert client.get("/metrics").status_code == 404
    monkeypatch.setenv(TOKEN_ENV, "s3cret-scrape")
    assert TestClient(runtime.api).get("/metrics").status_code == 404
    wrong = TestClient(runtime.api, headers={"Authorization": "Bearer guess"})
    assert wrong.get("/metrics").status_code == 404


def test_metrics_count_requests_by_route_template_and_read_the_job_queue(
    app: tuple[Runtime, TestClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime, client = app
    monkeypatch.setenv(TOKEN_ENV, "s3cret-scrape")
    created = client.post("/api/v1/t/item", json={"name": "one"}).json()
    for _ in range(3):
        client.get(f"/api/v1/t/item/{created['id']}")
    client.get("/api/v1/t/item/999999")
    now = dt.datetime.now(dt.UTC)
    with write(runtime.engine) as conn:
        jobs.enqueue(conn, "email", "ops-test-mail", now - dt.timedelta(seconds=90), {}, now)
    scraper = TestClient(runtime.api, headers={"Authorization": "Bearer s3cret-scrape"})
    answer = scraper.get("/metrics")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain")
    text = answer.text
    one = 'formloom_requests_total{method="GET",route="/api/v1/t/item/{record_id}",status="200"} 3.0'
    assert one in text, "ids are not labels: one series per route template"
    assert 'route="/api/v1/t/item/{record_id}",status="404"} 1.0' in text
    assert 'formloom_jobs{kind="email",state="due"} 1.0' in text
    assert "formloom_email_outbox 1.0" in text
    lag = next(line for line in text.splitlines() if line.startswith("formloom_timer_lag_seconds "))
    assert float(lag.split()[1]) >= 90
    assert "formloom_db_pool_in_use" in text and "formloom_request_seconds_bucket" in text


def test_each_answer_carries_a_request_id_kept_from_the_caller_when_it_is_sane(
    app: tuple[Runtime, TestClient],
) -> None:
    _, client = app
    made = client.get("/api/v1/t/item").headers["x-request-id"]
    assert len(made) == 32 and made != client.get("/api/v1/t/item").headers["x-request-id"]
    kept = client.get("/api/v1/t/item", headers={"X-Request-ID": "lb-7f3a.2"})
    assert kept.headers["x-request-id"] == "lb-7f3a.2"
    forged = client.get("/api/v1/t/item", headers={"X-Request-ID": 'x" injected'}).headers["x-request-id"]
    assert forged != 'x" injected' and len(forged) == 32


def test_the_access_log_is_one_json_line_per_request_with_its_id(
    app: tuple[Runtime, TestClient], caplog: pytest.LogCaptureFixture
) -> None:
    _, client = app
    with caplog.at_level(logging.INFO, logger="formloom.access"):
        answer = client.get("/api/v1/t/item", headers={"X-Request-ID": "req-42"})
    [record] = [r for r in caplog.records if r.name == "formloom.access"]
    line = json.loads(JsonLines().format(record))
    assert answer.status_code == 200
    assert {k: line[k] for k in ("request_id", "method", "route", "status")} == {
        "request_id": "req-42",
        "method": "GET",
        "route": "/api/v1/t/item",
        "status": 200,
    }
    assert line["level"] == "info" and line["ms"] >= 0
