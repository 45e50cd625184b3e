"""`formloom worker`: claims due jobs and runs each in its own transaction.

Kinds: `timer` (workflow timers), `schedule` (cron automations), `webhook` (POST the
record, retried until 2xx) and `email`. A timer or schedule job commits its effects
and its `done` mark together, and only while its lease is still this worker's, so it
acts exactly once however many workers run. Webhooks and e-mails reach other
systems: they are sent at least once and carry the job key (`Idempotency-Key`
header, Message-ID) so receivers can drop a repeat.
"""

from __future__ import annotations

import datetime as dt
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
from runtime.process import automations, deadlines, jobs, mail, sweeps, timers, webhooks
from runtime.process.bulk import BulkTimers
from runtime.process.engine import ProcessEngine
from runtime.records.errors import NotFound

WEBHOOK_TIMEOUT = 10.0
OUTSIDE = ("webhook", "email")  # kinds that talk to other systems: sent outside any transaction


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

    def run_once(self) -> int:
        """Claim one batch of due jobs and run them; answers how many were claimed."""
        claimed = jobs.claim(self.db, self.name, self.engine.now(), self.lease, self.batch)
        together = [job for job in claimed if job.kind not in OUTSIDE]
        if together:
            self.run_together(together)
        for job in claimed:
            if job.kind in OUTSIDE:
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
            self.stats.failed += 1
            jobs.fail(self.db, job, self.name, self.engine.now(), error)

    def run(self, job: jobs.Job) -> None:
        """Run one claimed job: its effects and its done mark commit together, or the job is retried."""
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
            self.stats.failed += 1
            jobs.fail(self.db, job, self.name, self.engine.now(), f"{type(exc).__name__}: {exc}")
            return
        self._count(job)

    def _count(self, job: jobs.Job) -> None:
        self.stats.done += 1
        self.stats.by_kind[job.kind] = self.stats.by_kind.get(job.kind, 0) + 1

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
        self.send_mail(settings, payload["to"], payload["subject"], payload["body"], job.key)
