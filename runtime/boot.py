"""Start-up: from pack folders and a database URL to a ready records service and API.

On a database that has never held an app, starting publishes it: its tables are
created and its definition recorded. On a database holding another version of the
app, start-up refuses and names the commands that plan and publish the change.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import SAWarning

from runtime.api.limits import max_upload
from runtime.db import make_engine, set_clock, write
from runtime.live import Extension, LiveApi, served
from runtime.loading.loader import load_packs
from runtime.model import App
from runtime.records.compiled import CompiledApp
from runtime.records.files import FileStore
from runtime.records.service import RecordsService
from runtime.records.store import Clock
from runtime.schema import published
from runtime.schema.migrate import upgrade_system_tables
from runtime.schema.tables import build_tables
from runtime.schema.types import utcnow

warnings.filterwarnings("ignore", category=SAWarning, message=".*Decimal objects natively.*")


FILES_ENV = "FORMLOOM_FILES"


class NotPublished(Exception):
    """The database holds another version of an app than the pack being served."""


@dataclass
class Runtime:
    """Everything a running server holds."""

    engine: Engine
    live: LiveApi
    files: FileStore

    @property
    def service(self) -> RecordsService:
        """The records service of the definitions currently published."""
        return self.live.service

    @property
    def apps(self) -> list[CompiledApp]:
        """The compiled apps currently served."""
        return list(self.live.service.apps.values())

    @property
    def api(self) -> LiveApi:
        """The ASGI application (it follows publishes without a restart)."""
        return self.live


def create_tables(conn: Connection, app: App) -> None:
    """Create every table of an app that does not exist yet (a first publish)."""
    tables = build_tables(app)
    own = [t for name, t in tables.metadata.tables.items() if not name.startswith("formloom_")]
    tables.metadata.create_all(conn, tables=own, checkfirst=True)


def compile_apps(apps: list[App], engine: Engine, clock: Clock) -> list[CompiledApp]:
    """Tables and compiled forms of each app, served from `engine`."""
    return [served(app, engine, clock) for app in apps]


def ensure_published(engine: Engine, apps: list[App], command_hint: Callable[[App], str]) -> None:
    """Publish apps the database has never held; refuse apps it holds in another version."""
    upgrade_system_tables(engine)
    with write(engine) as conn:
        current = published.current_hashes(conn)
        for app in apps:
            digest = published.content_hash(app)
            if app.app not in current:
                create_tables(conn, app)
                published.record(conn, app, {"steps": ["first publish: every table created"]}, "formloom")
            elif current[app.app] != digest:
                raise NotPublished(
                    f"the database holds another version of app '{app.app}' than {app.version} "
                    f"in these files; review and apply the change with:\n{command_hint(app)}"
                )


def start(
    paths: list[str | Path],
    db_url: str | None = None,
    files_dir: str | Path | None = None,
    clock: Clock = utcnow,
    command_hint: Callable[[App], str] | None = None,
    extensions: Sequence[Extension] = (),
) -> Runtime:
    """Load packs, check (or make) their publication, and build the API.

    Uploaded files go to `files_dir`, else $FORMLOOM_FILES, else `files/`.
    """
    apps = load_packs(paths)
    engine = make_engine(db_url)
    set_clock(engine, clock)  # the history's times follow the runtime's clock
    hint = command_hint or (lambda app: "  formloom plan PATH --db URL\n  formloom publish PATH --db URL")
    ensure_published(engine, apps, hint)
    store = FileStore(
        files_dir or os.environ.get(FILES_ENV) or "files", max_upload()
    )  # FORMLOOM_MAX_UPLOAD, serve --max-upload
    live = LiveApi(engine, compile_apps(apps, engine, clock), store, clock, extensions)
    return Runtime(engine, live, store)
