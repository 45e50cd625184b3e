"""Moving time: a clock set by hand, and a worker that keeps up with it.

When the clock moves from one time to a later one, the jobs due on the way run at their
own due times, in order — as a worker that never fell behind would have run them — so a
timer's effects, the notifications it sends and the times it records are those of the
moment it was due, and a job queued by another (the next run of a schedule, a reminder
after a transition) runs too when it falls due before the end.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Engine, func, select

from runtime.db import write
from runtime.process import automations, jobs
from runtime.process.worker import Worker

MAX_STOPS = 100_000  # stops on the way: far more than any scenario needs, a guard against loops


class ManualClock:
    """A clock that stands still until it is moved: pass it where a clock is injected."""

    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


def next_due(engine: Engine) -> dt.datetime | None:
    """When the next pending job is due (None when none is pending)."""
    with engine.connect() as conn:
        due = conn.execute(
            select(func.min(jobs.table.c.due_at)).where(jobs.table.c.status == jobs.PENDING)
        ).scalar()
    if due is not None and due.tzinfo is None:
        due = due.replace(tzinfo=dt.UTC)
    return due


def run_due(worker: Worker) -> int:
    """Queue the scheduled automations' next runs, then run every job due now; answers jobs done."""
    with write(worker.db) as conn:
        automations.ensure_schedules(worker.engine, conn)
    before = worker.stats.done
    worker.run_until_idle()
    return worker.stats.done - before


def move_to(worker: Worker, clock: ManualClock, target: dt.datetime) -> int:
    """Move `clock` forward to `target`, stopping at each job's due time on the way to run
    what is due; answers the jobs done. The clock never goes back."""
    done = run_due(worker)
    for _ in range(MAX_STOPS):
        due = next_due(worker.db)
        if due is None or due > target:
            break
        clock.now = max(clock.now, due)
        done += run_due(worker)
    else:  # pragma: no cover - a job that keeps queueing itself at the same time
        raise RuntimeError(f"jobs keep falling due before {target.isoformat()}: stopped")
    clock.now = max(clock.now, target)
    return done + run_due(worker)
