"""The job queue: timers, webhooks, e-mails and schedules are rows with a due time and a lease.

A worker claims due jobs in one short transaction: on PostgreSQL with
`SELECT … FOR UPDATE SKIP LOCKED`, so any number of workers never claim the same job;
on SQLite the write lock taken at BEGIN does the same for the single worker. A claim
writes the worker's name and a lease expiry. The job then runs in its own
transaction, which also marks it done — but only while the lease is still this
worker's. A worker that dies leaves a running job whose lease expires; another worker
claims it again, and since nothing of the first attempt committed, its effects happen
once. Failures are retried with a growing delay, up to `max_attempts`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, and_, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from runtime.db import write
from runtime.ops import notify
from runtime.ops.request_id import REQUEST_ID
from runtime.schema.system import jobs

table = jobs  # the jobs table, for callers that filter on its columns

PENDING, RUNNING, DONE, FAILED, CANCELLED = "pending", "running", "done", "failed", "cancelled"


class LeaseLost(Exception):
    """The job's lease passed to another worker before this one finished."""


@dataclass
class Job:
    """A claimed job."""

    id: int
    kind: str
    key: str
    app: str | None
    form: str | None
    record_id: int | None
    instance_id: int | None
    payload: dict[str, Any]
    due_at: dt.datetime
    attempts: int
    max_attempts: int
    request_id: str | None = None


def enqueue(
    conn: Connection,
    kind: str,
    key: str,
    due_at: dt.datetime,
    payload: dict[str, Any],
    now: dt.datetime,
    *,
    app: str | None = None,
    form: str | None = None,
    record_id: int | None = None,
    instance_id: int | None = None,
    max_attempts: int = 5,
) -> None:
    """Add a job unless one with the same key exists (keys make scheduling idempotent).

    A cancelled job with the key is queued again with the new time and payload. The job
    keeps the id of the request that caused it (`X-Request-ID`, or the request id of the
    job that queued it); on PostgreSQL the transaction announces new work to the workers.
    """
    values = dict(
        kind=kind,
        key=fitted_key(key),
        app=app,
        form=form,
        record_id=record_id,
        instance_id=instance_id,
        payload=payload,
        due_at=due_at,
        status=PENDING,
        attempts=0,
        max_attempts=max_attempts,
        created_at=now,
        request_id=REQUEST_ID.get(),
    )
    builder = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    stmt = builder(jobs).values(**values)
    revived = {
        "status": PENDING,
        "due_at": due_at,
        "payload": payload,
        "attempts": 0,
        "last_error": None,
        "request_id": values["request_id"],
    }
    # the same key again: a cancelled job comes back (a date moved back), a live or done one stays
    conn.execute(
        stmt.on_conflict_do_update(index_elements=["key"], set_=revived, where=jobs.c.status == CANCELLED)
    )
    notify.notify(conn, notify.JOB)


def fitted_key(key: str) -> str:
    """The key itself, or for a long one its start and a digest of the whole (200 characters at most)."""
    if len(key) <= 200:
        return key
    return f"{key[:130]}~{hashlib.sha256(key.encode()).hexdigest()}"


def cancel(conn: Connection, *conditions: Any) -> int:
    """Cancel pending jobs that meet the conditions; answers how many."""
    stmt = update(jobs).where(jobs.c.status == PENDING, *conditions).values(status=CANCELLED)
    return int(conn.execute(stmt).rowcount)


def claimable(now: dt.datetime) -> Any:
    """Due pending jobs, and running jobs whose lease has expired."""
    return or_(
        and_(jobs.c.status == PENDING, jobs.c.due_at <= now),
        and_(jobs.c.status == RUNNING, jobs.c.lease_expires_at < now),
    )


def claim(engine: Engine, worker: str, now: dt.datetime, lease: dt.timedelta, limit: int) -> list[Job]:
    """Claim up to `limit` due jobs for `worker`, oldest due first, in one transaction.

    One `WITH chosen AS MATERIALIZED (SELECT … FOR UPDATE SKIP LOCKED) UPDATE … RETURNING` claims them; the
    claim repeats the due condition, so a job finished meanwhile is not claimed again.
    """
    with write(engine) as conn:
        conn.execute(  # a worker died on the job's last attempt: give up rather than retry for ever
            update(jobs)
            .where(
                jobs.c.status == RUNNING,
                jobs.c.lease_expires_at < now,
                jobs.c.attempts >= jobs.c.max_attempts,
            )
            .values(status=FAILED, finished_at=now, last_error="the lease expired on the last attempt")
        )
        picked = select(jobs.c.id).where(claimable(now)).order_by(jobs.c.due_at, jobs.c.id).limit(limit)
        if conn.dialect.name == "postgresql":
            picked = picked.with_for_update(skip_locked=True)
        # a materialized CTE runs the locking SELECT once (an IN subquery may run it again)
        chosen = picked.cte("chosen").prefix_with("MATERIALIZED", dialect="postgresql")
        rows = conn.execute(
            update(jobs)
            .where(jobs.c.id == chosen.c.id, claimable(now))
            .values(
                status=RUNNING,
                lease_owner=worker,
                lease_expires_at=now + lease,
                attempts=jobs.c.attempts + 1,
            )
            .returning(*jobs.c)
        ).mappings()
        found = [_job(row) for row in rows]
    return sorted(found, key=lambda j: (j.due_at, j.id))


def complete(conn: Connection, job: Job, worker: str, now: dt.datetime) -> None:
    """Mark the job done in the transaction of its effects; LeaseLost when it is no longer ours."""
    stmt = (
        update(jobs)
        .where(jobs.c.id == job.id, jobs.c.lease_owner == worker, jobs.c.status == RUNNING)
        .values(status=DONE, finished_at=now, last_error=None)
    )
    if conn.execute(stmt).rowcount != 1:
        raise LeaseLost(f"job {job.id} ({job.key}) was claimed by another worker")


def fail(engine: Engine, job: Job, worker: str, now: dt.datetime, error: str) -> None:
    """Note a failed attempt: retry later with a growing delay, or give up after the last attempt."""
    last = job.attempts >= job.max_attempts
    delay = dt.timedelta(seconds=min(3600, 5 * 4 ** max(0, job.attempts - 1)))
    values: dict[str, Any] = {"last_error": error[:2000], "lease_owner": None, "lease_expires_at": None}
    values.update(
        {"status": FAILED, "finished_at": now} if last else {"status": PENDING, "due_at": now + delay}
    )
    with write(engine) as conn:
        conn.execute(
            update(jobs)
            .where(jobs.c.id == job.id, jobs.c.lease_owner == worker, jobs.c.status == RUNNING)
            .values(**values)
        )


def release(engine: Engine, claimed: list[Job], worker: str) -> int:
    """Give claimed jobs back unrun (a worker that stops): due again at once, the attempt not counted."""
    if not claimed:
        return 0
    with write(engine) as conn:
        result = conn.execute(
            update(jobs)
            .where(
                jobs.c.id.in_([j.id for j in claimed]), jobs.c.lease_owner == worker, jobs.c.status == RUNNING
            )
            .values(status=PENDING, lease_owner=None, lease_expires_at=None, attempts=jobs.c.attempts - 1)
        )
        notify.notify(conn, notify.JOB)
    return int(result.rowcount or 0)


def next_due(conn: Connection) -> dt.datetime | None:
    """When the next job falls due: the earliest pending due time or running lease expiry."""
    pending = select(func.min(jobs.c.due_at)).where(jobs.c.status == PENDING).scalar_subquery()
    leased = select(func.min(jobs.c.lease_expires_at)).where(jobs.c.status == RUNNING).scalar_subquery()
    row = conn.execute(select(pending, leased)).one()
    times = [t for t in row if t is not None]
    return min(times) if times else None


def add_now(
    conn: Connection, kind: str, key: str, payload: dict[str, Any], now: dt.datetime, **where: Any
) -> None:
    """A job due at once (webhooks and e-mails leave the transaction this way: an outbox)."""
    enqueue(conn, kind, key, now, payload, now, **where)


def _job(row: Any) -> Job:
    return Job(
        id=row["id"],
        kind=row["kind"],
        key=row["key"],
        app=row["app"],
        form=row["form"],
        record_id=row["record_id"],
        instance_id=row["instance_id"],
        payload=dict(row["payload"] or {}),
        due_at=row["due_at"],
        attempts=row["attempts"],
        max_attempts=row["max_attempts"],
        request_id=row["request_id"],
    )


__all__ = [
    "Job",
    "LeaseLost",
    "add_now",
    "cancel",
    "claim",
    "complete",
    "enqueue",
    "fail",
    "next_due",
    "release",
    "table",
]
