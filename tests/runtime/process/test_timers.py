"""Timers: relative to entering a state or to a date field, repeating, cancelled, moved; on a test clock."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import select

from runtime.boot import Runtime, start
from runtime.db import write
from runtime.identity.directory import create_department, create_user, user_id_of
from runtime.process.engine import engine_for
from runtime.process.worker import Worker
from runtime.schema.system import jobs, notifications
from tests.support import ManualClock, write_files, write_pack

TASK = """
form: task
label: Task
fields:
  - {key: title, type: text}
  - {key: due, type: date}
  - {key: status, type: select, options: [todo, waiting, done], default: todo}
  - {key: owner, type: user}
  - {key: assignee, type: user}
  - {key: pings, type: integer, default: 0}
"""
WORKFLOW = """
workflow: task_flow
form: task
field: status
states: [{key: todo, initial: true}, {key: waiting}, {key: done, final: true}]
transitions:
  - {action: wait, from: todo, to: waiting}
  - {action: resume, from: waiting, to: todo}
  - {action: close, from: [todo, waiting], to: done, system: true}
timers:
  - key: nudge
    state: todo
    after: 2h
    repeat: {every: 1h, times: 2}
    effects: [{set: {pings: "pings + 1"}}]
  - key: never
    state: todo
    after: 3h
    when: "pings < 0"
    effects: [{set: {title: "'never'"}}]
  - key: due_soon
    state: [todo, waiting]
    field: due
    before: 1d
    effects: [{notify: {to: {user_field: owner}, message: "{{ record.title }} is due tomorrow"}}]
  - key: overdue
    state: [todo, waiting]
    field: due
    after: 2d
    effects:
      - assign: {field: assignee, to: {manager: 1, of: owner}}
      - transition: close
"""
START = dt.datetime(2026, 12, 1, 2, 0, tzinfo=dt.UTC)  # 10:00 in Shanghai


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def app(db_url: str, tmp_path: Path, clock: ManualClock) -> Runtime:
    pack = write_pack(tmp_path / "pack", {"task": TASK})
    (pack / "app.yaml").write_text("app: t\nlabel: T\nversion: 1.0.0\ntimezone: Asia/Shanghai\n")
    write_files(pack, {"workflows/task.yaml": WORKFLOW})
    runtime = start([pack], db_url, tmp_path / "files", clock=clock)
    with write(runtime.engine) as conn:
        create_user(conn, "boss", None)
        create_user(conn, "worker", None)
        create_department(conn, "team", "Team", manager="boss")
        from sqlalchemy import update

        from runtime.schema.system import users

        conn.execute(update(users).where(users.c.username == "worker").values(department_id=1))
    return runtime


def run_due(runtime: Runtime) -> int:
    return Worker(engine_for(runtime.service), "test").run_until_idle().done


def record(runtime: Runtime, record_id: int) -> dict[str, object]:
    return runtime.service.get("t", "task", record_id)


def take(runtime: Runtime, record_id: int, action: str) -> None:
    from runtime.identity.actor import SYSTEM
    from runtime.process import workflows

    engine = engine_for(runtime.service)
    with write(runtime.engine) as conn:
        workflows.take(engine, conn, engine.target("t", "task", record_id), action, SYSTEM)


def owner(runtime: Runtime, username: str) -> int:
    with write(runtime.engine) as conn:
        return user_id_of(conn, username)


def test_a_timer_fires_after_entering_the_state_and_repeats_its_rounds(
    app: Runtime, clock: ManualClock
) -> None:
    task = app.service.create("t", "task", {"title": "a"})["id"]
    clock.now += dt.timedelta(hours=1, minutes=59)
    assert run_due(app) == 0
    for hour, expected in ((2, 1), (3, 2), (4, 3), (9, 3)):
        clock.now = START + dt.timedelta(hours=hour)
        run_due(app)
        assert record(app, task)["pings"] == expected, hour
    history = [h for h in app.service.history("t", "task", task) if h["action"] == "timer"]
    assert [(h["changes"]["timer"], h["changes"]["round"]) for h in history] == [
        ("nudge", 0),
        ("nudge", 1),
        ("nudge", 2),
    ]


def test_a_false_condition_skips_the_effects(app: Runtime, clock: ManualClock) -> None:
    task = app.service.create("t", "task", {"title": "a"})["id"]
    clock.now += dt.timedelta(hours=3)
    run_due(app)
    assert record(app, task)["title"] == "a"
    with app.engine.connect() as conn:
        never = conn.execute(select(jobs.c.status).where(jobs.c.key.like("%:never:%"))).scalar()
    assert never == "done"


def test_leaving_the_state_cancels_its_timers(app: Runtime, clock: ManualClock) -> None:
    task = app.service.create("t", "task", {"title": "a"})["id"]
    clock.now += dt.timedelta(hours=1)
    take(app, task, "wait")
    clock.now += dt.timedelta(hours=10)
    run_due(app)
    assert record(app, task)["pings"] == 0
    with app.engine.connect() as conn:
        cancelled = conn.execute(select(jobs.c.key).where(jobs.c.status == "cancelled")).scalars().all()
    assert any(":nudge:" in key for key in cancelled)


def test_coming_back_to_a_state_starts_its_timers_again(app: Runtime, clock: ManualClock) -> None:
    task = app.service.create("t", "task", {"title": "a"})["id"]
    clock.now += dt.timedelta(hours=1)
    take(app, task, "wait")
    take(app, task, "resume")
    clock.now += dt.timedelta(hours=1, minutes=30)  # 2.5 h after creation, 1.5 h after coming back
    run_due(app)
    assert record(app, task)["pings"] == 0
    clock.now += dt.timedelta(minutes=30)
    run_due(app)
    assert record(app, task)["pings"] == 1


def test_a_date_timer_counts_from_the_start_of_the_day_in_the_app_time_zone(
    app: Runtime, clock: ManualClock
) -> None:
    task = app.service.create(
        "t", "task", {"title": "report", "due": "2026-12-05", "owner": owner(app, "worker")}
    )
    with app.engine.connect() as conn:
        due = conn.execute(select(jobs.c.due_at).where(jobs.c.key.like("%:due_soon:%"))).scalar_one()
    local_midnight = dt.datetime(2026, 12, 5, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    assert due.astimezone(dt.UTC) == (local_midnight - dt.timedelta(days=1)).astimezone(dt.UTC)
    clock.now = due - dt.timedelta(minutes=1)
    run_due(app)
    clock.now = due
    run_due(app)
    with app.engine.connect() as conn:
        messages = conn.execute(select(notifications.c.message)).scalars().all()
    assert messages == ["report is due tomorrow"]
    assert task["status"] == "todo"


def test_changing_the_date_moves_the_timer(app: Runtime, clock: ManualClock) -> None:
    task = app.service.create(
        "t", "task", {"title": "a", "due": "2026-12-05", "owner": owner(app, "worker")}
    )["id"]
    app.service.update("t", "task", task, {"due": "2026-12-20"})
    clock.now = dt.datetime(2026, 12, 6, tzinfo=dt.UTC)
    run_due(app)
    with app.engine.connect() as conn:
        sent = conn.execute(select(notifications.c.id)).all()
        pending = (
            conn.execute(
                select(jobs.c.due_at).where(jobs.c.key.like("%:due_soon:%"), jobs.c.status == "pending")
            )
            .scalars()
            .all()
        )
    assert sent == []
    assert [d.astimezone(dt.UTC).date() for d in pending] == [dt.date(2026, 12, 18)]  # 19th 00:00 +08:00


def test_a_time_already_past_fires_at_once_but_only_on_the_first_stay(
    app: Runtime, clock: ManualClock
) -> None:
    task = app.service.create(
        "t", "task", {"title": "late", "due": "2026-12-02", "owner": owner(app, "worker")}
    )["id"]
    run_due(app)  # due 2 Dec: the day before started on 1 Dec 00:00 (+08:00), already past
    take(app, task, "wait")  # from one of the timer's states to another: no second reminder
    run_due(app)
    with app.engine.connect() as conn:
        assert len(conn.execute(select(notifications.c.id)).all()) == 1


def test_an_escalation_reassigns_to_the_manager_and_takes_a_transition(
    app: Runtime, clock: ManualClock
) -> None:
    task = app.service.create(
        "t", "task", {"title": "a", "due": "2026-12-02", "owner": owner(app, "worker")}
    )["id"]
    clock.now = dt.datetime(2026, 12, 4, tzinfo=dt.UTC)
    run_due(app)
    done = record(app, task)
    assert done["status"] == "done"
    assert done["assignee"]["id"] == owner(app, "boss")  # type: ignore[index]
    channels = {h["channel"] for h in app.service.history("t", "task", task) if h["action"] == "update"}
    assert channels == {"timer"}


def test_a_date_moved_away_and_back_brings_its_timer_back(app: Runtime, clock: ManualClock) -> None:
    task = app.service.create(
        "t", "task", {"title": "a", "due": "2026-12-10", "owner": owner(app, "worker")}
    )["id"]
    app.service.update("t", "task", task, {"due": "2026-12-20"})
    app.service.update("t", "task", task, {"due": "2026-12-10"})
    with app.engine.connect() as conn:
        pending = (
            conn.execute(
                select(jobs.c.due_at).where(
                    jobs.c.key.like("%:due\\_soon:%", escape="\\"), jobs.c.status == "pending"
                )
            )
            .scalars()
            .all()
        )
    assert [d.astimezone(dt.UTC) for d in pending] == [dt.datetime(2026, 12, 8, 16, 0, tzinfo=dt.UTC)]
