"""Rates counted in the database (runtime/identity/rate_limit.py): a sliding window per name and
address, atomic under parallel requests, and kept apart from sign-in throttling. Both databases."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import Engine, func, select

from runtime.db import make_engine
from runtime.identity import rate_limit, throttle
from runtime.schema.migrate import upgrade_system_tables
from runtime.schema.system import sign_in_counts

T0 = dt.datetime(2026, 5, 11, 9, 0, tzinfo=dt.UTC)  # the start of a minute
MINUTE = dt.timedelta(minutes=1)


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    built = make_engine(db_url)
    upgrade_system_tables(built)
    yield built
    built.dispose()


def hit(engine: Engine, at: dt.datetime, address: str = "198.51.100.1", most: int = 3) -> rate_limit.Verdict:
    return rate_limit.hit(engine, "intake", "t/contact", address, most, MINUTE, at)


def test_the_limit_holds_per_address_and_slides(engine: Engine) -> None:
    assert [hit(engine, T0).allowed for _ in range(3)] == [True] * 3
    refused = hit(engine, T0 + dt.timedelta(seconds=20))
    assert not refused.allowed and refused.retry_after == 41
    assert hit(engine, T0, address="198.51.100.2").allowed  # another address
    other_intake = rate_limit.hit(engine, "intake", "t/other", "198.51.100.1", 3, MINUTE, T0)
    assert other_intake.allowed
    # early in the next window most of the last one still counts (4 × 0.9 + 1 > 3) …
    assert not hit(engine, T0 + dt.timedelta(seconds=66)).allowed
    # … late in it, little does (4 × 0.1 + 2 ≤ 3)
    assert hit(engine, T0 + dt.timedelta(seconds=114)).allowed
    assert hit(engine, T0 + dt.timedelta(minutes=5)).allowed


def test_parallel_requests_each_get_a_count_of_their_own(engine: Engine) -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:
        verdicts = list(pool.map(lambda _: hit(engine, T0, most=5), range(20)))
    assert sum(v.allowed for v in verdicts) == 5


def test_sign_in_throttling_leaves_other_scopes_alone(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    day = dt.timedelta(days=1)
    rate_limit.hit(engine, "intake", "t/contact", "198.51.100.1", 100, day, T0)
    monkeypatch.setattr(throttle.secrets, "randbelow", lambda _: 0)  # purge on this attempt
    throttle.reserve(engine, "li", "198.51.100.1", T0 + dt.timedelta(hours=5))
    with engine.connect() as conn:
        kept = conn.execute(
            select(func.count()).select_from(sign_in_counts).where(sign_in_counts.c.scope == "intake")
        ).scalar_one()
    assert kept == 1  # a day's count outlives the sign-in purge of rows older than two hours
