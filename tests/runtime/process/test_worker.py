"""A worker asked to stop finishes its running job and gives back the claimed ones it did not start."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from runtime.boot import Runtime, start
from runtime.db import write
from runtime.process import jobs
from runtime.process.engine import engine_for
from runtime.process.worker import Worker
from tests.runtime.process.timer_pack import item_pack


@pytest.fixture
def runtime(db_url: str, tmp_path: Path) -> Iterator[Runtime]:
    runtime = start([item_pack(tmp_path / "pack")], db_url, tmp_path / "files")
    yield runtime
    runtime.engine.dispose()


class Answer:
    status_code = 200


def test_a_stopping_worker_finishes_its_job_and_releases_the_rest(runtime: Runtime) -> None:
    now = dt.datetime.now(dt.UTC)
    with write(runtime.engine) as conn:
        for n in range(3):
            jobs.enqueue(
                conn, "webhook", f"hook-{n}", now - dt.timedelta(seconds=3 - n), {"url": "http://x"}, now
            )
    sent: list[str] = []
    stopping = False

    def post(url: str, **options: Any) -> Answer:
        nonlocal stopping
        sent.append(options["headers"]["Idempotency-Key"])
        stopping = True  # SIGTERM arrives while the first webhook is being sent
        return Answer()

    worker = Worker(engine_for(runtime.service), "w", http=post)
    worker.stopping = lambda: stopping
    assert worker.run_once() == 3
    assert sent == ["hook-0"] and worker.stats.done == 1
    with runtime.engine.connect() as conn:
        rows = conn.execute(
            select(
                jobs.table.c.key, jobs.table.c.status, jobs.table.c.attempts, jobs.table.c.lease_owner
            ).order_by(jobs.table.c.key)
        ).all()
    assert [tuple(r) for r in rows] == [
        ("hook-0", "done", 1, "w"),
        ("hook-1", "pending", 0, None),  # given back as if never claimed: another worker takes it now
        ("hook-2", "pending", 0, None),
    ]
    stopping = False
    again = Worker(engine_for(runtime.service), "next", http=post)
    assert again.run_until_idle().done == 2
    assert sent == ["hook-0", "hook-1", "hook-2"]


def test_next_due_is_the_earliest_pending_due_time_or_lease_expiry(runtime: Runtime) -> None:
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    with runtime.engine.connect() as conn:
        assert jobs.next_due(conn) is None
    with write(runtime.engine) as conn:
        jobs.enqueue(conn, "sweep", "later", now + dt.timedelta(hours=2), {}, now)
        jobs.enqueue(conn, "sweep", "soon", now + dt.timedelta(hours=1), {}, now)
    with runtime.engine.connect() as conn:
        assert jobs.next_due(conn) == now + dt.timedelta(hours=1)
    claimed = jobs.claim(runtime.engine, "w", now + dt.timedelta(hours=1), dt.timedelta(minutes=5), 1)
    assert [j.key for j in claimed] == ["soon"]
    with runtime.engine.connect() as conn:
        assert jobs.next_due(conn) == now + dt.timedelta(hours=1, minutes=5)  # the lease runs out first
