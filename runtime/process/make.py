"""Make actions: a user creates a record of another form from the record shown.

A form's `actions:` (runtime/model/record_page.py) map the source record onto a new
record of form `make` — values and child rows by expressions, as a workflow's `create`
effect does. Taking one, in one transaction: lock the source row, check who may take
it (see `may_make`), that the record is in one of its `states` (409 `state`) and that
`when` holds (422 `guard`, as a transition's guard); create the record through the
records service as the engine acting for the caller (validation, formulas, auto
numbers, the new form's workflow and automations, the audit trail; created by the
caller, channel `action`), keep it in `store_in` if given, and note the step in the
history of both records (`make` on the source, `made_from` on the new record).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

from runtime.identity.actor import Actor
from runtime.model.process import CreateSpec
from runtime.model.record_page import MakeAction
from runtime.process.effects import create_from
from runtime.process.expressions import holds
from runtime.process.history import note
from runtime.records.access import access_for
from runtime.records.errors import Conflict, FieldProblem, InvalidRecord, NotAllowed, RecordError, missing

if TYPE_CHECKING:
    from runtime.process.engine import ProcessEngine, Target

Record = dict[str, Any]
CHANNEL = "action"


def available(engine: ProcessEngine, conn: Connection, target: Target, actor: Actor) -> list[Record]:
    """The make actions the caller may take on the record, each `ready` or not (with the reason)."""
    actions = target.form.form.actions
    if not actions:
        return []
    row = engine.stored(conn, target)
    found = []
    for action in actions:
        if not may_make(engine, conn, target, action, actor):
            continue
        held = _held(engine, conn, target, action, row, actor)
        found.append(
            {
                "key": action.key,
                "label": action.label.model_dump(exclude_none=True) if action.label else None,
                "form": action.make,
                "ready": held is None,
                "reason": None if held is None else held.message,
            }
        )
    return found


def make(engine: ProcessEngine, conn: Connection, target: Target, key: str, actor: Actor) -> tuple[str, int]:
    """Take make action `key` on the record; answers the new record's form and id."""
    action = target.form.form.action(key)
    if action is None:
        raise missing("action", key)
    engine.lock(conn, target)  # a parallel step on the record waits here, then sees its outcome
    if not may_make(engine, conn, target, action, actor):
        raise NotAllowed(f"you may not take '{key}' on this record")
    row = engine.stored(conn, target)
    held = _held(engine, conn, target, action, row, actor)
    if held is not None and held.code == "state":
        raise Conflict([held])
    if held is not None:
        raise InvalidRecord([held])
    acting = engine.engine_actor(actor, CHANNEL)
    spec = CreateSpec(
        form=action.make, values=action.values, children=action.children, store_in=action.store_in
    )
    new_id = create_from(engine, conn, target, target.app.app, spec, acting)
    note(conn, target, "make", acting, {"action": key, "form": action.make, "id": new_id})
    from runtime.process.engine import Target

    made = Target(target.app, target.app.forms[action.make], new_id)
    note(conn, made, "made_from", acting, {"action": key, "form": target.form.key, "id": target.record_id})
    return action.make, new_id


def may_make(
    engine: ProcessEngine, conn: Connection, target: Target, action: MakeAction, actor: Actor
) -> bool:
    """Who may take a make action (reading the source record is checked before).

    Admins; anyone else needs one of the action's `roles` (when it has some) and the
    `create` operation on the form it makes, and with `store_in` also the right to
    update this very record.
    """
    if actor.admin:
        return True
    if action.roles and not set(action.roles) & set(actor.roles):
        return False
    made = target.app.forms.get(action.make)
    if made is None or not access_for(made, actor).can("create"):
        return False
    if action.store_in is not None:
        try:
            engine.service.require_in_scope(conn, target.form, target.record_id, actor, "update")
        except RecordError:
            return False
    return True


def _held(
    engine: ProcessEngine, conn: Connection, target: Target, action: MakeAction, row: Record, actor: Actor
) -> FieldProblem | None:
    """Why the action cannot be taken now (the record's state, or `when`), or None."""
    if action.states:
        workflow = target.app.app.workflow_of(target.form.key)
        state = engine.current_state(row, workflow) if workflow is not None else None
        if state not in action.states:
            return FieldProblem(None, "state", f"'{action.key}' cannot be taken in state '{state}'")
    if action.when is not None:
        condition = engine.expr(target.app.app, target.form.key, action.when)
        if not holds(condition, engine.context(conn, target, row, [condition]), actor.user_id):
            return FieldProblem(None, "guard", when_message(action))
    return None


def when_message(action: MakeAction, language: str = "en") -> str:
    """Why an action whose `when` does not hold cannot be taken (API messages are in English)."""
    if action.when_message is not None:
        return action.when_message.text(language)
    return f"the condition of '{action.key}' does not hold: {action.when}"
