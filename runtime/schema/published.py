"""The published definitions of each app, as recorded in Formloom's system tables.

A publish writes a row to `formloom_definition_versions` (definition, content hash,
plan, author, time) and points `formloom_apps` at it. The database, not the pack
files, is the truth a running server follows.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, insert, select, update

from runtime.model import App
from runtime.ops import notify
from runtime.schema.system import apps as apps_table
from runtime.schema.system import definition_versions
from runtime.schema.types import utcnow


@dataclass
class PublishedVersion:
    """One published version of an app."""

    id: int
    app: str
    version: str
    content_hash: str
    author: str | None
    published_at: Any
    plan: Any
    definition: dict[str, Any]

    def model(self) -> App:
        """The definition as the model."""
        return App.model_validate(self.definition)


def definition_json(app: App) -> dict[str, Any]:
    """The definition as plain JSON (aliases used, defaults included)."""
    return app.model_dump(mode="json", by_alias=True)


def content_hash(app: App) -> str:
    """A stable SHA-256 of an app's definition (key order and whitespace do not matter)."""
    text = json.dumps(definition_json(app), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def current_hashes(conn: Connection) -> dict[str, str]:
    """The content hash each app is published at."""
    return {
        row.key: row.content_hash for row in conn.execute(select(apps_table.c.key, apps_table.c.content_hash))
    }


def latest(conn: Connection, app_key: str) -> PublishedVersion | None:
    """The newest published version of an app, if any."""
    versions = history(conn, app_key, limit=1)
    return versions[0] if versions else None


def history(conn: Connection, app_key: str | None = None, limit: int | None = None) -> list[PublishedVersion]:
    """Published versions, newest first."""
    table = definition_versions
    stmt = select(table).order_by(table.c.id.desc())
    if app_key is not None:
        stmt = stmt.where(table.c.app == app_key)
    if limit is not None:
        stmt = stmt.limit(limit)
    return [PublishedVersion(**dict(row)) for row in conn.execute(stmt).mappings()]


def record(conn: Connection, app: App, plan: Any, author: str | None) -> int:
    """Record a published version and make it current; answers its id.

    On PostgreSQL the transaction also announces the publish (NOTIFY): every server and
    worker listening follows it as soon as it commits.
    """
    digest = content_hash(app)
    now = utcnow()
    version_id = conn.execute(
        insert(definition_versions)
        .values(
            app=app.app,
            version=app.version,
            content_hash=digest,
            definition=definition_json(app),
            plan=plan,
            author=author,
            published_at=now,
        )
        .returning(definition_versions.c.id)
    ).scalar_one()
    row = {
        "label": app.label.model_dump(exclude_none=True),
        "version": app.version,
        "content_hash": digest,
        "updated_at": now,
    }
    exists = conn.execute(select(apps_table.c.key).where(apps_table.c.key == app.app)).first()
    if exists:
        conn.execute(update(apps_table).where(apps_table.c.key == app.app).values(**row))
    else:
        conn.execute(insert(apps_table).values(key=app.app, **row))
    notify.notify(conn, notify.PUBLISH)
    return int(version_id)
