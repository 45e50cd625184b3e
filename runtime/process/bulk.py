"""Firing many due timers of one kind together, with a few statements for the whole batch.

A worker's batch often holds many jobs of the same timer (5,000 payment reminders fall
due the same night). When such a timer only sets plain fields of its own record —
fields nothing else computes from, checks or reacts to — the effects of every job of the
batch are computed in Python on rows read with one SELECT, checked by the fields'
converters, and written with one UPDATE per record in a single round trip; the history
entries and the done marks follow the same way. The results are those of firing each
timer alone: the same values, the same checks, the same history. Whatever does not
qualify — or fails a check — goes the ordinary way, one job at a time.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, bindparam, insert, select, update

from runtime.expressions.to_python import CURRENT_USER
from runtime.identity.actor import SYSTEM
from runtime.model import App
from runtime.model.fields import FIELD_TYPES
from runtime.model.process import Timer
from runtime.process import jobs
from runtime.process.expressions import Expr
from runtime.records.compiled import CompiledForm
from runtime.records.reader import _plain_encoder
from runtime.records.rollups import dependents
from runtime.records.values import ValueProblem
from runtime.schema.system import audit, process_instances

if TYPE_CHECKING:
    from runtime.process.engine import ProcessEngine

# stored as one plain column (not lists, links, users, files or numbers made by the system)
PLAIN_TYPES = frozenset(FIELD_TYPES[: FIELD_TYPES.index("select") + 1])
TIMER_CHANNEL = SYSTEM.via("timer")


@dataclass(frozen=True)
class Plan:
    """How to fire one timer set-wise: the fields it sets and their compiled expressions."""

    form: CompiledForm
    values: dict[str, Expr]


class BulkTimers:
    """Decides which timers can fire together, and fires them."""

    def __init__(self, engine: ProcessEngine) -> None:
        self.engine = engine
        self._plans: dict[tuple[int, str, str], Plan | None] = {}
        self._lock = threading.Lock()

    def fire(self, conn: Connection, batch: list[jobs.Job], worker: str) -> list[jobs.Job]:
        """Fire the jobs that qualify; answers the jobs left for one-by-one firing."""
        timers = [j for j in batch if j.kind == "timer" and j.instance_id is not None]
        if len(timers) < 2:
            return batch
        instances = {
            row["id"]: row
            for row in conn.execute(
                select(process_instances).where(process_instances.c.id.in_([j.instance_id for j in timers]))
            ).mappings()
        }
        groups: dict[tuple[int | None, str, str, str], list[jobs.Job]] = defaultdict(list)
        void: list[jobs.Job] = []
        for job in timers:
            instance = instances.get(int(job.instance_id or 0))
            if instance is None or _void(job, instance):
                void.append(job)
            else:
                groups[
                    (instance["definition_version"], str(job.app), str(job.form), str(job.payload["timer"]))
                ].append(job)
        handled: set[int] = set()
        now = self.engine.now()
        for (version, app_key, form_key, timer_key), members in groups.items():
            plan = self._plan(conn, version, app_key, form_key, timer_key)
            if plan is not None and len(members) > 1 and self._apply(conn, plan, members, instances, now):
                handled.update(j.id for j in members)
        if void:
            handled.update(j.id for j in void)
        done = [j for j in timers if j.id in handled]
        if done:
            _complete(conn, done, worker, now)
        return [j for j in batch if j.id not in handled]

    # -- which timers qualify ------------------------------------------------------------

    def _plan(
        self, conn: Connection, version: int | None, app_key: str, form_key: str, timer_key: str
    ) -> Plan | None:
        if app_key not in self.engine.service.apps:
            return None
        definition = self.engine.versions.app(conn, app_key, version)
        key = (id(definition), form_key, timer_key)
        if key not in self._plans:
            with self._lock:
                self._plans[key] = self._planned(definition, app_key, form_key, timer_key)
        return self._plans[key]

    def _planned(self, definition: App, app_key: str, form_key: str, timer_key: str) -> Plan | None:
        workflow = definition.workflow_of(form_key)
        timer = next((t for t in workflow.timers if t.key == timer_key), None) if workflow else None
        compiled = self.engine.service.apps[app_key].forms.get(form_key)
        if timer is None or workflow is None or compiled is None or not _simple_timer(timer):
            return None
        if any(t.auto for t in workflow.transitions) or _reacting(definition, form_key):
            return None
        form = definition.form(form_key)
        assert form is not None
        values: dict[str, Expr] = {}
        for effect in timer.effects:
            for field, text in (effect.set or {}).items():
                expr = self.engine.expressions.get(definition, form, text)
                if expr.checked.links or expr.checked.singles or expr.checked.children:
                    return None
                values[field] = expr
        if not values or not self._plain(definition, compiled, form_key, set(values)):
            return None
        return Plan(compiled, values)

    def _plain(self, definition: App, form: CompiledForm, form_key: str, fields: set[str]) -> bool:
        """The fields are stored, of plain types, unique-free, and nothing computes from or checks them."""
        model = definition.form(form_key)
        assert model is not None
        for key in fields:
            spec = form.fields.get(key)
            if spec is None or spec.type not in PLAIN_TYPES or getattr(spec.spec, "unique", False):
                return False
        if model.duplicates or form.children or model.single:
            return False
        workflow = definition.workflow_of(form_key)
        if workflow is not None and any(t.field in fields for t in workflow.timers):
            return False  # moving a date would move timers
        compiled = self.engine.service.apps[form.app.app]
        if any(d.columns & fields for d in dependents(compiled, form)):
            return False  # a rollup of the records these link to reads them
        texts = [f.formula for f in model.stored_fields() if f.formula]
        texts += [r.check for r in model.rules]
        texts += [f.required_when for f in model.stored_fields() if f.required_when]
        texts += [p.scope for p in model.permissions if p.scope not in ("own", "team", "all")]
        for text in texts:
            if self.engine.expressions.get(definition, model, text).checked.fields & fields:
                return False
        return True

    # -- firing ----------------------------------------------------------------------------

    def _apply(
        self, conn: Connection, plan: Plan, members: list[jobs.Job], instances: dict[int, Any], now: Any
    ) -> bool:
        table = plan.form.table
        ids = sorted({int(j.record_id or 0) for j in members})
        stmt = select(table).where(table.c.id.in_(ids)).order_by(table.c.id)
        if conn.dialect.name == "postgresql":
            stmt = stmt.with_for_update()
        rows = {row["id"]: dict(row) for row in conn.execute(stmt).mappings()}
        if len(rows) != len(ids) or len(ids) != len(members):
            return False  # a record is gone or has two timers due: the ordinary way handles it
        updates, entries = [], []
        token = CURRENT_USER.set(None)
        try:
            for job in members:
                row = rows[int(job.record_id or 0)]
                new = {}
                for field, expr in plan.values.items():
                    new[field] = plan.form.fields[field].convert(expr.evaluate(row))
                updates.append({"b_id": row["id"], "b_version": row["version"], **new})
                entries.extend(_history(job, plan, row, new, instances, now))
        except ValueProblem:
            return False
        finally:
            CURRENT_USER.reset(token)
        changed = conn.execute(
            update(table)
            .where(table.c.id == bindparam("b_id"), table.c.version == bindparam("b_version"))
            .values(**{f: bindparam(f) for f in plan.values}, updated_at=now, version=table.c.version + 1),
            updates,
        )
        if changed.rowcount != len(updates):
            raise jobs.LeaseLost("records changed during the batch")  # the caller's savepoint undoes it all
        conn.execute(insert(audit), entries)
        return True


def _simple_timer(timer: Timer) -> bool:
    return (
        timer.when is None
        and timer.repeat is None
        and all(e.kind == "set" and e.when is None for e in timer.effects)
    )


def _reacting(definition: App, form_key: str) -> bool:
    """Whether an update of the form's records makes anything else happen."""
    if any(a.form == form_key and a.trigger == "updated" for a in definition.automations):
        return True
    return any(a.form == form_key and a.starts_when for a in definition.approvals)


def _void(job: jobs.Job, instance: Any) -> bool:
    return (
        instance is None
        or instance["ended_at"] is not None
        or instance["state"] != job.payload.get("state")
        or instance["version"] != job.payload.get("entered")
    )


def _history(
    job: jobs.Job, plan: Plan, row: dict[str, Any], new: dict[str, Any], instances: dict[int, Any], now: Any
) -> list[dict[str, Any]]:
    """The timer step and the field change, as firing the timer alone writes them."""
    instance = instances[int(job.instance_id or 0)]
    where = {
        "app": job.app,
        "form": job.form,
        "record_id": row["id"],
        "channel": "timer",
        "user_id": None,
        "at": now,
        "request_id": job.request_id,
    }
    step = {"timer": job.payload["timer"], "state": instance["state"], "round": job.payload.get("round", 0)}
    changes = {}
    for field in sorted(new):
        encode = _plain_encoder(plan.form.fields[field].type)
        old, value = row.get(field), new[field]
        if old != value:
            changes[field] = [None if old is None else encode(old), None if value is None else encode(value)]
    return [{**where, "action": "timer", "changes": step}, {**where, "action": "update", "changes": changes}]


def _complete(conn: Connection, done: list[jobs.Job], worker: str, now: Any) -> None:
    table = jobs.table
    finished = conn.execute(
        update(table)
        .where(
            table.c.id.in_([j.id for j in done]),
            table.c.lease_owner == worker,
            table.c.status == jobs.RUNNING,
        )
        .values(status=jobs.DONE, finished_at=now, last_error=None)
    )
    if finished.rowcount != len(done):
        raise jobs.LeaseLost("some jobs of the batch were claimed by another worker")
