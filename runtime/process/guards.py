"""What approvals and workflow states guard: changes to material fields, refused or approved again.

An approval with `material` guards a record while it runs and after it approved, until
the record is released (a transition into one of its `released_in` states, or the
approval starting again). A workflow state with `material` guards its records while
they are in it. The records service asks before a write (`before_change`, which also
notes the values of material expressions) and after it (`after_change`, with the
field-level diff): a material change is refused (409 `material`, in the same
transaction, so nothing of it is kept) or, for `on_change: reapprove`, saved and the
approval starts again (`reapprove`), its earlier decisions kept in the history. A final
state's material keeps holding after the workflow ended there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, and_, or_, select, update

from runtime.identity.actor import Actor
from runtime.model import App
from runtime.model.common import Labels
from runtime.model.process import Approval
from runtime.process.effects import run_effects
from runtime.process.expressions import value_of
from runtime.process.history import note
from runtime.records.errors import Conflict, FieldProblem
from runtime.schema.system import process_instances

if TYPE_CHECKING:
    from runtime.process.engine import ProcessEngine, Target

CHANGE = {
    "zh": "此{{ form }}{{ status }}（{{ by }}），不能修改{{ field }}",
    "en": "this {{ form }} is {{ status }} ({{ by }}): {{ field }} cannot change",
}
STATUS = {
    "running": {"zh": "正在审批", "en": "in approval"},
    "approved": {"zh": "已审批通过", "en": "approved"},
    "state": {"zh": "处于此状态", "en": "in this state"},
}


@dataclass
class Hold:
    """One guard on a record: an approval (running or approved) or the record's state."""

    kind: str  # approval | state
    key: str  # the approval's key, or the state's
    material: list[str]
    on_change: str  # refuse | reapprove
    status: str  # running | approved | state
    label: Labels | None
    message: Labels | None
    definition: App
    instance: Any = None
    before: dict[str, Any] = field(default_factory=dict)  # material expressions' values before

    def changed(self, changes: dict[str, Any], after: dict[str, Any]) -> list[str]:
        """The material items that the change touches (fields, table fields, expressions)."""
        return [i for i in self.material if i in changes or (i in self.before and self.before[i] != after[i])]


def guarded(definition: App, form: str) -> bool:
    """True when some approval or workflow state of the form has material fields."""
    workflow = definition.workflow_of(form)
    if workflow is not None and any(s.material for s in workflow.states):
        return True
    return any(a.material for a in definition.approvals if a.form == form)


def holds_on(engine: ProcessEngine, conn: Connection, target: Target) -> list[Hold]:
    """The guards on a record now: approvals with material fields and its state's material."""
    if not guarded(target.app.app, target.form.key):
        return []
    app_key, form, record_id = target.where
    table = process_instances
    rows = (
        conn.execute(
            select(table)
            .where(
                table.c.app == app_key,
                table.c.form == form,
                table.c.record_id == record_id,
                table.c.kind == "approval",
                or_(
                    table.c.state == "running",
                    and_(table.c.state == "approved", table.c.released_at.is_(None)),
                ),
            )
            .order_by(table.c.id.desc())
        )
        .mappings()
        .all()
    )
    state = _state_hold(engine, conn, target)
    found: list[Hold] = [state] if state is not None else []  # the state's message is the most telling
    seen: set[str] = set()
    for row in rows:
        if row["definition"] in seen:
            continue  # an older instance of the same approval
        seen.add(row["definition"])
        definition = engine.versions.app(conn, app_key, row["definition_version"])
        approval = definition.approval(row["definition"])
        if approval is not None and approval.material:
            found.append(_approval_hold(approval, definition, row))
    return found


def before_change(engine: ProcessEngine, conn: Connection, target: Target) -> list[Hold]:
    """The guards on a record about to change, with the values of their material expressions."""
    found = holds_on(engine, conn, target)
    if found:
        row = engine.stored(conn, target)
        for hold in found:
            hold.before = _expression_values(engine, conn, target, hold, row)
    return found


def after_change(
    engine: ProcessEngine,
    conn: Connection,
    target: Target,
    found: list[Hold],
    changes: dict[str, Any],
    actor: Actor,
) -> list[tuple[Hold, list[str]]]:
    """Refuse a material change (409 `material`), or answer the approvals to start again."""
    if not found:
        return []
    row = engine.stored(conn, target)
    again: list[tuple[Hold, list[str]]] = []
    for hold in found:
        after = _expression_values(engine, conn, target, hold, row)
        touched = hold.changed(changes, after)
        if not touched:
            continue
        if hold.on_change == "refuse":
            message = _message(target, hold, touched, actor.language)
            raise Conflict([FieldProblem(_path(target, touched[0]), "material", message)])
        again.append((hold, touched))
    return again


def reapprove(
    engine: ProcessEngine,
    conn: Connection,
    target: Target,
    again: list[tuple[Hold, list[str]]],
    actor: Actor,
) -> None:
    """End each approval a material change touched, run its `on_reapprove`, and start it again."""
    from runtime.process import approvals

    for hold, touched in again:
        instance = hold.instance
        approval = hold.definition.approval(hold.key)
        assert approval is not None and instance is not None
        approvals.supersede(engine, conn, target, instance)
        note(conn, target, "reapproval", actor, {"approval": hold.key, "fields": touched})
        if hold.status == "approved":  # a running approval's record is in approval already
            acting = engine.engine_actor(actor, "approval")
            run_effects(engine, conn, target, hold.definition, approval.on_reapprove, acting)
        submitter = actor.user_id if actor.user_id is not None else instance["submitted_by"]
        approvals.start(engine, conn, target, hold.key, _as_submitter(actor, submitter))


def release(engine: ProcessEngine, conn: Connection, target: Target, state: str, initial: str) -> None:
    """A record entered `state`: approved approvals released in that state stop guarding it."""
    for hold in holds_on(engine, conn, target):
        if hold.kind != "approval" or hold.status != "approved":
            continue
        approval = hold.definition.approval(hold.key)
        released_in = (approval.released_in if approval is not None else []) or [initial]
        if state in released_in:
            conn.execute(
                update(process_instances)
                .where(process_instances.c.id == hold.instance["id"])
                .values(released_at=engine.now())
            )


def deletion_held(engine: ProcessEngine, conn: Connection, target: Target) -> Hold | None:
    """A guard that keeps the record from being deleted, if any."""
    return next(iter(holds_on(engine, conn, target)), None)


# -- pieces ------------------------------------------------------------------------------


def _approval_hold(approval: Approval, definition: App, row: Any) -> Hold:
    status = "running" if row["state"] == "running" else "approved"
    return Hold(
        "approval",
        approval.approval,
        list(approval.material),
        approval.on_change,
        status,
        approval.label,
        approval.change_message,
        definition,
        row,
    )


def _state_hold(engine: ProcessEngine, conn: Connection, target: Target) -> Hold | None:
    # The record's latest workflow instance: the open one, or the one that ended when the
    # record entered a final state, whose material holds there too (an accepted quote).
    app, form, record_id = target.where
    table = process_instances
    instance = (
        conn.execute(
            select(table)
            .where(
                table.c.app == app,
                table.c.form == form,
                table.c.record_id == record_id,
                table.c.kind == "workflow",
            )
            .order_by(table.c.id.desc())
            .limit(1)
        )
        .mappings()
        .first()
    )
    if instance is None:
        return None
    workflow = engine.workflow_of(conn, target, instance)
    state = workflow.state(str(instance["state"])) if workflow is not None else None
    if state is None or not state.material:
        return None
    definition = engine.versions.app(conn, target.app.app.app, instance["definition_version"])
    return Hold(
        "state",
        state.key,
        list(state.material),
        "refuse",
        "state",
        state.label,
        state.change_message,
        definition,
    )


def _expression_values(
    engine: ProcessEngine, conn: Connection, target: Target, hold: Hold, row: dict[str, Any]
) -> dict[str, Any]:
    items = [i for i in hold.material if target.form.form.field(i) is None]
    if not items:
        return {}
    exprs = [engine.expr(hold.definition, target.form.key, text) for text in items]
    context = engine.context(conn, target, row, list(exprs))
    return {
        text: value_of(expr, context) for text, expr in zip(items, exprs, strict=True) if expr is not None
    }


def _path(target: Target, item: str) -> str | None:
    return item if target.form.form.field(item) is not None else None


def _message(target: Target, hold: Hold, touched: list[str], language: str) -> str:
    """The refusal, from `change_message` or the built-in one, in the caller's language (or the
    message's only one: its values then speak the same language)."""
    from runtime.process.notifications import render

    template = hold.message or Labels(**CHANGE)
    if not (template.zh if language == "zh" else template.en):
        language = "en" if template.en else "zh"
    spec = target.form.form.field(touched[0])
    values = {
        "form": target.form.form.label.text(language),
        "field": spec.title(language) if spec is not None else touched[0],
        "status": STATUS[hold.status].get(language, STATUS[hold.status]["en"]),
        "by": hold.label.text(language) if hold.label is not None else hold.key,
    }
    return render(template, language, {}, values)


def _as_submitter(actor: Actor, user_id: int | None) -> Actor:
    if user_id == actor.user_id:
        return actor
    return Actor(
        user_id, actor.username, actor.roles, actor.team, actor.channel, actor.system, actor.language
    )
