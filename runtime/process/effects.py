"""Effects: what transitions, timers, approval outcomes and automations do.

set fields · create a linked record (child rows and one record per child row included), or
use the one its `match` finds
· notify users · call a webhook · start an approval · take a transition · assign a user
· e-mail an address the record holds (runtime/process/record_mail.py).
Each runs inside the caller's transaction, so effects commit with their cause, once.
A webhook leaves as a job (an outbox row) and is sent by a worker after the commit.
`key`, given when a job runs the effects, makes notifications idempotent.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, select

from runtime.identity.actor import Actor
from runtime.model import App
from runtime.model.process import CreateSpec, Effect
from runtime.process import jobs
from runtime.process.expressions import Expr, gather, holds, value_of
from runtime.process.matching import matching_record
from runtime.process.notifications import notify
from runtime.process.recipients import resolve
from runtime.process.record_mail import send_record_email, with_labels
from runtime.process.webhooks import switched_on

if TYPE_CHECKING:
    from runtime.process.engine import ProcessEngine, Target

Record = dict[str, Any]


def run_effects(
    engine: ProcessEngine,
    conn: Connection,
    target: Target,
    definition: App,
    effects: list[Effect],
    actor: Actor,
    *,
    key: str | None = None,
    submitter: int | None = None,
    row: Record | None = None,
) -> None:
    """Run the effects in order on the record, each seeing what the ones before it did.

    `row`, when the caller has just read the record, saves reading it for the first effect.
    """
    for index, effect in enumerate(effects):
        runner = Runner(engine, conn, target, definition, actor, submitter, row if index == 0 else None)
        condition = runner.expr(effect.when)
        if not holds(condition, runner.context([condition]), actor.user_id):
            continue
        getattr(runner, effect.kind)(effect, f"{key}:{index}" if key else None)


def create_from(
    engine: ProcessEngine, conn: Connection, target: Target, definition: App, spec: CreateSpec, actor: Actor
) -> int:
    """Create one record from the target record as a `create` effect would (a make action); its id."""
    return Runner(engine, conn, target, definition, actor, None).create_one(spec)


class Runner:
    """Runs one effect on one record."""

    def __init__(
        self,
        engine: ProcessEngine,
        conn: Connection,
        target: Target,
        definition: App,
        actor: Actor,
        submitter: int | None,
        row: Record | None = None,
    ) -> None:
        self.engine = engine
        self.conn = conn
        self.target = target
        self.definition = definition
        self.actor = actor
        self.submitter = submitter
        self.row = row if row is not None else engine.stored(conn, target)

    def expr(self, text: str | None, form: str | None = None) -> Expr | None:
        """A compiled expression on the record's form (or another form of the definition)."""
        return self.engine.expr(self.definition, form or self.target.form.key, text)

    def context(self, exprs: list[Expr | None]) -> Record:
        """The record with what the expressions read."""
        return self.engine.context(self.conn, self.target, self.row, exprs)

    def values(self, mapping: dict[str, str]) -> Record:
        """Evaluate a mapping of field → expression on the record."""
        exprs = {key: self.expr(text) for key, text in mapping.items()}
        record = self.context(list(exprs.values()))
        return {key: value_of(e, record, self.actor.user_id) for key, e in exprs.items() if e is not None}

    def evaluate(self, text: str) -> Any:
        """One expression's value on the record."""
        expr = self.expr(text)
        assert expr is not None
        return value_of(expr, self.context([expr]), self.actor.user_id)

    # -- kinds ---------------------------------------------------------------------------

    def set(self, effect: Effect, key: str | None) -> None:
        """Set fields from expressions."""
        self.engine.write(self.target, self.values(effect.set or {}), self.actor)

    def create(self, effect: Effect, key: str | None) -> None:
        """Create records of another form from this one."""
        spec = effect.create
        assert spec is not None
        if spec.for_each is None:
            self.create_one(spec)
            return
        base = self.values(spec.values)
        children = {name: self._child_rows(spec, name) for name in spec.children}
        app_key = self.target.app.app.app
        for row in self._rows_of(spec.for_each):
            extra = _row_values(self, spec.for_each, spec.row_values, row)
            self.engine.create(app_key, spec.form, {**base, **extra, **children}, self.actor)

    def create_one(self, spec: CreateSpec) -> int:
        """Create one record of `spec.form` from this one, kept in `store_in` if given; its id.
        With `match`, a record meeting it is used instead, and nothing is created."""
        found = matching_record(
            self.engine, self.conn, self.target, self.definition, spec, self.row, self.actor.user_id
        )
        if found is not None:
            if spec.store_in is not None and self.row.get(spec.store_in) != found:
                self.engine.write(self.target, {spec.store_in: found}, self.actor)
            return found
        base = self.values(spec.values)
        children = {name: self._child_rows(spec, name) for name in spec.children}
        new_id = self.engine.create(self.target.app.app.app, spec.form, {**base, **children}, self.actor)
        if spec.store_in is not None:
            self.engine.write(self.target, {spec.store_in: new_id}, self.actor)
        return new_id

    def notify(self, effect: Effect, key: str | None) -> None:
        """Notify users in the app (and by e-mail)."""
        spec = effect.notify
        assert spec is not None
        users = resolve(self.conn, spec.to, self.row, self.evaluate, self.submitter)
        email = self.engine.mail if spec.email else None
        record = {**self.row, "form": self.target.form.key, "app": self.target.app.app.app}
        record = with_labels(self.target.form.form, record)  # record.labels.status: its option's label
        notify(
            self.conn,
            users,
            spec.message,
            record,
            self.engine.now(),
            where=self.target.where,
            key=key,
            email=email,
        )

    def webhook(self, effect: Effect, key: str | None) -> None:
        """Queue a POST of the record to a URL (sent by a worker, retried until 2xx)."""
        spec = effect.webhook
        assert spec is not None
        if not switched_on(effect):
            return  # the webhook is off where its URL is not configured (docs/processes.md#webhook)
        app, form, record_id = self.target.where
        job_key = key or f"webhook:{uuid.uuid4().hex}"  # a job running the effect passes its stable key
        payload: dict[str, Any] = {
            "url": spec.url,
            "event": spec.event or "process",
            "app": app,
            "form": form,
            "id": record_id,
        }
        extra = {"url_env": spec.url_env, "secret_env": spec.secret_env, "fields": spec.fields}
        payload.update({name: value for name, value in extra.items() if value is not None})
        now = self.engine.now()
        jobs.add_now(
            self.conn,
            "webhook",
            job_key,
            payload,
            now,
            app=app,
            form=form,
            record_id=record_id,
            max_attempts=8,
        )

    def start_approval(self, effect: Effect, key: str | None) -> None:
        """Start an approval on the record."""
        from runtime.process.approvals import start

        start(self.engine, self.conn, self.target, str(effect.start_approval), self.actor)

    def transition(self, effect: Effect, key: str | None) -> None:
        """Take a transition as the engine."""
        from runtime.process.workflows import take

        take(self.engine, self.conn, self.target, str(effect.transition), self.actor, by_engine=True)

    def assign(self, effect: Effect, key: str | None) -> None:
        """Set a user field to the first user the recipients give."""
        spec = effect.assign
        assert spec is not None
        users = resolve(self.conn, spec.to, self.row, self.evaluate, self.submitter)
        if users:
            self.engine.write(self.target, {spec.field: users[0]}, self.actor)

    def document(self, effect: Effect, key: str | None) -> None:
        """Render a document of the record to PDF and keep it in an attachment field."""
        from runtime.documents.effect import store_document

        assert effect.document is not None
        store_document(self.engine, self.conn, self.target, effect.document, self.actor)

    def email(self, effect: Effect, key: str | None) -> None:
        """E-mail an address the record holds (a customer contact), in its language."""
        assert effect.email is not None
        send_record_email(self.engine, self.conn, self.target, effect.email, self.actor, self.row, key)

    # -- child rows --------------------------------------------------------------------

    def _rows_of(self, table_field: str) -> list[Record]:
        child = self.target.form.children[table_field]
        stmt = (
            select(child.table)
            .where(child.table.c.parent_id == self.target.record_id)
            .order_by(child.table.c.position)
        )
        return [dict(r) for r in self.conn.execute(stmt).mappings()]

    def _child_rows(self, spec: CreateSpec, name: str) -> list[Record]:
        copy = spec.children[name]
        return [_row_values(self, copy.from_, copy.values, row) for row in self._rows_of(copy.from_)]


def _row_values(runner: Runner, table_field: str, mapping: dict[str, str], row: Record) -> Record:
    """Evaluate a mapping on one child row of the record."""
    table = runner.definition.form(runner.target.form.key)
    assert table is not None
    spec = table.field(table_field)
    child_form = runner.definition.form(getattr(spec, "form", ""))
    assert child_form is not None
    exprs = {
        field: runner.engine.expressions.get(runner.definition, child_form, text)
        for field, text in mapping.items()
    }
    compiled_child = runner.target.form.children[table_field]
    record = gather(runner.conn, runner.target.app, compiled_child, row, list(exprs.values()))
    return {field: value_of(expr, record, runner.actor.user_id) for field, expr in exprs.items()}
