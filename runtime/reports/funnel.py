"""A funnel: per stage, the records that reached a state — in one UNION ALL statement.

A record reached state S when it is in S now or the history holds a transition of it
into S: a lead that became an opportunity still counts as having been MQL. Records
imported straight into a later state count from that state on.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Select, and_, func, literal, or_, select, true, union_all

from runtime.expressions.to_sql import Guard, to_sql
from runtime.model.dashboard import Stage, Widget
from runtime.records.compiled import CompiledApp
from runtime.records.query import sql_scope
from runtime.reports.params import Params
from runtime.reports.widgets import checked_on, param_conditions
from runtime.schema.system import audit

SQL = Any


def funnel_statement(
    app: CompiledApp,
    widget: Widget,
    scopes: dict[str, SQL | None],
    params: Params,
    team: tuple[int, ...],
    dialect: str,
    now: dt.datetime,
    guard: Guard | None = None,
) -> Select[Any]:
    """Stage number and count, one row per stage, from one statement.

    `guard` is the viewer's row scope on linked forms, for the stages' conditions.
    """
    parts = [
        _stage(app, index, stage, scopes.get(stage.source), params, team, dialect, now, guard)
        for index, stage in enumerate(widget.stages)
    ]
    both = union_all(*parts).subquery("stages")
    return select(both).order_by(both.c.stage)


def _stage(
    app: CompiledApp,
    index: int,
    stage: Stage,
    scope: SQL | None,
    params: Params,
    team: tuple[int, ...],
    dialect: str,
    now: dt.datetime,
    guard: Guard | None,
) -> Select[Any]:
    form = app.form(stage.source)
    table = form.table
    where: list[SQL] = []
    if form.form.duplicates:
        where.append(table.c._merged_into.is_(None))
    if scope is not None:
        where.append(scope)
    if stage.where is not None:
        checked = checked_on(form, stage.where)
        expression_scope = sql_scope(form, dialect, now)
        expression_scope.guard = guard
        where.append(to_sql(checked, expression_scope))
    where.extend(param_conditions(app, form, None, params, team))
    if stage.reached is not None:
        workflow = app.app.workflow_of(form.key)
        assert workflow is not None
        moved_in = table.c.id.in_(  # uncorrelated: one hashed pass over the transitions
            select(audit.c.record_id).where(
                audit.c.app == app.app.app,
                audit.c.form == form.key,
                audit.c.action == "transition",
                audit.c.changes["to"].as_string() == stage.reached,
            )
        )
        where.append(or_(table.c[workflow.field] == stage.reached, moved_in))
    counted: Any = select(literal(index).label("stage"), func.count().label("reached"))
    found: Select[Any] = counted.select_from(table).where(and_(true(), *where))
    return found
