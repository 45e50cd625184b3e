"""`formloom worker`: run due timers, schedules, webhooks and e-mails of the published packs.

Any number of workers can run against PostgreSQL (each claims jobs with SKIP LOCKED);
SQLite is served by a single worker. A worker follows publishes like the server does.
With `--at TIME` it runs, once, the work due up to a later time, on a staging database
published with `--allow-clock` only (builder/scenarios/staging.py).

On PostgreSQL a worker sleeps until it is told (NOTIFY) that a job was queued, or until
the next job falls due, instead of looking every `--poll` seconds; a publish reaches it
the same way. On SIGTERM (or Ctrl-C) it finishes the job it is running, gives back the
jobs it claimed but did not start, and exits 0.
"""

from __future__ import annotations

import argparse
import datetime as dt
import signal
import threading
from typing import Any

from sqlalchemy.engine import make_url

from builder.scenarios import staging
from builder.scenarios.clock import ManualClock
from runtime.boot import NotPublished, Runtime, start
from runtime.db import make_engine, resolve_url, write
from runtime.ops import notify
from runtime.process import automations, jobs
from runtime.process.engine import engine_for
from runtime.process.worker import Worker


def add_command(commands: Any, db_option: Any, error: type[Exception]) -> None:
    """Register `formloom worker`."""
    worker = commands.add_parser("worker", help="run due timers, schedules, webhooks and e-mails")
    worker.add_argument("paths", nargs="+", metavar="PATH")
    db_option(worker)
    worker.add_argument(
        "--name", default=None, help="the worker's name in job leases (default: host:pid:random)"
    )
    worker.add_argument("--lease", type=float, default=300.0, help="seconds a claimed job stays claimed")
    worker.add_argument("--batch", type=int, default=20, help="jobs claimed at once")
    worker.add_argument(
        "--poll",
        type=float,
        default=1.0,
        help="seconds to wait when no job is due (SQLite, or PostgreSQL while its notifications are down)",
    )
    worker.add_argument("--until-idle", action="store_true", help="stop when no job is due")
    worker.add_argument(
        "--log-json",
        action="store_true",
        help="log one JSON line per job (with its request id) on standard error",
    )
    worker.add_argument(
        "--at",
        default=None,
        metavar="TIME",
        help="staging databases published with --allow-clock only: run the work due up to TIME "
        "(2026-12-25T09:00+08:00, a date, or +3d after the database's clock), each job at its "
        "due time, then stop",
    )
    worker.set_defaults(run=lambda args: _run(args, error))


def _run(args: argparse.Namespace, error: type[Exception]) -> int:
    if args.at is not None:
        return _run_at(args, error)
    if args.log_json:
        from runtime.ops.requests import log_as_json

        log_as_json()
    try:
        runtime = start(args.paths, args.db)
    except NotPublished as exc:
        raise error(str(exc)) from exc
    loop = WorkerLoop(runtime, args.name, dt.timedelta(seconds=args.lease), args.batch)
    for each in (signal.SIGTERM, signal.SIGINT):
        signal.signal(each, lambda *_: loop.stop())
    if not args.until_idle:
        loop.listen()
    done = loop.run(args.poll, until_idle=args.until_idle)
    notify.stop_all()
    runtime.engine.dispose()
    print(f"worker {loop.name}: {done} job(s) done")
    return 0


def _run_at(args: argparse.Namespace, error: type[Exception]) -> int:
    """`--at TIME`: the work due up to TIME, on a database that allows moving its clock."""
    shown = make_url(resolve_url(args.db)).render_as_string(hide_password=True)
    engine = make_engine(args.db)
    try:
        begin = staging.check_allowed(engine, shown)
    except staging.ClockRefused as exc:
        raise error(str(exc)) from exc
    finally:
        engine.dispose()
    clock = ManualClock(begin)
    try:
        runtime = start(args.paths, args.db, clock=clock)
    except NotPublished as exc:
        raise error(str(exc)) from exc
    try:
        zone = runtime.apps[0].app.zone()
        worker = Worker(engine_for(runtime.service), args.name, dt.timedelta(seconds=args.lease), args.batch)
        try:
            target = staging.target_of(args.at, begin, zone)
            done = staging.run_at(worker, clock, target, zone)
        except staging.ClockRefused as exc:
            raise error(str(exc)) from exc
    finally:
        runtime.engine.dispose()
    when = target.astimezone(zone).isoformat(timespec="minutes")
    print(f"worker {worker.name}: {done} job(s) done as of {when}; the database's clock is there now")
    return 0


class WorkerLoop:
    """A worker that keeps up with publishes: it rebuilds its engine when the definitions change."""

    IDLE_MAX = 60.0  # seconds a listening worker sleeps at most when nothing is due (a safety net)

    def __init__(self, runtime: Runtime, name: str | None, lease: dt.timedelta, batch: int) -> None:
        self.runtime = runtime
        self.lease = lease
        self.batch = batch
        self.stopped = threading.Event()
        self.wake = threading.Event()  # set by a notification, a reconnect, or stop()
        self.worker = self._worker(name)
        self.name = self.worker.name
        self.service = runtime.live.service
        self.thread: threading.Thread | None = None

    def _worker(self, name: str | None) -> Worker:
        worker = Worker(engine_for(self.runtime.service), name, self.lease, self.batch)
        worker.stopping = self.stopped.is_set
        return worker

    def listen(self) -> None:
        """On PostgreSQL, wake when a job is queued or a publish happens, instead of polling."""
        listener = self.runtime.live.listen()
        if listener is not None:
            listener.on_message(lambda message: self.wake.set())
            listener.on_reconnect(self.wake.set)

    def stop(self) -> None:
        """Finish the running job, give back the claimed ones not started, and leave `run`."""
        self.stopped.set()
        self.wake.set()

    def join(self, timeout: float | None = None) -> None:
        """Wait for a loop started by `start_in_thread` to end."""
        if self.thread is not None:
            self.thread.join(timeout)

    def _current(self) -> Worker:
        live = self.runtime.live
        if not live.pushed() or live.stale:
            live.refresh()  # else a publish's notification has rebuilt live.service already
        if live.service is not self.service:
            done = self.worker.stats
            self.worker = self._worker(self.name)
            self.worker.stats = done
            self.service = live.service
        return self.worker

    def idle_wait(self, poll: float) -> float:
        """How long to sleep with nothing due: until the next job is due when notifications
        wake the worker (at most IDLE_MAX), else `poll`."""
        if not self.runtime.live.pushed():
            return poll
        with self.runtime.engine.connect() as conn:
            due = jobs.next_due(conn)
        if due is None:
            return self.IDLE_MAX
        if due.tzinfo is None:
            due = due.replace(tzinfo=dt.UTC)
        seconds = (due - self.worker.engine.now()).total_seconds()
        return min(self.IDLE_MAX, max(0.0, seconds) + 0.01)

    def run(self, poll: float, stop: threading.Event | None = None, *, until_idle: bool = False) -> int:
        """Work until stopped (or, with `until_idle`, until nothing is due); answers jobs done."""
        if stop is not None:
            self.stopped = stop
            self.worker.stopping = stop.is_set
        while not self.stopped.is_set():
            self.wake.clear()  # a notification from here on interrupts the wait below
            worker = self._current()
            with write(worker.db) as conn:
                automations.ensure_schedules(worker.engine, conn)
            if worker.run_once():
                continue
            if until_idle:
                break
            if not self.stopped.is_set():
                self.wake.wait(self.idle_wait(poll))
        return self.worker.stats.done


def start_in_thread(runtime: Runtime, poll: float = 1.0) -> WorkerLoop:
    """Run a worker beside a server (`formloom serve --worker`); `stop()` it to end it."""
    loop = WorkerLoop(runtime, None, dt.timedelta(minutes=5), 20)
    loop.listen()
    loop.thread = threading.Thread(target=loop.run, args=(poll,), name="formloom-worker", daemon=True)
    loop.thread.start()
    return loop
