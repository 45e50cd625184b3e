"""Prometheus metrics at `/metrics`, through prometheus-client.

Per server process: requests by method, route template (`/api/v1/{app}/lead/{record_id}`,
never a concrete id) and status, and their latency; the database pool in use. Read from
the database at each scrape, so every server reports the same shared figures: jobs due
and not yet claimed, running, and failed, by kind; the timer lag (how late the oldest due
job is); the e-mail outbox (e-mail jobs waiting). `/metrics` is off unless a token is set
(`FORMLOOM_METRICS_TOKEN`): the scraper sends it as a bearer token; anything else is 404,
so the route reveals nothing when it is off and nothing without the token.
"""

from __future__ import annotations

import datetime as dt
import hmac
import os
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import SQLAlchemyError

from runtime.schema.system import jobs

TOKEN_ENV = "FORMLOOM_METRICS_TOKEN"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
UNMATCHED = "(unmatched)"  # a path no route serves: one label value, not one per path


def metrics_token() -> str | None:
    """The scrape token, or None when `/metrics` is off."""
    return os.environ.get(TOKEN_ENV) or None


def may_scrape(authorization: str | None, token: str | None) -> bool:
    """Whether the request's `Authorization` header carries the scrape token."""
    if token is None or authorization is None:
        return False
    return hmac.compare_digest(authorization.encode(), f"Bearer {token}".encode())


class Metrics:
    """The metrics of one server process, in a registry of its own."""

    def __init__(self, engine: Engine, clock: Callable[[], dt.datetime]) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "formloom_requests",
            "HTTP requests answered",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "formloom_request_seconds",
            "Time to answer an HTTP request",
            ["method", "route"],
            registry=self.registry,
        )
        self.registry.register(_DatabaseCollector(engine, clock))

    def observe(self, method: str, route: str | None, status: int, seconds: float) -> None:
        """Count one answered request."""
        template = route or UNMATCHED
        self.requests.labels(method, template, str(status)).inc()
        self.latency.labels(method, template).observe(seconds)

    def exposition(self) -> bytes:
        """The metrics in Prometheus' text format."""
        return generate_latest(self.registry)


class _DatabaseCollector(Collector):
    """Figures read at scrape time: the pool of this process, the job queue of all."""

    def __init__(self, engine: Engine, clock: Callable[[], dt.datetime]) -> None:
        self.engine = engine
        self.clock = clock

    def collect(self) -> Iterator[GaugeMetricFamily]:
        pool = GaugeMetricFamily(
            "formloom_db_pool_in_use", "Database connections checked out by this process"
        )
        pool.add_metric([], float(getattr(self.engine.pool, "checkedout", lambda: 0)()))
        yield pool
        try:
            yield from self._queue()
        except SQLAlchemyError:
            down = GaugeMetricFamily("formloom_db_up", "Whether the database answered the scrape")
            down.add_metric([], 0.0)
            yield down

    def _queue(self) -> Iterator[GaugeMetricFamily]:
        now = self.clock()
        by_status = GaugeMetricFamily(
            "formloom_jobs", "Jobs by kind and state (due: pending and due now)", labels=["kind", "state"]
        )
        lag = GaugeMetricFamily("formloom_timer_lag_seconds", "How late the oldest due, unclaimed job is")
        outbox = GaugeMetricFamily("formloom_email_outbox", "E-mails waiting to be sent")
        up = GaugeMetricFamily("formloom_db_up", "Whether the database answered the scrape")
        with self.engine.connect() as conn:
            due = jobs.c.status == "pending"
            counts = conn.execute(
                select(jobs.c.kind, jobs.c.status, func.count())
                .where(jobs.c.status.in_(["running", "failed"]) | (due & (jobs.c.due_at <= now)))
                .group_by(jobs.c.kind, jobs.c.status)
            ).all()
            oldest = conn.execute(select(func.min(jobs.c.due_at)).where(due, jobs.c.due_at <= now)).scalar()
            waiting = conn.execute(
                select(func.count()).select_from(jobs).where(due, jobs.c.kind == "email")
            ).scalar_one()
        for kind, status, count in counts:
            by_status.add_metric([kind, "due" if status == "pending" else status], float(count))
        lag.add_metric([], max((now - oldest).total_seconds(), 0.0) if oldest is not None else 0.0)
        outbox.add_metric([], float(waiting))
        up.add_metric([], 1.0)
        yield from (by_status, lag, outbox, up)
