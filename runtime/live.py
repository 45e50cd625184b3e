"""The served API follows publishes: every worker notices a new version within a second.

`LiveApi` is the ASGI application a server runs. Before handling a request it looks
(at most once a second) at the content hashes in `formloom_apps`; when one changed,
it reads the newly published definitions from the database, builds a new records
service and FastAPI app, and swaps them in. Requests already running finish on the
old ones.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from fastapi import FastAPI
from sqlalchemy import Engine

from runtime.api.app import create_api
from runtime.model import App
from runtime.ops.requests import OperatorRoutes
from runtime.process.engine import engine_for
from runtime.records.compiled import CompiledApp, compile_app
from runtime.records.files import FileStore
from runtime.records.service import RecordsService
from runtime.records.singles import ensure_single_records
from runtime.records.store import Clock
from runtime.schema import calendar, published
from runtime.schema.tables import build_tables

CHECK_EVERY = 1.0  # seconds
# The execution option that marks the statements of the publish check, so that whoever
# counts a request's statements (tests, tracing) can tell them from the request's own.
LIVE_CHECK = "formloom_live_check"
# Adds routes to each API the server builds (the designer, from `builder`, uses this).
Extension = Callable[[FastAPI, RecordsService], None]


class LiveApi:
    """An ASGI app that rebuilds itself when the published definitions change."""

    def __init__(
        self,
        engine: Engine,
        apps: list[CompiledApp],
        store: FileStore,
        clock: Clock,
        extensions: Sequence[Extension] = (),
    ) -> None:
        self.engine = engine
        self.store = store
        self.clock = clock
        self.extensions = list(extensions)
        self.service = RecordsService(engine, apps, clock)
        engine_for(self.service)
        ensure_single_records(self.service)
        self.api: FastAPI = self._build(self.service)
        self.hashes = {a.app.app: published.content_hash(a.app) for a in apps}
        self.checked_at = time.monotonic()
        self.lock = threading.Lock()
        self.operator = OperatorRoutes(engine, clock, lambda: {k: v for k, v in self.hashes.items() if v})

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.api(scope, receive, send)
            return
        if time.monotonic() - self.checked_at >= CHECK_EVERY:
            self.refresh()
        await self.operator.handle(scope, receive, send, self.api)

    def refresh(self) -> bool:
        """Follow a publish if there was one; answers whether the API changed."""
        with self.lock:
            self.checked_at = time.monotonic()
            with self.engine.connect() as conn:
                conn.execution_options(**{LIVE_CHECK: True})
                current = published.current_hashes(conn)
                wanted = {key: current.get(key) for key in self.hashes}
                if wanted == self.hashes:
                    return False
                versions = [published.latest(conn, key) for key in self.hashes]
            apps = [v.model() for v in versions if v is not None]
            compiled = [served(a, self.engine, self.clock) for a in apps]
            service = RecordsService(self.engine, compiled, self.clock)
            engine_for(service)
            ensure_single_records(service)
            self.api, self.service = self._build(service), service
            self.hashes = {a.app: published.content_hash(a) for a in apps}
            return True

    def _build(self, service: RecordsService) -> FastAPI:
        api = create_api(service, self.store)
        for extend in self.extensions:
            extend(api, service)
        return api

    def openapi(self) -> dict[str, Any]:
        """The OpenAPI spec of the current API."""
        return self.api.openapi()


def served(app: App, engine: Engine, clock: Clock) -> CompiledApp:
    """One app compiled for `engine` (its working-day rows are made there when first needed)."""
    compiled = compile_app(app, build_tables(app), engine.dialect.name, clock)
    calendar.register(compiled.tables.metadata, engine, app)
    return compiled
