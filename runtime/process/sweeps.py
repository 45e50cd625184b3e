"""Automatic transitions after a settings change: a sweep over the records it may move.

An automatic transition is taken when a write to the record makes its guard hold. A
change to a single (settings) form recomputes every formula that reads it inside the
database, on all records at once and with no write of their own, so a record whose
guard now holds — a lead whose score reaches a lowered MQL threshold — would wait for
its next edit. Such a change therefore queues one `sweep` job per form whose workflow
has automatic transitions. The worker selects, in SQL, the records in a state that an
automatic transition leaves and whose guard holds, and takes the transitions for each
through the engine, `BATCH` records per job; a full batch queues the next one.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from sqlalchemy import Connection, false, or_, select, true
from sqlalchemy.sql.elements import ColumnElement

from runtime.expressions.syntax import ExpressionError
from runtime.expressions.to_sql import to_sql
from runtime.identity.actor import SYSTEM
from runtime.process import jobs
from runtime.process.workflows import take_automatic
from runtime.records.compiled import CompiledApp, CompiledForm
from runtime.records.errors import NotFound
from runtime.records.query import sql_scope, where_condition
from runtime.records.values import ValueProblem

if TYPE_CHECKING:
    from runtime.process.engine import ProcessEngine

BATCH = 200
KIND = "sweep"


def schedule(conn: Connection, app: CompiledApp, now: dt.datetime) -> None:
    """Queue a sweep of every form of `app` whose workflow has automatic transitions."""
    for workflow in app.app.workflows:
        if any(t.auto for t in workflow.transitions):
            key = f"{KIND}:{app.app.app}:{workflow.form}:{now.isoformat()}"
            jobs.enqueue(conn, KIND, key, now, {"after": 0}, now, app=app.app.app, form=workflow.form)


def fire(engine: ProcessEngine, conn: Connection, job: jobs.Job) -> None:
    """Take the automatic transitions that now hold on the next batch of records."""
    try:
        app, form = engine.service.resolve(str(job.app), str(job.form))
    except NotFound:
        return  # the form left the app since the sweep was queued
    after = int(job.payload.get("after", 0))
    ids = _candidates(conn, form, after)
    actor = SYSTEM.via("workflow")
    for record_id in ids:
        try:
            take_automatic(engine, conn, engine.target(app.app.app, form.key, record_id), actor)
        except NotFound:
            continue  # deleted meanwhile
    if len(ids) == BATCH:
        now = engine.now()
        key = f"{KIND}:{app.app.app}:{form.key}:{now.isoformat()}:{ids[-1]}"
        jobs.enqueue(conn, KIND, key, now, {"after": ids[-1]}, now, app=app.app.app, form=form.key)


def _candidates(conn: Connection, form: CompiledForm, after: int) -> list[int]:
    """Ids above `after` in a state left by an automatic transition whose guard holds (SQL)."""
    workflow = form.app.workflow_of(form.key)
    if workflow is None:
        return []
    table = form.table
    held: list[ColumnElement[bool]] = []
    for state in workflow.states:
        for transition in workflow.leaving(state.key):
            if transition.auto:
                in_state = table.c[workflow.field] == state.key
                held.append(in_state & _guard(form, transition.guard, conn.dialect.name))
    query = (
        select(table.c.id).where(table.c.id > after, or_(false(), *held)).order_by(table.c.id).limit(BATCH)
    )
    if form.form.duplicates:
        query = query.where(table.c._merged_into.is_(None))  # merged records are closed
    return [int(i) for i in conn.execute(query).scalars()]


def _guard(form: CompiledForm, text: str | None, dialect: str) -> ColumnElement[bool]:
    """The guard in SQL; with no guard, or one SQL cannot express, every record of the state
    is a candidate and the engine decides in Python."""
    if text is None:
        return true()
    try:
        return to_sql(where_condition(form, text), sql_scope(form, dialect))
    except (ValueProblem, ExpressionError):
        return true()
