"""The served API follows publishes: every server notices a new version within a second.

`LiveApi` is the ASGI application a server runs. When the published definitions
change, it reads them from the database, builds a new records service and FastAPI
app, and swaps them in. Requests already running finish on the old ones.

How it learns of a publish: on PostgreSQL, after `listen()`, a publish's NOTIFY
reaches the process's listener thread, which rebuilds at once; no request pays a query
for it. While the listener is not connected (and on SQLite, or without `listen()`),
requests look at the content hashes in `formloom_apps` at most once a second instead.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from fastapi import FastAPI
from sqlalchemy import Engine

from runtime.api.app import create_api
from runtime.model import App
from runtime.ops import notify
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
LOG = logging.getLogger("formloom.live")


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
        self.listener: notify.Listener | None = None
        self.stale = False  # a publish was heard but following it failed: the next request tries
        self.operator = OperatorRoutes(engine, clock, lambda: {k: v for k, v in self.hashes.items() if v})

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.api(scope, receive, send)
            return
        if self.pushed():
            if self.stale:
                self.refresh()
        elif time.monotonic() - self.checked_at >= CHECK_EVERY:
            self.refresh()
        await self.operator.handle(scope, receive, send, self.api)

    def listen(self) -> notify.Listener | None:
        """On PostgreSQL, follow publishes as they are announced (NOTIFY) instead of looking."""
        if not notify.supported(self.engine) or self.listener is not None:
            return self.listener
        listener = notify.listener_for(self.engine)
        listener.on_message(self._heard)
        listener.on_reconnect(self._follow)  # publishes may have been missed meanwhile
        self.listener = listener
        self._follow()  # one published while the listener was starting
        return listener

    def pushed(self) -> bool:
        """True while publishes reach this server by notification."""
        return self.listener is not None and self.listener.listening.is_set()

    def _heard(self, message: str) -> None:
        if message == notify.PUBLISH:
            self._follow()

    def _follow(self) -> None:
        try:
            self.refresh()
        except Exception:
            self.stale = True
            LOG.exception("could not follow a publish; the next request tries again")

    def refresh(self) -> bool:
        """Follow a publish if there was one; answers whether the API changed."""
        with self.lock:
            self.checked_at = time.monotonic()
            with self.engine.connect() as conn:
                conn.execution_options(**{LIVE_CHECK: True})
                current = published.current_hashes(conn)
                wanted = {key: current.get(key) for key in self.hashes}
                if wanted == self.hashes:
                    self.stale = False
                    return False
                versions = [published.latest(conn, key) for key in self.hashes]
            apps = [v.model() for v in versions if v is not None]
            compiled = [served(a, self.engine, self.clock) for a in apps]
            service = RecordsService(self.engine, compiled, self.clock)
            engine_for(service)
            ensure_single_records(service)
            self.api, self.service = self._build(service), service
            self.hashes = {a.app: published.content_hash(a) for a in apps}
            self.stale = False
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
