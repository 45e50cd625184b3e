"""Shared set-up of the sales pack's tests: the app started with its demo users and data.

A test file that needs a test clock defines its own `clock` fixture; one that needs another
start (no demo data, generated data) defines its own `sales` fixture.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from runtime.boot import Runtime, start
from runtime.records.store import Clock
from runtime.schema.types import utcnow
from runtime.seed import demo_file, seed_demo, seed_users
from tests.support import SALES


@pytest.fixture
def clock() -> Clock:
    """The runtime's clock: the real one, unless a test file overrides this fixture."""
    return utcnow


@pytest.fixture
def sales(db_url: str, tmp_path: Path, clock: Clock) -> Iterator[Runtime]:
    """The sales pack, started on the test's database with its demo users and demo data."""
    runtime = start([SALES], db_url, tmp_path / "files", clock=clock)
    people, data = demo_file(SALES, "users.yaml"), demo_file(SALES)
    assert people is not None and data is not None
    seed_users(runtime.service, people)
    seed_demo(runtime.service, "sales", data)
    yield runtime
    runtime.engine.dispose()
