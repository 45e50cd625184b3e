"""`formloom worker` processes on PostgreSQL: timers fire exactly once, and a killed worker's job is redone.

These tests start real worker processes (`python -m builder.cli worker …`) against a
schema of their own, the way a deployment runs them, and count the side effects in SQL.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest
from sqlalchemy import Connection, create_engine, text

from builder.cli import main as formloom
from runtime.boot import Runtime, start
from tests.conftest import require_postgres
from tests.runtime.process.timer_pack import item_pack
from tests.support import REPO

pytestmark = pytest.mark.postgres

T = TypeVar("T")
# A worker process takes a few seconds to start, but half a minute on a loaded machine (load
# 10, two cores); waits are long, and end as soon as what they wait for happens.
PATIENCE = 300.0
DONE_LINE = re.compile(r"^worker (\S+): (\d+) job\(s\) done$", re.M)


@dataclass
class Published:
    """The item pack, published into a fresh schema (`url`), and a runtime on it."""

    pack: Path
    url: str
    runtime: Runtime


@pytest.fixture
def published(pg_schema_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Iterator[Published]:
    """The item pack published with `formloom publish` into a fresh schema."""
    require_postgres()
    pack = item_pack(tmp_path / "pack")
    published = formloom(["publish", str(pack), "--db", pg_schema_url, "--author", "test"])
    assert published == 0, capsys.readouterr()
    runtime = start([pack], pg_schema_url, tmp_path / "files")
    yield Published(pack, pg_schema_url, runtime)
    runtime.engine.dispose()


def worker(published: Published, *options: str) -> subprocess.Popen[str]:
    """A `formloom worker` process on the published pack (its output is captured)."""
    command = [sys.executable, "-m", "builder.cli", "worker", str(published.pack), "--db", published.url]
    return subprocess.Popen(
        [*command, *options],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def finish(process: subprocess.Popen[str], timeout: float) -> dict[str, int]:
    """Wait for a worker; answers {name: jobs done} from its last line (and fails on a bad exit)."""
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
        pytest.fail(f"worker still running after {timeout:.0f} s:\n{out}\n{err}")
    assert process.returncode == 0, f"worker exited with {process.returncode}:\n{out}\n{err}"
    return {name: int(count) for name, count in DONE_LINE.findall(out)}


def make_all_due(conn: Connection) -> None:
    conn.execute(text("UPDATE formloom_jobs SET due_at = now() - interval '1 minute'"))


def test_two_workers_fire_5000_timers_exactly_once(published: Published) -> None:
    runtime = published.runtime
    total, chunk = 5000, 1000
    for start_at in range(0, total, chunk):
        runtime.service.create_many(
            "t", "item", [{"title": f"item {n}"} for n in range(start_at, start_at + chunk)]
        )
    with runtime.engine.begin() as conn:
        jobs = conn.execute(text("SELECT kind, status, count(*) FROM formloom_jobs GROUP BY 1, 2")).all()
        assert jobs == [("timer", "pending", total)]
        make_all_due(conn)

    # Both workers wait on a lock of the job table until both are up, then start together:
    # on a loaded machine one process may start seconds after the other.
    names = ("first", "second")
    gate = runtime.engine.connect()
    processes: list[subprocess.Popen[str]] = []
    try:
        gate.begin()
        gate.execute(text("LOCK TABLE formloom_jobs IN EXCLUSIVE MODE"))  # reads pass, claims wait
        gate_pid = gate.execute(text("SELECT pg_backend_pid()")).scalar_one()
        processes = [worker(published, "--until-idle", "--batch", "50", "--name", name) for name in names]
        wait_for(
            lambda: waiting_on(runtime, gate_pid) == len(names),
            PATIENCE,
            "both workers to wait to claim",
            processes,
        )
    finally:
        gate.rollback()
        gate.close()
    done: dict[str, int] = {}
    for process in processes:
        done.update(finish(process, timeout=2 * PATIENCE))

    # Each worker did part of the work, and together they did every job once.
    assert set(done) == set(names), done
    assert all(done[n] > 0 for n in names), done
    assert sum(done.values()) == total
    with runtime.engine.connect() as conn:
        statuses = conn.execute(
            text("SELECT status, attempts, count(*) FROM formloom_jobs GROUP BY 1, 2")
        ).all()
        assert statuses == [("done", 1, total)]
        owners = conn.execute(text("SELECT lease_owner, count(*) FROM formloom_jobs GROUP BY 1"))
        assert {owner: count for owner, count in owners} == done
        # The side effects, counted: every item fired exactly once, with one timer step in its history.
        fired = conn.execute(text("SELECT fired, count(*) FROM t__item GROUP BY 1")).all()
        assert fired == [(1, total)]
        steps = conn.execute(
            text(
                "SELECT n, count(*) FROM (SELECT record_id, count(*) AS n FROM formloom_audit "
                "WHERE form = 'item' AND action = 'timer' GROUP BY record_id) AS per_item GROUP BY n"
            )
        ).all()
        assert steps == [(1, total)]


def test_a_killed_worker_leaves_its_job_to_the_next_one(published: Published) -> None:
    runtime = published.runtime
    item = runtime.service.create("t", "item", {"title": "locked"})
    with runtime.engine.begin() as conn:
        make_all_due(conn)

    # Hold the item's row lock, so the worker blocks inside the job after claiming it.
    locker = create_engine(published.url)
    lock = locker.connect()
    first: subprocess.Popen[str] | None = None
    try:
        lock.begin()
        lock.execute(text("SELECT id FROM t__item WHERE id = :id FOR UPDATE"), {"id": item["id"]})
        lock_pid = lock.execute(text("SELECT pg_backend_pid()")).scalar_one()
        first = worker(published, "--lease", "2", "--name", "doomed", "--poll", "0.2")
        job = wait_for(
            lambda: running_job(runtime, lock_pid),
            timeout=PATIENCE,
            what="the first worker to block inside its job",
            processes=[first],
        )
        assert job["lease_owner"] == "doomed" and job["attempts"] == 1
        first.kill()  # SIGKILL: no clean-up of any kind
        first.communicate(timeout=10)
    finally:
        lock.rollback()  # the killed worker's transaction, still waiting, now gets the row and rolls back
        lock.close()
        locker.dispose()
        if first is not None and first.poll() is None:
            first.kill()

    # The claim outlives the worker until its lease expires; then another worker takes it again.
    with runtime.engine.connect() as conn:
        row = conn.execute(text("SELECT status, lease_owner, lease_expires_at FROM formloom_jobs")).one()
    assert (row.status, row.lease_owner) == ("running", "doomed")
    time.sleep(max(0.0, (row.lease_expires_at - dt.datetime.now(dt.UTC)).total_seconds()) + 0.3)
    done = finish(worker(published, "--until-idle", "--name", "rescuer"), timeout=PATIENCE)
    assert done == {"rescuer": 1}

    with runtime.engine.connect() as conn:
        status, attempts, owner = conn.execute(
            text("SELECT status, attempts, lease_owner FROM formloom_jobs")
        ).one()
        assert (status, attempts, owner) == ("done", 2, "rescuer")
        fired = conn.execute(
            text("SELECT fired FROM t__item WHERE id = :id"), {"id": item["id"]}
        ).scalar_one()
        assert fired == 1
        audit = conn.execute(
            text(
                "SELECT action, count(*) FROM formloom_audit WHERE form = 'item' AND record_id = :id "
                "GROUP BY action ORDER BY action"
            ),
            {"id": item["id"]},
        ).all()
        assert audit == [("create", 1), ("timer", 1), ("update", 1)]


def test_sigterm_lets_a_worker_finish_its_job_and_exit_0(published: Published) -> None:
    runtime = published.runtime
    item = runtime.service.create("t", "item", {"title": "stopping"})
    with runtime.engine.begin() as conn:
        make_all_due(conn)
    locker = create_engine(published.url)
    lock = locker.connect()
    stopping: subprocess.Popen[str] | None = None
    try:
        lock.begin()
        lock.execute(text("SELECT id FROM t__item WHERE id = :id FOR UPDATE"), {"id": item["id"]})
        lock_pid = lock.execute(text("SELECT pg_backend_pid()")).scalar_one()
        stopping = worker(published, "--name", "stopping")
        wait_for(
            lambda: running_job(runtime, lock_pid), PATIENCE, "the worker to be inside its job", [stopping]
        )
        stopping.send_signal(signal.SIGTERM)  # while the job waits for the row
    finally:
        lock.rollback()
        lock.close()
        locker.dispose()
    assert stopping is not None
    assert finish(stopping, timeout=PATIENCE) == {"stopping": 1}  # the job finished, then the worker left
    with runtime.engine.connect() as conn:
        assert conn.execute(text("SELECT status, attempts FROM formloom_jobs")).one() == ("done", 1)
        fired = conn.execute(text("SELECT fired FROM t__item WHERE id = :id"), {"id": item["id"]})
        assert fired.scalar_one() == 1


def waiting_on(runtime: Runtime, pid: int) -> int:
    """How many sessions wait for a lock the session `pid` holds."""
    with runtime.engine.connect() as conn:
        query = text("SELECT count(*) FROM pg_stat_activity WHERE :pid = ANY(pg_blocking_pids(pid))")
        return int(conn.execute(query, {"pid": pid}).scalar_one())


def running_job(runtime: Runtime, lock_pid: int) -> dict[str, object] | None:
    """The job, once it is running and its worker waits for the row lock held by `lock_pid`."""
    with runtime.engine.connect() as conn:
        job = conn.execute(text("SELECT status, lease_owner, attempts FROM formloom_jobs")).mappings().one()
    if job["status"] == "running" and job["lease_owner"] is not None and waiting_on(runtime, lock_pid):
        return dict(job)
    return None


def wait_for(
    check: Callable[[], T | None],
    timeout: float,
    what: str,
    processes: Sequence[subprocess.Popen[str]] = (),
) -> T:
    """Poll `check()` until it answers something truthy; fail at once if one of `processes` ends."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        for process in processes:
            if process.poll() is not None:
                out, err = process.communicate()
                pytest.fail(
                    f"a worker exited with {process.returncode} while waiting for {what}:\n{out}\n{err}"
                )
        time.sleep(0.1)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
