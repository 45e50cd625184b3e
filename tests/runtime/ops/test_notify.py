"""Push, not poll, on PostgreSQL: a publish and a queued job reach listening processes by NOTIFY.

The servers and workers here run in this process (a listener thread of its own connection);
tests/builder/test_serve_processes.py runs them as separate processes.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event, text

from builder import worker_command
from builder.publishing.publish import publish
from runtime import live
from runtime.boot import Runtime, start
from runtime.db import write
from runtime.loading.loader import load_pack
from runtime.ops import notify
from runtime.process import jobs
from tests.runtime.process.timer_pack import ITEM, item_pack
from tests.support import admin_token, write_pack

pytestmark = pytest.mark.postgres
T = TypeVar("T")
PATIENCE = 20.0  # the longest any wait here may take on a loaded machine; each ends when its event happens


def wait_for(check: Callable[[], T], what: str, timeout: float = PATIENCE) -> T:
    """Poll `check` until it answers something true; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            pytest.fail(f"waited {timeout:.0f} s for {what}")
        time.sleep(0.01)


@contextmanager
def every_statement(engine: Engine) -> Iterator[list[str]]:
    """Every SQL statement `engine` runs inside the block, the version check's included."""
    statements: list[str] = []

    def record(*args: object) -> None:
        statements.append(str(args[2]))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


@pytest.fixture
def runtime(pg_schema_url: str, tmp_path: Path) -> Iterator[Runtime]:
    """The item pack on a fresh schema, its server listening for notifications."""
    runtime = start([item_pack(tmp_path / "v1")], pg_schema_url, tmp_path / "files")
    assert runtime.live.listen() is not None
    yield runtime
    notify.stop_all()
    runtime.engine.dispose()


def publish_body_field(runtime: Runtime, tmp_path: Path) -> None:
    changed = ITEM + "  - {key: body, type: long_text}\n"
    publish(runtime.engine, load_pack(write_pack(tmp_path / "v2", {"item": changed})), backups=tmp_path / "b")


def serves_body(runtime: Runtime) -> bool:
    return "body" in runtime.live.service.apps["t"].forms["item"].fields


def test_a_publish_reaches_a_listening_server_without_any_request(runtime: Runtime, tmp_path: Path) -> None:
    assert not serves_body(runtime)
    started = time.monotonic()
    publish_body_field(runtime, tmp_path)
    wait_for(lambda: serves_body(runtime), "the publish to be followed")
    assert time.monotonic() - started < 5.0  # in practice a few milliseconds after the commit


def test_no_request_pays_a_query_for_the_version_check_while_listening(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = TestClient(runtime.api, headers={"Authorization": f"Bearer {admin_token(runtime.engine)}"})
    monkeypatch.setattr(live, "CHECK_EVERY", 0.0)  # polling would look on every request
    with every_statement(runtime.engine) as statements:
        for _ in range(3):
            assert client.get("/api/v1/t/item").status_code == 200
    assert statements and not [s for s in statements if "formloom_apps" in s]


def test_a_publish_missed_while_the_connection_was_down_is_followed_on_reconnect(
    runtime: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    listener = runtime.live.listener
    assert listener is not None and listener.connections == 1
    with monkeypatch.context() as quiet:
        quiet.setattr(notify, "notify", lambda conn, message: None)  # the publish's NOTIFY is lost
        publish_body_field(runtime, tmp_path)
    assert not serves_body(runtime)
    listener.drop()  # the network fails; the listener connects again and looks
    wait_for(lambda: listener.connections == 2 and listener.listening.is_set(), "the listener to reconnect")
    wait_for(lambda: serves_body(runtime), "the missed publish to be followed")


def test_while_the_listener_is_down_requests_fall_back_to_the_version_check(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    listener = runtime.live.listener
    assert listener is not None and runtime.live.pushed()
    listener.stop()
    assert not runtime.live.pushed()
    monkeypatch.setattr(live, "CHECK_EVERY", 0.0)
    client = TestClient(runtime.api, headers={"Authorization": f"Bearer {admin_token(runtime.engine)}"})
    with every_statement(runtime.engine) as statements:
        assert client.get("/api/v1/t/item").status_code == 200
    assert [s for s in statements if "formloom_apps" in s]


def test_queueing_a_job_notifies_once_per_transaction(runtime: Runtime) -> None:
    heard: list[str] = []
    listener = runtime.live.listener
    assert listener is not None
    listener.on_message(heard.append)
    now = dt.datetime.now(dt.UTC)
    with write(runtime.engine) as conn:
        for n in range(3):
            jobs.enqueue(conn, "sweep", f"k{n}", now, {}, now)
    with write(runtime.engine) as conn:  # a later message: everything before it has arrived when it does
        conn.execute(text("SELECT pg_notify(left('formloom_' || current_schema(), 63), 'end')"))
    wait_for(lambda: "end" in heard, "the closing message")
    assert heard == [notify.JOB, "end"]  # one message for the three jobs of one transaction


def running_loop(runtime: Runtime) -> Iterator[worker_command.WorkerLoop]:
    loop = worker_command.WorkerLoop(runtime, "in-thread", dt.timedelta(minutes=5), 20)
    loop.listen()
    thread = threading.Thread(target=loop.run, args=(30.0,), daemon=True)  # a 30 s poll, were it polling
    thread.start()
    try:
        yield loop
    finally:
        loop.stop()
        thread.join(10)
        assert not thread.is_alive()


@pytest.fixture
def worker_loop(runtime: Runtime) -> Iterator[worker_command.WorkerLoop]:
    yield from running_loop(runtime)


def fired(runtime: Runtime, record_id: int) -> bool:
    with runtime.engine.connect() as conn:
        value = conn.execute(text("SELECT fired FROM t__item WHERE id = :id"), {"id": record_id}).scalar_one()
    return bool(value == 1)


def test_a_worker_wakes_when_a_job_is_queued_instead_of_sleeping_its_poll(
    runtime: Runtime, worker_loop: worker_command.WorkerLoop
) -> None:
    item = runtime.service.create("t", "item", {"title": "soon"})  # its timer is due in a minute
    wait_for(lambda: _idle(worker_loop), "the worker to go idle")
    started = time.monotonic()
    with write(runtime.engine) as conn:  # as a job queued due now: its row and its NOTIFY commit together
        conn.execute(text("UPDATE formloom_jobs SET due_at = now() - interval '1 second'"))
        notify.notify(conn, notify.JOB)
    wait_for(lambda: fired(runtime, item["id"]), "the timer to fire")
    assert time.monotonic() - started < 5.0  # well under the 30 s poll; tens of milliseconds in practice


def test_a_worker_sleeps_until_the_next_job_is_due(
    runtime: Runtime, worker_loop: worker_command.WorkerLoop
) -> None:
    item = runtime.service.create("t", "item", {"title": "later"})
    with write(runtime.engine) as conn:
        conn.execute(text("UPDATE formloom_jobs SET due_at = clock_timestamp() + interval '1 second'"))
        notify.notify(conn, notify.JOB)
    started = time.monotonic()
    wait_for(lambda: fired(runtime, item["id"]), "the timer to fire when due")
    took = time.monotonic() - started
    assert 0.5 < took < 6.0, took


def _idle(loop: worker_command.WorkerLoop) -> bool:
    return not loop.wake.is_set()
