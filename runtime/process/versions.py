"""Which definition a process instance runs on: the version it started with, never a newer one.

An instance records the id of the published version (`formloom_definition_versions`)
that was current when it started. Its workflow or approval is read from that version,
so publishing a changed workflow leaves running instances on the steps they began with.
Apps that were never published (tests that build tables directly) run on the loaded
definition and record no version.
"""

from __future__ import annotations

import threading

from sqlalchemy import Connection, select

from runtime.model import App
from runtime.model.process import Approval, Workflow
from runtime.schema import published
from runtime.schema.system import definition_versions


class Versions:
    """Published versions of the served apps, read once each and kept."""

    def __init__(self, apps: dict[str, App]) -> None:
        self.apps = apps
        self._current: dict[str, int | None] = {}
        self._models: dict[int, App] = {}
        self._lock = threading.Lock()

    def current(self, conn: Connection, app_key: str) -> int | None:
        """The id of the published version the served definition matches, if any."""
        if app_key not in self._current:
            digest = published.content_hash(self.apps[app_key])
            stmt = (
                select(definition_versions.c.id)
                .where(definition_versions.c.app == app_key, definition_versions.c.content_hash == digest)
                .order_by(definition_versions.c.id.desc())
                .limit(1)
            )
            with self._lock:
                self._current[app_key] = conn.execute(stmt).scalar()
        return self._current[app_key]

    def app(self, conn: Connection, app_key: str, version_id: int | None) -> App:
        """The definition of `app_key` as it was at `version_id` (the served one when None)."""
        if version_id is None or version_id == self.current(conn, app_key):
            return self.apps[app_key]
        if version_id not in self._models:
            stmt = select(definition_versions.c.definition).where(definition_versions.c.id == version_id)
            definition = conn.execute(stmt).scalar()
            model = App.model_validate(definition) if definition is not None else self.apps[app_key]
            with self._lock:
                self._models[version_id] = model
        return self._models[version_id]

    def workflow(self, conn: Connection, app_key: str, form: str, version_id: int | None) -> Workflow | None:
        """The workflow of `form` at a version."""
        return self.app(conn, app_key, version_id).workflow_of(form)

    def approval(self, conn: Connection, app_key: str, key: str, version_id: int | None) -> Approval | None:
        """An approval at a version."""
        return self.app(conn, app_key, version_id).approval(key)
