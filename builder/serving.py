"""What `formloom serve` runs in each server process, and `--workers N` (several processes).

With one process the command builds the app itself. With `--workers N` uvicorn starts N
processes, each of which imports `builder.serving:app_from_env` and builds its own app
(its own pool, listener and caches) from the settings the command put in
`FORMLOOM_SERVE_SETTINGS`. Nothing else is shared between the processes but the
database and the files directory.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from builder.designer.extension import designer_extension
from runtime.boot import FILES_ENV, Runtime, start

__all__ = [
    "FILES_ENV",
    "IMPORT",
    "SETTINGS_ENV",
    "ServeSettings",
    "app_from_env",
    "build",
    "default_files",
    "to_env",
]
from runtime.model import App

SETTINGS_ENV = "FORMLOOM_SERVE_SETTINGS"
IMPORT = "builder.serving:app_from_env"


@dataclass
class ServeSettings:
    """What a server process needs to build its app."""

    paths: list[str | Path]
    db: str | None = None
    files: str = "files"
    backups: str = "backups"
    log_json: bool = False
    hint: str = "  formloom plan PATH --db URL\n  formloom publish PATH --db URL"  # shown on NotPublished


def build(settings: ServeSettings) -> Runtime:
    """Load, check the publication, build the app and, on PostgreSQL, listen for publishes."""
    live: list[Any] = []
    designer = designer_extension(
        [Path(p) for p in settings.paths],
        Path(settings.backups),
        published=lambda: live and live[0].refresh(),
    )

    def hint(_app: App) -> str:
        return settings.hint

    runtime = start(
        list(settings.paths), settings.db, settings.files, command_hint=hint, extensions=[designer]
    )
    live.append(runtime.live)
    runtime.live.listen()
    return runtime


def to_env(settings: ServeSettings) -> None:
    """Hand the settings to the server processes uvicorn will start."""
    os.environ[SETTINGS_ENV] = json.dumps(asdict(settings))


def app_from_env() -> Any:
    """The ASGI app of one server process of `formloom serve --workers N` (a uvicorn factory)."""
    settings = ServeSettings(**json.loads(os.environ[SETTINGS_ENV]))
    if settings.log_json:
        from runtime.ops.requests import log_as_json

        log_as_json()
    return build(settings).api


def default_files() -> str:
    """The files directory when `--files` is not given: $FORMLOOM_FILES, else `files`."""
    return os.environ.get(FILES_ENV) or "files"
