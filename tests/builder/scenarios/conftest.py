"""Fixtures of the scenario tests: the kinds pack in a folder of the test's own, and the
databases `formloom test` runs on (SQLite, and PostgreSQL per the CI rule of tests/conftest)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from builder.scenarios.runner import Databases
from tests.conftest import PG_URL, require_postgres

KINDS = Path(__file__).resolve().parent / "kinds"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_option(request: pytest.FixtureRequest) -> str | None:
    """What `formloom test --db` takes: None (SQLite), or the PostgreSQL test database."""
    if request.param == "postgresql":
        require_postgres()
        return PG_URL
    return None


@pytest.fixture
def databases(db_option: str | None) -> Databases:
    """Fresh databases for scenario runs, on SQLite and on PostgreSQL."""
    return Databases(db_option)


@pytest.fixture
def kinds(tmp_path: Path) -> Path:
    """A copy of the kinds pack (tests/builder/scenarios/kinds), free to change."""
    return Path(shutil.copytree(KINDS, tmp_path / "kinds"))
