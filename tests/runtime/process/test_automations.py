"""Automations: on create, on update (given fields, a condition becoming true), on transition, on a cron."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import select

from runtime.boot import Runtime, start
from runtime.db import write
from runtime.identity.actor import SYSTEM
from runtime.process import automations, workflows
from runtime.process.engine import engine_for
from runtime.process.worker import Worker
from runtime.records.errors import Conflict
from runtime.schema.system import jobs
from tests.support import ManualClock, write_files, write_pack

ITEM = """
form: item
label: Item
fields:
  - {key: title, type: text}
  - {key: price, type: integer, default: 0}
  - {key: stage, type: select, options: [new, live, gone], default: new}
  - {key: log, type: text}
  - {key: expires, type: date}
  - {key: ping, type: integer, default: 0}
  - {key: pong, type: integer, default: 0}
"""
WORKFLOW = """
workflow: item_flow
form: item
field: stage
states: [{key: new}, {key: live}, {key: gone, final: true}]
transitions:
  - {action: launch, from: new, to: live}
  - {action: retire, from: [new, live], to: gone}
"""
AUTOMATIONS = {
    "on_create": 'trigger: created\nwhen: "price > 10"\neffects: [{set: {log: "CONCAT(log, \'c\')"}}]',
    "on_title": "trigger: updated\nfields: [title]\neffects: [{set: {log: \"CONCAT(log, 't')\"}}]",
    "on_expensive": (
        'trigger: updated\nbecomes: "price >= 100"\neffects: [{set: {log: "CONCAT(log, \'e\')"}}]'
    ),
    "on_launch": "trigger: transitioned\naction: launch\neffects: [{set: {log: \"CONCAT(log, 'l')\"}}]",
    "on_gone": "trigger: transitioned\nto: gone\neffects: [{set: {log: \"CONCAT(log, 'g')\"}}]",
    "nightly": (
        'trigger: schedule\ncron: "0 2 * * *"\nwhen: "expires < TODAY() and stage != \'gone\'"\n'
        "effects: [{transition: retire}]"
    ),
    "ping": 'trigger: updated\nfields: [ping]\neffects: [{set: {pong: "pong + 1"}}]',
    "pong": 'trigger: updated\nfields: [pong]\neffects: [{set: {ping: "ping + 1"}}]',
}
START = dt.datetime(2026, 12, 1, 0, 0, tzinfo=dt.UTC)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def app(db_url: str, tmp_path: Path, clock: ManualClock) -> Runtime:
    pack = write_pack(tmp_path / "pack", {"item": ITEM})
    files = {"workflows/item.yaml": WORKFLOW}
    files.update(
        {f"automations/{k}.yaml": f"automation: {k}\nform: item\n{v}\n" for k, v in AUTOMATIONS.items()}
    )
    write_files(pack, files)
    return start([pack], db_url, tmp_path / "files", clock=clock)


def log(runtime: Runtime, record_id: int) -> str:
    return str(runtime.service.get("t", "item", record_id)["log"] or "")


def take(runtime: Runtime, record_id: int, action: str) -> None:
    engine = engine_for(runtime.service)
    with write(runtime.engine) as conn:
        workflows.take(engine, conn, engine.target("t", "item", record_id), action, SYSTEM)


def test_created_automations_run_when_their_condition_holds(app: Runtime) -> None:
    cheap = app.service.create("t", "item", {"title": "a", "price": 5})["id"]
    dear = app.service.create("t", "item", {"title": "b", "price": 50})["id"]
    assert (log(app, cheap), log(app, dear)) == ("", "c")
    entries = [h for h in app.service.history("t", "item", dear) if h["action"] == "automation"]
    assert [e["changes"]["automation"] for e in entries] == ["on_create"]


def test_updated_automations_follow_the_fields_they_watch(app: Runtime) -> None:
    item = app.service.create("t", "item", {"title": "a"})["id"]
    app.service.update("t", "item", item, {"price": 3})
    assert log(app, item) == ""
    app.service.update("t", "item", item, {"title": "renamed"})
    assert log(app, item) == "t"


def test_a_condition_that_becomes_true_runs_once_until_it_turns_false_again(app: Runtime) -> None:
    item = app.service.create("t", "item", {"title": "a"})["id"]
    for price in (150, 200, 50, 120):
        app.service.update("t", "item", item, {"price": price})
    assert log(app, item) == "ee"


def test_transitioned_automations_match_the_action_or_the_target_state(app: Runtime) -> None:
    item = app.service.create("t", "item", {"title": "a"})["id"]
    take(app, item, "launch")
    take(app, item, "retire")
    assert log(app, item) == "lg"


def test_a_scheduled_automation_runs_at_its_cron_times_on_the_records_it_selects(
    app: Runtime, clock: ManualClock
) -> None:
    old = app.service.create("t", "item", {"title": "old", "expires": "2026-11-30"})["id"]
    fresh = app.service.create("t", "item", {"title": "fresh", "expires": "2026-12-31"})["id"]
    engine = engine_for(app.service)
    with write(app.engine) as conn:
        assert automations.ensure_schedules(engine, conn) == 1
        assert automations.ensure_schedules(engine, conn) == 0  # already queued
    worker = Worker(engine, "test")
    clock.now = START + dt.timedelta(hours=1, minutes=59)
    worker.run_until_idle()
    assert app.service.get("t", "item", old)["stage"] == "new"
    clock.now = START + dt.timedelta(hours=2)
    worker.run_until_idle()
    assert app.service.get("t", "item", old)["stage"] == "gone"
    assert app.service.get("t", "item", fresh)["stage"] == "new"
    with app.engine.connect() as conn:
        queued = conn.execute(
            select(jobs.c.key, jobs.c.status).where(jobs.c.kind == "schedule").order_by(jobs.c.id)
        ).all()
    assert [status for _, status in queued] == ["done", "pending"]
    assert queued[1][0].endswith("2026-12-02T02:00:00+00:00")


def test_automations_that_trigger_each_other_for_ever_are_refused_and_change_nothing(app: Runtime) -> None:
    item = app.service.create("t", "item", {"title": "a"})["id"]
    with pytest.raises(Conflict) as caught:
        app.service.update("t", "item", item, {"ping": 1})
    assert caught.value.problems[0].code == "loop"
    assert app.service.get("t", "item", item)["ping"] == 0


def test_cron_times_are_read_in_the_app_time_zone() -> None:
    from zoneinfo import ZoneInfo

    from runtime.model.process import Automation

    nightly = Automation.model_validate(
        {
            "automation": "n",
            "form": "item",
            "trigger": "schedule",
            "cron": "0 2 * * *",
            "effects": [{"transition": "x"}],
        }
    )
    queued: list[dt.datetime] = []

    class Recorder:
        dialect = type("D", (), {"name": "sqlite"})()

        def execute(self, stmt: object) -> None:
            queued.append(stmt.compile().params["due_at"])  # type: ignore[attr-defined]

    automations._queue_next(Recorder(), "t", nightly, START, START, ZoneInfo("Asia/Shanghai"))  # type: ignore[arg-type]
    assert queued == [dt.datetime(2026, 12, 1, 18, 0, tzinfo=dt.UTC)]  # 02:00 on 2 Dec in Shanghai


def test_a_message_template_that_fails_is_sent_as_written(app: Runtime) -> None:
    from runtime.model.common import Labels
    from runtime.process.notifications import render

    assert render(Labels(en="{{ 1 // 0 }} left"), "en", {}) == "{{ 1 // 0 }} left"
    assert render(Labels(en="{{ record.title.missing.deeper }}!"), "en", {"title": "x"}) == "!"


def test_concurrent_updates_lose_no_effect(app: Runtime) -> None:
    from concurrent.futures import ThreadPoolExecutor

    item = app.service.create("t", "item", {"title": "a"})["id"]

    def bump(n: int) -> None:
        app.service.update("t", "item", item, {"title": f"t{n}"})

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(bump, range(16)))
    assert log(app, item) == "t" * 16  # every title change ran its automation once, none overwritten
