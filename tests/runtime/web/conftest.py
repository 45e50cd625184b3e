"""Fixtures of the web tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.runtime.process.approval_pack import Desk


@pytest.fixture
def desk(db_url: str, tmp_path: Path) -> Iterator[Desk]:
    """The approval pack of the process tests, served on a manual clock (see approval_pack.py)."""
    built = Desk(db_url, tmp_path)
    yield built
    built.runtime.engine.dispose()
