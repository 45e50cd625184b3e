"""The id of the request (or job) whose work is running: kept with its history entries and jobs.

`OperatorRoutes` sets it for each HTTP request (`X-Request-ID`); the worker sets it to
the id a job was queued with while that job runs, so what the job writes and queues
carries the id of the request that caused it.
"""

from __future__ import annotations

import contextvars

REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("formloom_request_id", default=None)
