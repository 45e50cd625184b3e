"""Bring Formloom's system tables up to date with the Alembic revisions in `migrations/`."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"


def alembic_config(engine: Engine) -> Config:
    """An Alembic config pointing at Formloom's revisions."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


_CURRENT: set[str] = set()


def upgrade_system_tables(engine: Engine) -> None:
    """Apply every pending system-table revision, in one transaction (once per database and process)."""
    key = engine.url.render_as_string(hide_password=False)
    if key in _CURRENT:
        return
    config = alembic_config(engine)
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
    _CURRENT.add(key)
