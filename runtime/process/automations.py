"""Automations: effects run when records are created, updated or transitioned, or on a schedule.

Event automations run inside the transaction of the change that triggers them.
Scheduled ones are jobs: each run handles every record of the form that meets `when`
(found with one SQL query) and queues the next run at the following cron time, under
a key made of the automation and that time, so two workers never queue it twice.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from cronsim import CronSim
from sqlalchemy import Connection, select

from runtime.expressions.checker import check
from runtime.expressions.parser import parse
from runtime.expressions.to_sql import to_sql
from runtime.expressions.types import scope_for
from runtime.identity.actor import SYSTEM, Actor
from runtime.model.process import Automation
from runtime.process import jobs
from runtime.process.effects import run_effects
from runtime.process.expressions import holds
from runtime.process.history import note
from runtime.process.webhooks import switched_on
from runtime.records.query import sql_scope

if TYPE_CHECKING:
    from runtime.process.engine import ProcessEngine, Target

Record = dict[str, Any]
MAX_SCHEDULED_RECORDS = 10_000


def _of(target: Target, trigger: str) -> list[Automation]:
    return [a for a in target.app.app.automations if a.form == target.form.key and a.trigger == trigger]


def on_created(engine: ProcessEngine, conn: Connection, target: Target, actor: Actor) -> None:
    """Run `created` automations whose condition holds."""
    for automation in _of(target, "created"):
        _run(engine, conn, target, automation, actor)


def on_updated(
    engine: ProcessEngine,
    conn: Connection,
    target: Target,
    before: Record,
    after: Record,
    changed: set[str],
    actor: Actor,
) -> None:
    """Run `updated` automations: narrowed to changed `fields`, or to a condition that `becomes` true."""
    for automation in _of(target, "updated"):
        if automation.fields and not changed & set(automation.fields):
            continue
        if automation.becomes is not None and not _became_true(
            engine, conn, target, automation.becomes, before, after
        ):
            continue
        _run(engine, conn, target, automation, actor)


def on_transitioned(
    engine: ProcessEngine,
    conn: Connection,
    target: Target,
    action: str,
    to: str,
    before: Record,
    after: Record,
    actor: Actor,
) -> None:
    """Run `transitioned` automations for this action or target state."""
    for automation in _of(target, "transitioned"):
        if automation.action not in (None, action) or automation.to not in (None, to):
            continue
        _run(engine, conn, target, automation, actor)


def _became_true(
    engine: ProcessEngine, conn: Connection, target: Target, text: str, before: Record, after: Record
) -> bool:
    expr = engine.expr(target.app.app, target.form.key, text)
    now_true = holds(expr, engine.context(conn, target, after, [expr]))
    return now_true and not holds(expr, engine.context(conn, target, before, [expr]))


def _run(
    engine: ProcessEngine, conn: Connection, target: Target, automation: Automation, actor: Actor
) -> None:
    effects = [effect for effect in automation.effects if switched_on(effect)]
    if not effects:
        return  # only webhooks whose URL is not configured here: nothing to do, nothing to note
    definition = target.app.app
    condition = engine.expr(definition, target.form.key, automation.when)
    row = engine.stored(conn, target)
    if not holds(condition, engine.context(conn, target, row, [condition]), actor.user_id):
        return
    acting = engine.engine_actor(actor, "automation")
    note(conn, target, "automation", acting, {"automation": automation.automation})
    run_effects(engine, conn, target, definition, effects, acting)


# -- schedules ---------------------------------------------------------------------------


def ensure_schedules(engine: ProcessEngine, conn: Connection) -> int:
    """Queue the next run of every scheduled automation that has none pending; answers how many."""
    queued = 0
    now = engine.now()
    for app in engine.service.apps.values():
        for automation in app.app.automations:
            if automation.trigger != "schedule":
                continue
            prefix = f"schedule:{app.app.app}:{automation.automation}:"
            pending = conn.execute(
                select(jobs.table.c.id).where(
                    jobs.table.c.key.like(prefix + "%"), jobs.table.c.status.in_((jobs.PENDING, jobs.RUNNING))
                )
            ).first()
            if pending is None:
                _queue_next(conn, app.app.app, automation, now, now, app.app.zone())
                queued += 1
    return queued


def _queue_next(
    conn: Connection, app: str, automation: Automation, after: dt.datetime, now: dt.datetime, zone: dt.tzinfo
) -> None:
    """Queue the run at the first cron time after `after`; cron times are read in the app's time zone."""
    assert automation.cron is not None
    local = after.astimezone(zone).replace(tzinfo=None)
    due = next(CronSim(automation.cron, local)).replace(tzinfo=zone).astimezone(dt.UTC)
    key = f"schedule:{app}:{automation.automation}:{due.isoformat()}"
    payload = {"automation": automation.automation}
    jobs.enqueue(conn, "schedule", key, due, payload, now, app=app, form=automation.form)


def run_schedule(engine: ProcessEngine, conn: Connection, job: jobs.Job) -> None:
    """Run a scheduled automation on every record that meets its condition, then queue the next run."""
    app = engine.service.apps.get(str(job.app))
    automation = None
    if app is not None:
        automation = next(
            (a for a in app.app.automations if a.automation == job.payload.get("automation")), None
        )
    if app is None or automation is None or automation.trigger != "schedule":
        return  # the automation was removed by a publish
    form = app.form(automation.form)
    stmt = select(form.table.c.id).order_by(form.table.c.id).limit(MAX_SCHEDULED_RECORDS)
    if automation.when is not None:
        definition = app.app
        form_model = definition.form(automation.form)
        assert form_model is not None
        checked = check(parse(automation.when), scope_for(definition, form_model), automation.when)
        stmt = stmt.where(to_sql(checked, sql_scope(form, conn.dialect.name, engine.now())))
    ids = list(conn.execute(stmt).scalars())
    actor = SYSTEM.via("automation")
    for record_id in ids:
        target = engine.target(app.app.app, automation.form, record_id)
        note(
            conn,
            target,
            "automation",
            actor,
            {"automation": automation.automation, "schedule": automation.cron},
        )
        run_effects(engine, conn, target, app.app, automation.effects, actor, key=f"{job.key}:{record_id}")
    _queue_next(conn, app.app.app, automation, job.due_at, engine.now(), app.app.zone())
