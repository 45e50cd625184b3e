"""`formloom worker`: claims due jobs and runs each in its own transaction.

Kinds: `timer` (workflow timers), `schedule` (cron automations), `webhook` (POST the
record, retried until 2xx) and `email`. A timer or schedule job commits its effects
and its `done` mark together, and only while its lease is still this worker's, so it
acts exactly once however many workers run. Webhooks and e-mails reach other
systems: they are sent at least once and carry the job key (`Idempotency-Key`
header, Message-ID) so receivers can drop a repeat.

While a job runs, `REQUEST_ID` holds the id of the request that queued it: the history
entries it writes and the jobs it queues carry that id, and so does its log line on
the `formloom.worker` logger (`formloom worker --log-json`).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from runtime.db import write
from runtime.identity.actor import SYSTEM
from runtime.ops.request_id import REQUEST_ID
from runtime.process import automations, deadlines, jobs, mail, record_mail, sweeps, timers, webhooks
from runtime.process.bulk import BulkTimers
from runtime.process.engine import ProcessEngine
from runtime.records.errors import NotFound

WEBHOOK_TIMEOUT = 10.0
OUTSIDE = ("webhook", "email")  # kinds that talk to other systems: sent outside any transaction
LOG = logging.getLogger("formloom.worker")


@dataclass
class WorkerStats:
    """What a worker did."""

    done: int = 0
    failed: int = 0
    lost: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)


class Worker:
    """Runs due jobs of one process engine."""

    def __init__(
        self,
        engine: ProcessEngine,
        name: str | None = None,
        lease: dt.timedelta = dt.timedelta(minutes=5),
        batch: int = 20,
        http: Callable[..., Any] | None = None,
        send_mail: mail.Sender | None = None,
    ) -> None:
        self.engine = engine
        self.db = engine.service.engine
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.lease = lease
        self.batch = batch
        self.http = http or httpx.post
        self.send_mail = send_mail or mail.send  # `formloom test` captures e-mails here
        self.stats = WorkerStats()
        self.bulk = BulkTimers(engine)
        self.stopping: Callable[[], bool] = lambda: False  # set by a worker that can be asked to stop

    def run_once(self) -> int:
        """Claim one batch of due jobs and run them; answers how many were claimed."""
        claimed = jobs.claim(self.db, self.name, self.engine.now(), self.lease, self.batch)
        together = [job for job in claimed if job.kind not in OUTSIDE]
        if together:
            self.run_together(together)
        outside = [job for job in claimed if job.kind in OUTSIDE]
        for at, job in enumerate(outside):
            if self.stopping():  # SIGTERM: the job running finished; give back those not started
                self.release(outside[at:])
                break
            self.run(job)
        return len(claimed)

    def run_together(self, batch: list[jobs.Job]) -> None:
        """Run jobs that only touch the database in one transaction, each inside a savepoint.

        Each job's effects and done mark still commit together or not at all; a job that
        fails or lost its lease is rolled back to its savepoint alone. One commit for the
        batch instead of one per job. Should the commit itself fail, each job runs alone.
        """
        finished: list[jobs.Job] = []
        failed: list[tuple[jobs.Job, str]] = []
        lost = 0
        try:
            with write(self.db) as conn:
                savepoint = conn.begin_nested()
                try:
                    alone = self.bulk.fire(conn, batch, self.name)
                    savepoint.commit()
                except Exception:
                    savepoint.rollback()
                    alone = batch
                finished.extend(job for job in batch if job not in alone)
                for job in alone:
                    savepoint = conn.begin_nested()
                    caused_by = REQUEST_ID.set(job.request_id)
                    try:
                        self._handler(job)(conn, job)
                        jobs.complete(conn, job, self.name, self.engine.now())
                    except jobs.LeaseLost:
                        savepoint.rollback()
                        lost += 1
                        continue
                    except Exception as exc:
                        savepoint.rollback()
                        failed.append((job, f"{type(exc).__name__}: {exc}"))
                        continue
                    finally:
                        REQUEST_ID.reset(caused_by)
                    savepoint.commit()
                    finished.append(job)
        except Exception:
            for job in batch:
                self.run(job)
            return
        self.stats.lost += lost
        for job in finished:
            self._count(job)
        for job, error in failed:
            self._failed(job, error)

    def run(self, job: jobs.Job) -> None:
        """Run one claimed job: its effects and its done mark commit together, or the job is retried."""
        caused_by = REQUEST_ID.set(job.request_id)
        try:
            self._run(job)
        finally:
            REQUEST_ID.reset(caused_by)

    def _run(self, job: jobs.Job) -> None:
        try:
            handler = self._handler(job)
            if job.kind in OUTSIDE:
                handler(None, job)  # no transaction (and on SQLite no write lock) while waiting on others
                with write(self.db) as conn:
                    jobs.complete(conn, job, self.name, self.engine.now())
            else:
                with write(self.db) as conn:
                    handler(conn, job)
                    jobs.complete(conn, job, self.name, self.engine.now())
        except jobs.LeaseLost:
            self.stats.lost += 1
            return
        except Exception as exc:
            self._failed(job, f"{type(exc).__name__}: {exc}")
            return
        self._count(job)

    def _count(self, job: jobs.Job) -> None:
        self.stats.done += 1
        self.stats.by_kind[job.kind] = self.stats.by_kind.get(job.kind, 0) + 1
        LOG.info("job done", extra=_logged(job))

    def _failed(self, job: jobs.Job, error: str) -> None:
        self.stats.failed += 1
        jobs.fail(self.db, job, self.name, self.engine.now(), error)
        LOG.warning("job failed", extra={**_logged(job), "error": error})

    def _handler(self, job: jobs.Job) -> Callable[[Any, jobs.Job], None]:
        handler = getattr(self, f"_{job.kind}", None)
        if handler is None:
            raise ValueError(f"unknown job kind '{job.kind}'")
        return handler  # type: ignore[no-any-return]

    def run_until_idle(self, max_rounds: int | None = None) -> WorkerStats:
        """Run batches until no job is due (tests and `--until-idle`)."""
        rounds = 0
        while self.run_once():
            rounds += 1
            if max_rounds is not None and rounds >= max_rounds:
                break
        return self.stats

    def serve(self, poll: float = 1.0, stop: Callable[[], bool] = lambda: False) -> None:
        """Run for ever (until `stop()`): keep schedules queued, claim jobs, sleep when idle."""
        while not stop():
            with write(self.db) as conn:
                automations.ensure_schedules(self.engine, conn)
            if not self.run_once():
                time.sleep(poll)

    def release(self, claimed: list[jobs.Job]) -> int:
        """Give back claimed jobs this worker will not run (it is stopping); answers how many."""
        return jobs.release(self.db, claimed, self.name)

    # -- kinds ---------------------------------------------------------------------------

    def _timer(self, conn: Any, job: jobs.Job) -> None:
        timers.fire(self.engine, conn, job)

    def _schedule(self, conn: Any, job: jobs.Job) -> None:
        automations.run_schedule(self.engine, conn, job)

    def _deadline(self, conn: Any, job: jobs.Job) -> None:
        deadlines.fire(self.engine, conn, job)

    def _sweep(self, conn: Any, job: jobs.Job) -> None:
        sweeps.fire(self.engine, conn, job)

    def _webhook(self, conn: Any, job: jobs.Job) -> None:
        try:
            record = self.engine.service.get(str(job.app), str(job.form), int(job.record_id or 0), SYSTEM)
        except NotFound:
            record = None
        where = {"app": job.app, "form": job.form, "id": job.record_id}
        sent = webhooks.delivery(job.payload, job.key, where, record, self.engine.now())
        answer = self.http(sent.url, content=sent.body, headers=sent.headers, timeout=WEBHOOK_TIMEOUT)
        if not 200 <= answer.status_code < 300:
            raise RuntimeError(f"webhook answered {answer.status_code}")

    def _email(self, conn: Any, job: jobs.Job) -> None:
        settings = self.engine.mail
        if settings is None:
            raise RuntimeError("e-mail is not configured: set FORMLOOM_SMTP_HOST")
        payload = job.payload
        ids = [int(i) for i in payload.get("attachments") or []]
        if not ids:
            self.send_mail(settings, payload["to"], payload["subject"], payload["body"], job.key)
            return
        with self.db.connect() as read:  # the files an `email` effect attached, read as it is sent
            attached = record_mail.attached_files(read, self.engine.files, ids)
        self.send_mail(
            settings, payload["to"], payload["subject"], payload["body"], job.key, attachments=attached
        )


def _logged(job: jobs.Job) -> dict[str, Any]:
    """What a job's log line says about it."""
    return {"job": job.id, "kind": job.kind, "key": job.key, "request_id": job.request_id}
