"""Workflow timers: scheduled as jobs when a record enters a state, cancelled when it leaves.

A timer's time is an offset after entering its state, or before/after a date field
(a date counts from the start of that day in the app's time zone). A time already
past fires at once. When the date field changes, the timer moves. When a timer fires
(see `fire`), its `when` is checked, its effects run with the job's key (so a retried
job notifies nobody twice), the step goes into the record's history, and a repeating
timer queues its next round.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, select

from runtime.identity.actor import SYSTEM
from runtime.model.process import Timer, Workflow
from runtime.process import jobs
from runtime.process.effects import run_effects
from runtime.process.expressions import holds
from runtime.process.history import note
from runtime.process.workdays import shifted
from runtime.records.errors import NotFound
from runtime.schema.system import process_instances

if TYPE_CHECKING:
    from runtime.process.engine import ProcessEngine, Target

Record = dict[str, Any]


def schedule(
    engine: ProcessEngine,
    conn: Connection,
    target: Target,
    workflow: Workflow,
    instance: Any,
    row: Record,
    previous: str | None = None,
) -> None:
    """Queue the timers of the state the instance has just entered.

    A timer whose time has passed fires at once — unless the record comes from another
    of the timer's own states, where it already had its chance.
    """
    now = engine.now()
    for timer in workflow.timers:
        if instance["state"] not in timer.state:
            continue
        due = due_time(engine, target, timer, instance, row)
        if due is not None and due < now and previous in timer.state:
            continue
        _queue(engine, conn, target, timer, instance, row, round_=0, due=due)


def reschedule(
    engine: ProcessEngine, conn: Connection, target: Target, changed: set[str], row: Record
) -> None:
    """Move pending timers whose date field changed."""
    current = target.app.app.workflow_of(target.form.key)
    if current is None or not any(t.field in changed for t in current.timers):
        return  # the published workflow has no timer on these fields
    instance = engine.workflow_instance(conn, target)
    workflow = engine.workflow_of(conn, target, instance) if instance is not None else None
    if workflow is None:
        return
    for timer in workflow.timers:
        if timer.field in changed and instance["state"] in timer.state:
            jobs.cancel(
                conn,
                jobs.table.c.instance_id == instance["id"],
                jobs.table.c.kind == "timer",
                jobs.table.c.key.like(f"timer:{instance['id']}:%:{_escaped(timer.key)}:%", escape="\\"),
            )
            _queue(engine, conn, target, timer, instance, row, round_=0)


def due_time(
    engine: ProcessEngine, target: Target, timer: Timer, instance: Any, row: Record
) -> dt.datetime | None:
    """When the timer fires (None when its date field is empty); `wd` counts working days."""
    app = target.app.app
    if timer.field is None:
        start = _aware(instance["entered_at"])
    else:
        value = row.get(timer.field)
        if value is None:
            return None
        if not isinstance(value, dt.datetime):
            value = dt.datetime.combine(value, dt.time(0), tzinfo=app.zone()).astimezone(dt.UTC)
        start = _aware(value)
    sign = -1 if timer.before is not None else 1
    return shifted(start, timer.before or timer.after or "0m", app.calendar, app.zone(), sign=sign)


def _queue(
    engine: ProcessEngine,
    conn: Connection,
    target: Target,
    timer: Timer,
    instance: Any,
    row: Record,
    round_: int,
    due: dt.datetime | None = None,
) -> None:
    now = engine.now()
    due = due or due_time(engine, target, timer, instance, row)
    if due is None:
        return
    app, form, record_id = target.where
    key = f"timer:{instance['id']}:{instance['version']}:{timer.key}:{round_}:{int(due.timestamp())}"
    payload = {
        "timer": timer.key,
        "state": instance["state"],
        "entered": instance["version"],
        "round": round_,
    }
    jobs.enqueue(
        conn,
        "timer",
        key,
        max(due, now),
        payload,
        now,
        app=app,
        form=form,
        record_id=record_id,
        instance_id=instance["id"],
    )


def fire(engine: ProcessEngine, conn: Connection, job: jobs.Job) -> None:
    """Run a due timer job (inside the job's transaction).

    The record is locked first, as every process step does, so a transition or decision
    running at the same time either ends before the instance is read here (and the
    timer finds the record gone from its state) or waits until the timer is done.
    """
    try:
        target = engine.target(str(job.app), str(job.form), int(job.record_id or 0))
        row = engine.lock(conn, target)
    except NotFound:
        return
    instance = (
        conn.execute(select(process_instances).where(process_instances.c.id == job.instance_id))
        .mappings()
        .first()
    )
    if instance is None or instance["ended_at"] is not None or instance["state"] != job.payload.get("state"):
        return  # the record left the state: the timer is void
    if instance["version"] != job.payload.get("entered"):
        return  # the record left the state and came back: this timer belongs to the earlier stay
    definition = engine.versions.app(conn, target.app.app.app, instance["definition_version"])
    workflow = definition.workflow_of(target.form.key)
    timer = (
        next((t for t in workflow.timers if t.key == job.payload.get("timer")), None) if workflow else None
    )
    if timer is None:
        return
    actor = SYSTEM.via("timer")
    condition = engine.expr(definition, target.form.key, timer.when)
    if holds(condition, engine.context(conn, target, row, [condition])):
        note(
            conn,
            target,
            "timer",
            actor,
            {"timer": timer.key, "state": instance["state"], "round": job.payload.get("round", 0)},
        )
        run_effects(engine, conn, target, definition, timer.effects, actor, key=job.key, row=row)
    round_ = int(job.payload.get("round", 0))
    if timer.repeat is not None and round_ < timer.repeat.times:
        still = (
            conn.execute(select(process_instances).where(process_instances.c.id == instance["id"]))
            .mappings()
            .first()
        )
        if still is not None and still["version"] == instance["version"] and still["ended_at"] is None:
            app = target.app.app
            next_due = shifted(_aware(job.due_at), timer.repeat.every, app.calendar, app.zone())
            _queue(engine, conn, target, timer, instance, row, round_ + 1, due=next_due)


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def _escaped(text: str) -> str:
    """`text` for a LIKE pattern: its `_` and `%` match only themselves."""
    return text.replace("\\", "\\\\").replace("_", "\\_").replace("%", "\\%")
