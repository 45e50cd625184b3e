"""`formloom worker`: run due timers, schedules, webhooks and e-mails of the published packs.

Any number of workers can run against PostgreSQL (each claims jobs with SKIP LOCKED);
SQLite is served by a single worker. A worker follows publishes like the server does.
With `--at TIME` it runs, once, the work due up to a later time, on a staging database
published with `--allow-clock` only (builder/scenarios/staging.py).
"""

from __future__ import annotations

import argparse
import datetime as dt
import signal
import threading
import time
from typing import Any

from sqlalchemy.engine import make_url

from builder.scenarios import staging
from builder.scenarios.clock import ManualClock
from runtime.boot import NotPublished, Runtime, start
from runtime.db import make_engine, resolve_url, write
from runtime.process import automations
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
    worker.add_argument("--poll", type=float, default=1.0, help="seconds to wait when no job is due")
    worker.add_argument("--until-idle", action="store_true", help="stop when no job is due")
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
    try:
        runtime = start(args.paths, args.db)
    except NotPublished as exc:
        raise error(str(exc)) from exc
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    loop = WorkerLoop(runtime, args.name, dt.timedelta(seconds=args.lease), args.batch)
    done = loop.run(args.poll, stop, until_idle=args.until_idle)
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

    def __init__(self, runtime: Runtime, name: str | None, lease: dt.timedelta, batch: int) -> None:
        self.runtime = runtime
        self.lease = lease
        self.batch = batch
        self.worker = Worker(engine_for(runtime.service), name, lease, batch)
        self.name = self.worker.name

    def _current(self) -> Worker:
        if self.runtime.live.refresh():
            done = self.worker.stats
            self.worker = Worker(engine_for(self.runtime.service), self.name, self.lease, self.batch)
            self.worker.stats = done
        return self.worker

    def run(self, poll: float, stop: threading.Event, *, until_idle: bool = False) -> int:
        """Work until `stop` is set (or, with `until_idle`, until nothing is due); answers jobs done."""
        while not stop.is_set():
            worker = self._current()
            with write(worker.db) as conn:
                automations.ensure_schedules(worker.engine, conn)
            if worker.run_once():
                continue
            if until_idle:
                break
            stop.wait(poll)
        return self.worker.stats.done


def start_in_thread(runtime: Runtime, poll: float = 1.0) -> threading.Event:
    """Run a worker beside a server (`formloom serve --worker`); set the event to stop it."""
    stop = threading.Event()
    loop = WorkerLoop(runtime, None, dt.timedelta(minutes=5), 20)
    thread = threading.Thread(target=loop.run, args=(poll, stop), name="formloom-worker", daemon=True)
    thread.start()
    time.sleep(0)
    return stop
