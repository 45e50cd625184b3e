"""The request id of a change is kept with its history entries and the jobs it queued, and the
worker's log lines and history entries for those jobs carry it too."""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from runtime.boot import Runtime
from runtime.db import write
from runtime.ops.requests import JsonLines
from runtime.process.engine import engine_for
from runtime.process.worker import Worker
from runtime.schema.system import audit, jobs
from tests.runtime.process.timer_pack import item_pack
from tests.support import serve


@pytest.fixture
def app(db_url: str, tmp_path: Path) -> Iterator[tuple[Runtime, TestClient]]:
    runtime, client = serve(item_pack(tmp_path / "pack"), db_url, tmp_path / "files")
    yield runtime, client
    runtime.engine.dispose()


def test_a_request_id_reaches_history_jobs_and_the_workers_log(
    app: tuple[Runtime, TestClient], caplog: pytest.LogCaptureFixture
) -> None:
    runtime, client = app
    created = client.post("/api/v1/t/item", json={"title": "traced"}, headers={"X-Request-ID": "req-42"})
    assert created.status_code == 201, created.text
    assert created.headers["x-request-id"] == "req-42"
    item = created.json()["id"]
    untraced = client.post("/api/v1/t/item", json={"title": "its own id"}).json()["id"]

    with runtime.engine.connect() as conn:
        entries = conn.execute(select(audit.c.record_id, audit.c.action, audit.c.request_id)).all()
        queued = conn.execute(select(jobs.c.record_id, jobs.c.request_id)).all()
    assert (item, "create", "req-42") in entries
    made_up = {r for i, _, r in entries if i == untraced}
    assert len(made_up) == 1 and None not in made_up and "req-42" not in made_up  # one of its own
    assert dict(queued)[item] == "req-42"  # the workflow's timer, queued by the request

    with write(runtime.engine) as conn:  # the timers fall due
        conn.execute(update(jobs).values(due_at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)))
    with caplog.at_level(logging.INFO, logger="formloom.worker"):
        stats = Worker(engine_for(runtime.service), "w").run_until_idle()
    assert stats.done == 2

    with runtime.engine.connect() as conn:
        by_timer = conn.execute(
            select(audit.c.record_id, audit.c.request_id).where(audit.c.channel == "timer")
        ).all()
    assert by_timer and {r for i, r in by_timer if i == item} == {"req-42"}  # the timer's step and change
    lines = [json.loads(JsonLines().format(r)) for r in caplog.records if r.name == "formloom.worker"]
    done = {line["request_id"]: line for line in lines if line["message"] == "job done"}
    assert done["req-42"]["kind"] == "timer" and isinstance(done["req-42"]["job"], int)
    assert len(done) == 2


def test_a_job_that_fails_logs_its_request_id_and_error(
    app: tuple[Runtime, TestClient], caplog: pytest.LogCaptureFixture
) -> None:
    runtime, client = app
    assert (
        client.post("/api/v1/t/item", json={"title": "x"}, headers={"X-Request-ID": "req-7"}).status_code
        == 201
    )
    with write(runtime.engine) as conn:
        conn.execute(
            update(jobs).values(kind="unknown", due_at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1))
        )
    with caplog.at_level(logging.INFO, logger="formloom.worker"):
        Worker(engine_for(runtime.service), "w").run_once()
    lines = [json.loads(JsonLines().format(r)) for r in caplog.records if r.name == "formloom.worker"]
    assert [(x["message"], x["request_id"], x["level"]) for x in lines] == [
        ("job failed", "req-7", "warning")
    ]
    assert "unknown job kind" in lines[0]["error"]
