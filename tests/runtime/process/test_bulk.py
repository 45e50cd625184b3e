"""Timers fired together give the results of firing each alone, in a few statements per batch."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import select

from runtime.boot import Runtime, start
from runtime.process.engine import engine_for
from runtime.process.worker import Worker
from runtime.schema.system import jobs
from tests.support import ManualClock, count_queries, write_files, write_pack

START = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
ITEM = """
form: item
label: Item
fields:
  - {key: title, type: text}
  - {key: status, type: select, options: [open, closed]}
  - {key: fired, type: integer, default: 0, max: 1}
  - {key: note, type: text}
  - {key: doubled, type: integer, formula: "COALESCE(fired, 0) * 2"}
"""
WORKFLOW = """
workflow: item_flow
form: item
field: status
states: [{key: open, initial: true}, {key: closed}]
transitions: [{action: close, from: open, to: closed}]
timers:
  - {key: plain, state: open, after: 1m, effects: [{set: {note: "CONCAT('seen ', title)"}}]}
  - {key: computed, state: open, after: 2m, effects: [{set: {fired: "fired + 1"}}]}
"""


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def app(db_url: str, tmp_path: Path, clock: ManualClock) -> Runtime:
    pack = write_files(write_pack(tmp_path / "pack", {"item": ITEM}), {"workflows/item.yaml": WORKFLOW})
    return start([pack], db_url, tmp_path / "files", clock=clock)


def history(runtime: Runtime, record: int) -> list[tuple[str, str, dict[str, object]]]:
    return [
        (h["action"], h["channel"], h["changes"]) for h in runtime.service.history("t", "item", record)[1:]
    ]


def test_a_batch_of_plain_timers_fires_together_like_each_alone(app: Runtime, clock: ManualClock) -> None:
    items = [r["id"] for r in app.service.create_many("t", "item", [{"title": f"i{n}"} for n in range(20)])]
    clock.now = START + dt.timedelta(minutes=1)
    worker = Worker(engine_for(app.service), "bulk", batch=20)
    with count_queries(app.engine) as statements:
        worker.run_until_idle()
    assert len(statements) < 20  # one job alone takes about ten
    assert [app.service.get("t", "item", i)["note"] for i in items] == [f"seen i{n}" for n in range(20)]
    assert history(app, items[3]) == [
        ("timer", "timer", {"timer": "plain", "state": "open", "round": 0}),
        ("update", "timer", {"note": [None, "seen i3"]}),
    ]
    alone = app.service.create("t", "item", {"title": "solo"})["id"]
    clock.now = START + dt.timedelta(minutes=2)
    Worker(engine_for(app.service), "solo", batch=20).run_until_idle()  # one plain timer: fired alone
    assert history(app, alone)[:2] == [
        ("timer", "timer", {"timer": "plain", "state": "open", "round": 0}),
        ("update", "timer", {"note": [None, "seen solo"]}),
    ]


def test_a_field_a_formula_reads_is_set_one_record_at_a_time(app: Runtime, clock: ManualClock) -> None:
    items = [r["id"] for r in app.service.create_many("t", "item", [{"title": f"i{n}"} for n in range(5)])]
    clock.now = START + dt.timedelta(minutes=2)
    Worker(engine_for(app.service), "w", batch=20).run_until_idle()
    assert [
        (app.service.get("t", "item", i)["fired"], app.service.get("t", "item", i)["doubled"]) for i in items
    ] == [(1, 2)] * 5


def test_a_value_its_field_refuses_fails_the_job_as_it_would_alone(app: Runtime, clock: ManualClock) -> None:
    items = [
        r["id"]
        for r in app.service.create_many("t", "item", [{"title": f"i{n}", "fired": 1} for n in range(3)])
    ]
    clock.now = START + dt.timedelta(minutes=2)
    Worker(engine_for(app.service), "w", batch=20).run_until_idle()
    with app.engine.connect() as conn:
        states = conn.execute(
            select(jobs.c.status, jobs.c.attempts).where(jobs.c.key.like("%:computed:%"))
        ).all()
    assert sorted(states) == [("pending", 1)] * 3  # fired would be 2, above max 1: retried later
    assert [app.service.get("t", "item", i)["fired"] for i in items] == [1, 1, 1]
