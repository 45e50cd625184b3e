"""Webhooks (runtime/process/webhooks.py, the worker, the delivery log): sent to a real local
receiver, signed `t=…,v1=…` and verifiable, retried with growing delays after a 500, delivered
once by two workers running together, off where their URL is not configured. Both databases."""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from runtime.identity.actor import SYSTEM
from runtime.process import jobs
from runtime.process.engine import engine_for
from runtime.process.webhooks import signature, verify
from runtime.process.worker import Worker
from runtime.schema.system import audit
from tests.runtime.intake.pack import Site, serve_site
from tests.runtime.process.receiver import Receiver, webhook_receiver
from tests.support import user_token, write_files

SECRET = "whsec-test-1234"
HOOK = """\
automation: lead_hook
form: lead
trigger: created
effects:
  - webhook:
      url_env: TEST_LEAD_HOOK_URL
      secret_env: TEST_LEAD_HOOK_SECRET
      event: lead_created
      fields: [company, email, source, created_at]
"""


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with webhook_receiver() as received:
        yield received


@pytest.fixture
def site(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, receiver: Receiver) -> Iterator[Site]:
    monkeypatch.setenv("TEST_LEAD_HOOK_URL", receiver.url)
    monkeypatch.setenv("TEST_LEAD_HOOK_SECRET", SECRET)
    write_files(tmp_path / "pack", {"automations/hook.yaml": HOOK})
    site = serve_site(db_url, tmp_path)
    yield site
    site.runtime.engine.dispose()


def worker(site: Site, name: str = "w1") -> Worker:
    return Worker(engine_for(site.runtime.service), name)


def hook_jobs(site: Site) -> list[dict[str, object]]:
    with site.runtime.engine.connect() as conn:
        rows = conn.execute(
            select(jobs.table).where(jobs.table.c.kind == "webhook").order_by(jobs.table.c.id)
        )
        return [dict(row) for row in rows.mappings()]


def test_a_new_lead_is_posted_signed_and_the_receiver_can_verify_it(site: Site, receiver: Receiver) -> None:
    site.visitor.post("/api/v1/public/t/contact", json={"company": "云帆", "email": "wf@yunfan.cn"})
    assert receiver.calls == []  # sent by a worker, after the commit
    assert worker(site).run_until_idle().done == 1
    [call] = receiver.calls
    assert call.path == "/hooks/marketing?token=abc"
    assert call.headers["x-formloom-event"] == "lead_created"
    assert call.headers["idempotency-key"] == hook_jobs(site)[0]["key"]
    header = call.headers["x-formloom-signature"]
    assert header.startswith(f"t={int(site.clock.now.timestamp())},v1=")
    assert verify(SECRET, call.body, header, site.clock.now)
    assert not verify(SECRET, call.body.replace("云帆".encode(), "云飞".encode()), header, site.clock.now)
    assert not verify("another secret", call.body, header, site.clock.now)
    assert not verify(SECRET, call.body, header, site.clock.now + dt.timedelta(minutes=6))  # a replay
    body = json.loads(call.body)
    assert (body["event"], body["app"], body["form"]) == ("lead_created", "t", "lead")
    assert set(body["record"]) == {"id", "company", "email", "source", "created_at"}  # only the listed fields
    assert body["record"]["company"] == "云帆" and body["id"] == body["record"]["id"]


def test_the_signature_recipe_is_plain_hmac_over_time_and_body() -> None:
    import hashlib
    import hmac

    body = b'{"event": "lead_created"}'
    expected = hmac.new(b"k", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert signature("k", body, 1700000000) == f"t=1700000000,v1={expected}"


def test_a_failing_receiver_is_retried_later_and_later_with_the_same_key(
    site: Site, receiver: Receiver
) -> None:
    receiver.answers = [500, 503]
    site.runtime.service.create("t", "lead", {"company": "A", "email": "a@a.cn", "source": "web"}, SYSTEM)
    runner = worker(site)
    assert runner.run_once() == 1
    [job] = hook_jobs(site)
    first_delay = job["due_at"] - site.clock.now  # type: ignore[operator]
    assert (job["status"], job["attempts"], job["last_error"]) == (
        "pending",
        1,
        "RuntimeError: webhook answered 500",
    )
    assert runner.run_once() == 0  # not before its time
    site.clock.now += first_delay
    assert runner.run_once() == 1
    [job] = hook_jobs(site)
    second_delay = job["due_at"] - site.clock.now  # type: ignore[operator]
    assert second_delay > first_delay > dt.timedelta(0)  # exponential backoff
    site.clock.now += second_delay
    assert runner.run_once() == 1
    [job] = hook_jobs(site)
    assert (job["status"], job["attempts"]) == ("done", 3)
    assert len(receiver.calls) == 3 and len(set(receiver.keys())) == 1
    signed = [c.headers["x-formloom-signature"].split(",")[0] for c in receiver.calls]
    assert len(set(signed)) == 3  # each attempt signed at its own time

    log = site.admin.get("/api/v1/webhooks/deliveries").json()
    [entry] = log["items"]
    assert log["total"] == 1
    assert (entry["status"], entry["attempts"], entry["event"], entry["record_id"]) == (
        "done",
        3,
        "lead_created",
        1,
    )
    assert entry["target"] == "$TEST_LEAD_HOOK_URL" and entry["next_attempt_at"] is None
    failed_only = site.admin.get("/api/v1/webhooks/deliveries?status=failed").json()
    assert failed_only == {"items": [], "total": 0}


def test_only_admins_read_the_delivery_log(site: Site) -> None:
    assert site.visitor.get("/api/v1/webhooks/deliveries").status_code == 401
    token = user_token(site.runtime.engine, "mia", ("marketing",))
    answer = site.visitor.get("/api/v1/webhooks/deliveries", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 403


def test_two_workers_together_deliver_each_webhook_once(site: Site, receiver: Receiver) -> None:
    for i in range(12):
        site.runtime.service.create(
            "t", "lead", {"company": f"C{i}", "email": f"c{i}@c.cn", "source": "web"}, SYSTEM
        )
    workers = [Worker(engine_for(site.runtime.service), name, batch=3) for name in ("A", "B")]
    start = threading.Barrier(2)

    def run(runner: Worker) -> None:
        start.wait()
        runner.run_until_idle()

    threads = [threading.Thread(target=run, args=(w,)) for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert len(receiver.calls) == 12 and len(set(receiver.keys())) == 12
    assert sum(w.stats.done for w in workers) == 12 and all(w.stats.lost == 0 for w in workers)
    assert {job["status"] for job in hook_jobs(site)} == {"done"}


def test_a_webhook_whose_url_is_not_configured_is_off(
    site: Site, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TEST_LEAD_HOOK_URL")
    lead = site.runtime.service.create(
        "t", "lead", {"company": "A", "email": "a@a.cn", "source": "web"}, SYSTEM
    )
    assert hook_jobs(site) == []
    with site.runtime.engine.connect() as conn:
        actions = list(conn.execute(select(audit.c.action).where(audit.c.record_id == lead["id"])).scalars())
    assert actions == ["create"]  # the automation had nothing to do, and noted nothing


def test_a_named_secret_that_is_missing_fails_instead_of_sending_unsigned(
    site: Site, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    site.runtime.service.create("t", "lead", {"company": "A", "email": "a@a.cn", "source": "web"}, SYSTEM)
    monkeypatch.delenv("TEST_LEAD_HOOK_SECRET")
    worker(site).run_once()
    [job] = hook_jobs(site)
    assert receiver.calls == [] and job["status"] == "pending"
    assert "TEST_LEAD_HOOK_SECRET is not set in the worker" in str(job["last_error"])
