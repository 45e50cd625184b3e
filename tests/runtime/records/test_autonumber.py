"""Auto numbers stay unique and gap-free when many writers insert at once."""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from runtime.boot import start
from runtime.records.autonumber import render_period
from runtime.records.errors import InvalidRecord
from runtime.records.store import Store
from tests.support import write_pack

QUOTE = """\
form: quote
label: Quote
fields:
  - {key: number, type: auto_number, pattern: "QT-{YYYY}-{#####}"}
  - {key: amount, type: integer, min: 0}
"""


def test_the_pattern_takes_the_date_parts() -> None:
    assert render_period("QT-{YYYY}{MM}{DD}-{YY}-{###}", dt.date(2026, 3, 4)) == "QT-20260304-26-{###}"


def test_concurrent_inserts_get_consecutive_numbers(db_url: str, tmp_path: Path) -> None:
    runtime = start([write_pack(tmp_path / "pack", {"quote": QUOTE})], db_url, tmp_path / "f")
    service = runtime.service

    def insert(i: int) -> str | None:
        try:
            return str(service.create("t", "quote", {"amount": -1 if i % 5 == 0 else i})["number"])
        except InvalidRecord:
            return None  # refused inserts must not use up a number

    with ThreadPoolExecutor(max_workers=8) as pool:
        numbers = [n for n in pool.map(insert, range(60)) if n is not None]
    year = dt.datetime.now(dt.UTC).year
    assert sorted(numbers) == [f"QT-{year}-{i:05d}" for i in range(1, 49)]
    runtime.engine.dispose()


def test_a_failed_insert_gives_its_number_back(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = start([write_pack(tmp_path / "pack", {"quote": QUOTE})], db_url, tmp_path / "f")
    service = runtime.service
    first = service.create("t", "quote", {"amount": 1})["number"]

    def crash(*_args: object) -> None:
        raise RuntimeError("crash after the number was taken")

    with monkeypatch.context() as patch:
        patch.setattr(Store, "read_many", crash)
        with pytest.raises(RuntimeError):
            service.create("t", "quote", {"amount": 2})
    second = service.create("t", "quote", {"amount": 3})["number"]
    assert int(second[-5:]) == int(first[-5:]) + 1
    runtime.engine.dispose()
