"""Start-up: from pack folders and a database URL to a ready records service and API."""

from __future__ import annotations

import hashlib
import json
import warnings
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI
from sqlalchemy import Engine, select
from sqlalchemy.exc import SAWarning

from runtime.api.app import create_api
from runtime.db import make_engine, write
from runtime.loading.loader import load_packs
from runtime.model import App
from runtime.records.compiled import CompiledApp, compile_app
from runtime.records.files import FileStore
from runtime.records.service import Clock, RecordsService
from runtime.schema.migrate import upgrade_system_tables
from runtime.schema.system import apps as apps_table
from runtime.schema.tables import build_tables
from runtime.schema.types import utcnow

warnings.filterwarnings("ignore", category=SAWarning, message=".*Decimal objects natively.*")


@dataclass
class Runtime:
    """Everything a running server holds."""

    engine: Engine
    apps: list[CompiledApp]
    service: RecordsService
    files: FileStore
    api: FastAPI


def content_hash(app: App) -> str:
    """A stable SHA-256 of an app's definition (key order and whitespace do not matter)."""
    text = json.dumps(app.model_dump(mode="json", by_alias=True), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def prepare_database(engine: Engine, apps: list[App], clock: Clock = utcnow) -> list[CompiledApp]:
    """Apply system migrations, create missing form tables, and record each app's version."""
    upgrade_system_tables(engine)
    compiled = []
    with write(engine) as conn:
        for app in apps:
            tables = build_tables(app)
            own = [t for name, t in tables.metadata.tables.items() if not name.startswith("formloom_")]
            tables.metadata.create_all(conn, tables=own, checkfirst=True)
            _record_app(conn, app)
            compiled.append(compile_app(app, tables, engine.dialect.name, clock))
    return compiled


def _record_app(conn: object, app: App) -> None:
    from sqlalchemy import Connection, insert, update

    assert isinstance(conn, Connection)
    row = {
        "label": app.label.model_dump(exclude_none=True),
        "version": app.version,
        "content_hash": content_hash(app),
        "updated_at": utcnow(),
    }
    exists = conn.execute(select(apps_table.c.key).where(apps_table.c.key == app.app)).first()
    if exists:
        conn.execute(update(apps_table).where(apps_table.c.key == app.app).values(**row))
    else:
        conn.execute(insert(apps_table).values(key=app.app, **row))


def start(
    paths: list[str | Path], db_url: str | None = None, files_dir: str | Path = "files", clock: Clock = utcnow
) -> Runtime:
    """Load packs, prepare the database and build the API."""
    apps = load_packs(paths)
    engine = make_engine(db_url)
    compiled = prepare_database(engine, apps, clock)
    service = RecordsService(engine, compiled, clock)
    store = FileStore(files_dir)
    return Runtime(engine, compiled, service, store, create_api(service, store))
