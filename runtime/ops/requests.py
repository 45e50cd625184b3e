"""The operator's side of each HTTP request: probes, metrics, a request id and a log line.

`OperatorRoutes` sits in front of the served API. It answers `/healthz`, `/readyz` and
`/metrics` itself, without sign-in and before anything else; for every other request
it takes the caller's `X-Request-ID` (when it looks like one) or makes one, answers it
in the response's `X-Request-ID`, keeps it in `REQUEST_ID` for the code the request runs,
counts the request by route template, and logs one JSON line on the `formloom.access`
logger.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from runtime.ops.health import readiness
from runtime.ops.metrics import CONTENT_TYPE, Metrics, may_scrape, metrics_token
from runtime.ops.request_id import REQUEST_ID

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGI = Callable[[Scope, Receive, Send], Awaitable[None]]

ACCESS = logging.getLogger("formloom.access")
_GIVEN_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


class OperatorRoutes:
    """Probes, metrics and request ids around an ASGI app."""

    def __init__(self, engine: Any, clock: Any, served_hashes: Callable[[], dict[str, str]]) -> None:
        self.engine = engine
        self.served_hashes = served_hashes
        self.metrics = Metrics(engine, clock)

    async def handle(self, scope: Scope, receive: Receive, send: Send, inner: ASGI) -> None:
        """Answer a probe or a scrape, or pass the request on to `inner` and account for it."""
        path = scope.get("path", "")
        if path == "/healthz":
            await _answer(send, 200, {"status": "alive"})
            return
        if path == "/readyz":
            checks = readiness(self.engine, self.served_hashes)
            ready = all(ok for _, ok in checks)
            await _answer(send, 200 if ready else 503, {"ready": ready, "checks": dict(checks)})
            return
        if path == "/metrics":
            await self._scrape(scope, send)
            return
        await self._served(scope, receive, send, inner)

    async def _scrape(self, scope: Scope, send: Send) -> None:
        authorization = _header(scope, b"authorization")
        if not may_scrape(authorization, metrics_token()):
            missing = {"field": None, "code": "not_found", "message": "not found"}
            await _answer(send, 404, {"errors": [missing]})
            return
        body = self.metrics.exposition()
        headers = [(b"content-type", CONTENT_TYPE.encode()), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _served(self, scope: Scope, receive: Receive, send: Send, inner: ASGI) -> None:
        given = _header(scope, b"x-request-id")
        request_id = given if given and _GIVEN_ID.match(given) else uuid.uuid4().hex
        token = REQUEST_ID.set(request_id)
        status = 500
        started = time.perf_counter()

        async def sending(message: MutableMapping[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await inner(scope, receive, sending)
        finally:
            seconds = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", None)
            self.metrics.observe(scope.get("method", ""), route, status, seconds)
            ACCESS.info(
                "request",
                extra={
                    "request_id": request_id,
                    "method": scope.get("method"),
                    "route": route,
                    "status": status,
                    "ms": round(seconds * 1000, 1),
                },
            )
            REQUEST_ID.reset(token)


class JsonLines(logging.Formatter):
    """Log records as one JSON object per line, with the request id when there is one."""

    FIELDS = ("request_id", "method", "route", "status", "ms", "job", "kind", "key", "error")

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in self.FIELDS:
            if hasattr(record, name):
                entry[name] = getattr(record, name)
        if "request_id" not in entry and REQUEST_ID.get() is not None:
            entry["request_id"] = REQUEST_ID.get()
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def log_as_json(level: int = logging.INFO) -> None:
    """Send Formloom's logs to standard error as JSON lines (`formloom serve --log-json`)."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonLines())
    logger = logging.getLogger("formloom")
    logger.handlers = [handler]
    logger.setLevel(level)
    logger.propagate = False


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return bytes(value).decode("latin-1")
    return None


async def _answer(send: Send, status: int, body: dict[str, Any]) -> None:
    data = json.dumps(body).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(data)).encode()),
        (b"cache-control", b"no-store"),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})
