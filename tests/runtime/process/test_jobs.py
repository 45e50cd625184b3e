"""The job queue (runtime/process/jobs.py) and the Worker, in process, with a clock the tests move."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text, update

from runtime.boot import Runtime, start
from runtime.db import write
from runtime.process import jobs
from runtime.process.engine import engine_for
from runtime.process.worker import Worker
from tests.runtime.process.timer_pack import item_pack
from tests.support import ManualClock

T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
LEASE = dt.timedelta(minutes=5)
TIMER_AFTER = dt.timedelta(minutes=1)  # the item pack's timer: `after: "1m"` in state open


@dataclass
class Env:
    runtime: Runtime
    clock: ManualClock

    def advance(self, **delta: float) -> dt.datetime:
        """Move the clock forward."""
        self.clock.now += dt.timedelta(**delta)
        return self.clock.now

    def worker(self, name: str, **options: Any) -> Worker:
        return Worker(engine_for(self.runtime.service), name, lease=LEASE, **options)

    def job_row(self, job_id: int) -> dict[str, Any]:
        with self.runtime.engine.connect() as conn:
            return dict(conn.execute(select(jobs.table).where(jobs.table.c.id == job_id)).mappings().one())

    def item(self, item_id: int) -> dict[str, Any]:
        with self.runtime.engine.connect() as conn:
            row = conn.execute(text("SELECT title, fired FROM t__item WHERE id = :id"), {"id": item_id})
            return dict(row.mappings().one())

    def enqueue(self, key: str, due: dt.datetime, kind: str = "timer", **options: Any) -> None:
        with write(self.runtime.engine) as conn:
            jobs.enqueue(conn, kind, key, due, options.pop("payload", {}), self.clock.now, **options)

    def claim(self, worker: str, limit: int = 10) -> list[jobs.Job]:
        return jobs.claim(self.runtime.engine, worker, self.clock.now, LEASE, limit)


@pytest.fixture
def env(db_url: str, tmp_path: Path) -> Iterator[Env]:
    clock = ManualClock(T0)
    runtime = start([item_pack(tmp_path / "pack")], db_url, tmp_path / "files", clock=clock)
    yield Env(runtime, clock)
    runtime.engine.dispose()


def new_item(env: Env, title: str = "an item") -> tuple[int, int]:
    """Create an item, whose timer job is queued due a minute later; answers (item id, job id)."""
    item = env.runtime.service.create("t", "item", {"title": title})
    with env.runtime.engine.connect() as conn:
        row = conn.execute(select(jobs.table).where(jobs.table.c.record_id == item["id"])).mappings().one()
    assert (row["kind"], row["status"], row["due_at"]) == ("timer", "pending", env.clock.now + TIMER_AFTER)
    return item["id"], row["id"]


def test_only_due_jobs_are_claimed_oldest_first(env: Env) -> None:
    now = env.clock.now
    env.enqueue("later", now + dt.timedelta(minutes=3))
    env.enqueue("due-now", now)
    env.enqueue("overdue", now - dt.timedelta(hours=1))
    env.enqueue("soon", now + dt.timedelta(seconds=30))
    env.enqueue("cancelled", now - dt.timedelta(hours=2))
    with write(env.runtime.engine) as conn:
        assert jobs.cancel(conn, jobs.table.c.key == "cancelled") == 1

    claimed = env.claim("A")
    assert [j.key for j in claimed] == ["overdue", "due-now"]
    assert all(j.attempts == 1 for j in claimed)
    row = env.job_row(claimed[0].id)
    assert (row["status"], row["lease_owner"], row["lease_expires_at"]) == ("running", "A", now + LEASE)

    assert env.claim("A") == []  # nothing more is due yet
    env.advance(seconds=30)
    assert [j.key for j in env.claim("B")] == ["soon"]
    env.advance(minutes=2.5)  # A's leases last until now + 5 minutes
    assert [j.key for j in env.claim("B")] == ["later"]


def test_the_limit_caps_a_claim(env: Env) -> None:
    for n in range(5):
        env.enqueue(f"job-{n}", env.clock.now - dt.timedelta(seconds=5 - n))
    assert [j.key for j in env.claim("A", limit=3)] == ["job-0", "job-1", "job-2"]
    assert [j.key for j in env.claim("B", limit=3)] == ["job-3", "job-4"]


def test_a_claimed_job_is_not_claimed_again_before_its_lease_expires(env: Env) -> None:
    env.enqueue("once", env.clock.now)
    [first] = env.claim("A")
    env.advance(seconds=LEASE.total_seconds() - 1)
    assert env.claim("B") == []
    env.advance(seconds=1)  # the lease ends now: still A's
    assert env.claim("B") == []
    env.advance(seconds=1)
    [again] = env.claim("B")
    assert (again.id, again.attempts) == (first.id, 2)
    row = env.job_row(again.id)
    assert (row["status"], row["lease_owner"], row["lease_expires_at"]) == (
        "running",
        "B",
        env.clock.now + LEASE,
    )


def test_a_worker_runs_a_due_timer_once(env: Env) -> None:
    item_id, job_id = new_item(env)
    worker = env.worker("A")
    assert worker.run_once() == 0  # due in a minute
    env.advance(minutes=1)
    assert worker.run_until_idle().done == 1
    assert env.item(item_id)["fired"] == 1
    row = env.job_row(job_id)
    assert (row["status"], row["attempts"], row["finished_at"]) == ("done", 1, env.clock.now)
    env.advance(hours=1)
    assert worker.run_once() == 0 and env.item(item_id)["fired"] == 1


def test_after_the_lease_expires_the_first_worker_loses_the_job_and_its_effects(env: Env) -> None:
    item_id, _ = new_item(env)
    env.advance(minutes=1)
    a, b = env.worker("A"), env.worker("B")
    [job_a] = jobs.claim(env.runtime.engine, a.name, env.clock.now, a.lease, a.batch)
    env.advance(seconds=LEASE.total_seconds() + 1)  # A stalls past its lease
    [job_b] = jobs.claim(env.runtime.engine, b.name, env.clock.now, b.lease, b.batch)
    assert job_b.id == job_a.id and job_b.attempts == 2

    b.run(job_b)
    assert b.stats.done == 1 and env.item(item_id)["fired"] == 1

    # A comes back and completes in a transaction that also changed the record: nothing of it commits.
    with pytest.raises(jobs.LeaseLost), write(env.runtime.engine) as conn:
        conn.execute(text("UPDATE t__item SET title = 'written by A' WHERE id = :id"), {"id": item_id})
        jobs.complete(conn, job_a, a.name, env.clock.now)
    assert env.item(item_id) == {"title": "an item", "fired": 1}

    # The same through the worker: the timer's effects run again inside A's transaction, then roll back.
    a.run(job_a)
    assert (a.stats.done, a.stats.lost, a.stats.failed) == (0, 1, 0)
    assert env.item(item_id) == {"title": "an item", "fired": 1}
    row = env.job_row(job_a.id)
    assert (row["status"], row["lease_owner"], row["attempts"]) == ("done", "B", 2)
    with env.runtime.engine.connect() as conn:
        steps = conn.execute(
            text("SELECT count(*) FROM formloom_audit WHERE record_id = :id AND action = 'timer'"),
            {"id": item_id},
        ).scalar_one()
    assert steps == 1


def test_the_stale_worker_loses_even_when_it_finishes_first(env: Env) -> None:
    item_id, _ = new_item(env)
    env.advance(minutes=1)
    a, b = env.worker("A"), env.worker("B")
    [job_a] = jobs.claim(env.runtime.engine, a.name, env.clock.now, a.lease, a.batch)
    env.advance(seconds=LEASE.total_seconds() + 1)
    [job_b] = jobs.claim(env.runtime.engine, b.name, env.clock.now, b.lease, b.batch)
    a.run(job_a)
    assert a.stats.lost == 1 and env.item(item_id)["fired"] == 0
    b.run(job_b)
    assert b.stats.done == 1 and env.item(item_id)["fired"] == 1


class FailingEndpoint:
    """A webhook receiver that answers 500 and notes when it was called."""

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self.calls: list[tuple[dt.datetime, str]] = []

    def __call__(self, url: str, **request: Any) -> httpx.Response:
        self.calls.append((self.clock.now, request["headers"]["Idempotency-Key"]))
        return httpx.Response(500)


def test_failures_retry_later_and_later_then_fail_for_good(env: Env) -> None:
    item_id, timer_id = new_item(env)
    with write(env.runtime.engine) as conn:  # only the webhook is due
        conn.execute(update(jobs.table).where(jobs.table.c.id == timer_id).values(status=jobs.CANCELLED))
    payload = {"url": "http://127.0.0.1:9/hook", "event": "test"}
    env.enqueue(
        "hook",
        env.clock.now,
        kind="webhook",
        payload=payload,
        app="t",
        form="item",
        record_id=item_id,
        max_attempts=4,
    )
    [hook] = job_ids(env, "hook")
    endpoint = FailingEndpoint(env.clock)
    worker = env.worker("A", http=endpoint)

    delays: list[dt.timedelta] = []
    for attempt in range(1, 4):
        assert worker.run_once() == 1
        job = env.job_row(hook)
        assert (job["status"], job["attempts"], job["lease_owner"]) == ("pending", attempt, None)
        assert job["last_error"] == "RuntimeError: webhook answered 500"
        delay = job["due_at"] - env.clock.now
        delays.append(delay)
        env.advance(seconds=delay.total_seconds() - 1)
        assert worker.run_once() == 0  # not before its time
        env.advance(seconds=1)
    assert delays == sorted(delays) and len(set(delays)) == 3 and delays[0] > dt.timedelta(0)

    assert worker.run_once() == 1  # the last attempt
    job = env.job_row(hook)
    assert (job["status"], job["attempts"], job["finished_at"]) == ("failed", 4, env.clock.now)
    env.advance(days=30)
    assert worker.run_once() == 0
    assert worker.stats.failed == 4 and worker.stats.done == 0
    assert [key for _, key in endpoint.calls] == ["hook"] * 4  # the same key every time


def job_ids(env: Env, key: str) -> list[int]:
    with env.runtime.engine.connect() as conn:
        return list(conn.execute(select(jobs.table.c.id).where(jobs.table.c.key == key)).scalars())


def test_enqueue_with_an_existing_key_does_nothing(env: Env) -> None:
    now = env.clock.now
    env.enqueue("same", now + dt.timedelta(hours=1), payload={"n": 1})
    env.enqueue("same", now, kind="email", payload={"n": 2}, max_attempts=9)
    [job_id] = job_ids(env, "same")
    row = env.job_row(job_id)
    assert (row["kind"], row["due_at"], row["payload"], row["max_attempts"]) == (
        "timer",
        now + dt.timedelta(hours=1),
        {"n": 1},
        5,
    )
    assert env.claim("A") == []

    # Nor once the job has run: a key is used once.
    env.advance(hours=1)
    [claimed] = env.claim("A")
    with write(env.runtime.engine) as conn:
        jobs.complete(conn, claimed, "A", env.clock.now)
    env.enqueue("same", env.clock.now, payload={"n": 3})
    assert job_ids(env, "same") == [job_id] and env.job_row(job_id)["status"] == "done"
    assert env.claim("A") == []


def test_a_job_whose_worker_died_on_its_last_attempt_fails_instead_of_returning(env: Env) -> None:
    env.enqueue("deadly", env.clock.now, max_attempts=2)
    for _ in range(2):  # each claim is a worker that dies before finishing
        assert [j.key for j in env.claim("doomed")] == ["deadly"]
        env.advance(minutes=6)
    assert env.claim("next") == []
    with env.runtime.engine.connect() as conn:
        row = conn.execute(select(jobs.table).where(jobs.table.c.key == "deadly")).mappings().one()
    assert (row["status"], row["attempts"], row["last_error"]) == (
        "failed",
        2,
        "the lease expired on the last attempt",
    )
