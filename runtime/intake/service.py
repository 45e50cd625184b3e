"""Take a public submission: rate, shape, spam checks, then a create through the records service.

The order matters. Every request is counted against the intake's rate first (429 with
Retry-After when over it). Then the body may hold only the intake's fields, its
honeypot and the page's `_token` (anything else: 422 naming it). A filled honeypot, or
a page token sent back sooner than `min_seconds`, is answered as a success and nothing
is stored. Otherwise the record is created as the intake's actor — with the form's
rules, conversions, duplicate check and processes — from the intake's `defaults` and
the visitor's values. A possible duplicate is kept (with `flag`), merged into the
record it matches (filling that record's empty fields) or dropped, per `on_duplicate`;
the visitor gets the same answer in every case, so the answer never tells whether a
person is already known.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from runtime.identity import rate_limit
from runtime.identity.actor import PUBLIC, Actor
from runtime.identity.directory import load_actor
from runtime.intake import tokens
from runtime.model.intake import Intake
from runtime.records.compiled import CompiledApp, CompiledForm
from runtime.records.dedup import candidates, group_keys
from runtime.records.errors import (
    Conflict,
    FieldProblem,
    Forbidden,
    InvalidRecord,
    NotAllowed,
    RecordError,
    Unauthenticated,
    missing,
)
from runtime.records.service import RecordsService
from runtime.records.writer import prepare
from runtime.schema.system import users

LOG = logging.getLogger("formloom.intake")
TOKEN = "_token"  # the page's signed time token (runtime/intake/tokens.py)
CHANNEL = "public"
RATE_SCOPE = "intake"


class RateLimited(RecordError):
    """Too many submissions from one address (429); `retry_after` in seconds."""

    status = 429

    def __init__(self, retry_after: int) -> None:
        message = f"too many submissions; try again in {retry_after} s"
        super().__init__([FieldProblem(None, "rate_limited", message)])
        self.retry_after = retry_after


class Unavailable(RecordError):
    """The intake's user is missing or inactive (503): a setup problem, not the visitor's."""

    status = 503

    def __init__(self) -> None:
        super().__init__([FieldProblem(None, "unavailable", "this form cannot take submissions now")])


@dataclass(frozen=True)
class Outcome:
    """What happened to a submission (for logs and tests; the visitor is told none of it).

    `result` is `created`, `kept` (a duplicate stored anyway), `merged`, `dropped`
    (a duplicate), `honeypot` or `early`.
    """

    result: str
    record_id: int | None = None


class IntakeService:
    """The public intakes of the served apps."""

    def __init__(self, service: RecordsService) -> None:
        self.service = service

    def find(self, app_key: str, key: str) -> tuple[CompiledApp, Intake]:
        """The app and intake; 404 when either is unknown."""
        app = self.service.apps.get(app_key)
        intake = app.app.intake(key) if app is not None else None
        if app is None or intake is None:
            raise missing("intake", f"{app_key}/{key}")
        return app, intake

    def all(self) -> list[tuple[CompiledApp, Intake]]:
        """Every intake of every served app."""
        return [(app, intake) for app in self.service.apps.values() for intake in app.app.intakes]

    def count(self, app: CompiledApp, intake: Intake, address: str) -> None:
        """Count a request of `address` against the intake's rate; RateLimited over it."""
        most, seconds = intake.limit()
        name = f"{app.app.app}/{intake.intake}"
        verdict = rate_limit.hit(
            self.service.engine, RATE_SCOPE, name, address, most, dt.timedelta(seconds=seconds), self.now()
        )
        if not verdict.allowed:
            raise RateLimited(verdict.retry_after)

    def submit(self, app_key: str, key: str, body: Any, address: str) -> Outcome:
        """Count, check and store one submission (see the module's docstring)."""
        outcome = self._submit(app_key, key, body, address)
        LOG.info("intake %s/%s from %s: %s %s", app_key, key, address, outcome.result, outcome.record_id)
        return outcome

    def _submit(self, app_key: str, key: str, body: Any, address: str) -> Outcome:
        app, intake = self.find(app_key, key)
        self.count(app, intake, address)
        values, honeypot, token = self.read(intake, body)
        if not _empty(honeypot):
            return Outcome("honeypot")
        if token is not None:
            verdict = tokens.check(token, app.app.app, intake.intake, self.now(), intake.min_seconds)
            if verdict == "expired":
                raise InvalidRecord([FieldProblem(TOKEN, "expired", "the form has expired; reload the page")])
            if verdict == "early":
                return Outcome("early")
        elif intake.require_token:
            raise InvalidRecord([FieldProblem(TOKEN, "required", "send the form from its page")])
        return self.store(app, intake, values)

    def read(self, intake: Intake, body: Any) -> tuple[dict[str, Any], Any, str | None]:
        """The visitor's field values, the honeypot's value and the token; 422 for anything else."""
        if not isinstance(body, dict):
            raise InvalidRecord([FieldProblem(None, "type", "expected an object of field values")])
        allowed = set(intake.fields)
        problems = [
            FieldProblem(str(name)[:60], "unknown_field", f"this form does not take '{str(name)[:60]}'")
            for name in body
            if name not in allowed and name not in (intake.honeypot, TOKEN)
        ]
        token = body.get(TOKEN)
        if token is not None and not isinstance(token, str):
            problems.append(FieldProblem(TOKEN, "type", "expected the page's token as text"))
        if problems:
            raise InvalidRecord(problems)
        values = {name: value for name, value in body.items() if name in allowed}
        return values, body.get(intake.honeypot), token

    def store(self, app: CompiledApp, intake: Intake, values: dict[str, Any]) -> Outcome:
        """Create the record as the intake's actor; a possible duplicate per `on_duplicate`."""
        actor = self.actor(intake)
        app_key, form_key = app.app.app, intake.form
        sent = {k: v for k, v in values.items() if not _empty(v)}
        data = {**intake.defaults, **sent}
        try:
            created = self.service.create(app_key, form_key, data, actor)
            return Outcome("created", int(created["id"]))
        except (Unauthenticated, Forbidden, NotAllowed) as error:  # set up wrong: not the visitor's doing
            LOG.error("intake %s may not create %s records: %s", intake.intake, form_key, error)
            raise Unavailable() from None
        except InvalidRecord as error:
            kept = [p for p in error.problems if p.code != "unique"]
            if kept:  # a value already used by another record is not told to the public
                raise InvalidRecord(kept) from None
            return Outcome("dropped")
        except Conflict as error:
            if not any(p.code == "duplicate" for p in error.problems):
                raise
        if intake.on_duplicate == "drop":
            return Outcome("dropped")
        if intake.on_duplicate == "merge":
            merged = self.merge(app, app.forms[form_key], intake, sent, actor)
            if merged is not None:
                return Outcome("merged", merged)
        kept_record = self.service.create(
            app_key, form_key, {**data, **intake.flag}, actor, allow_duplicate=True
        )
        return Outcome("kept", int(kept_record["id"]))

    def merge(
        self, app: CompiledApp, form: CompiledForm, intake: Intake, sent: dict[str, Any], actor: Actor
    ) -> int | None:
        """Fill the empty fields of the oldest record the submission duplicates with its values
        (and tick the tick boxes the visitor ticked).

        Runs with the intake's own authority (only the intake's fields, only empty ones);
        None when no match is found or the match cannot take the values (then it is kept).
        """
        prepared, problems = prepare(form, sent, creating=False)
        if problems:
            return None
        with self.service.engine.connect() as conn:
            found = candidates(conn, form, group_keys(form, prepared.values))
        if not found:
            return None
        target = found[0]
        elevated = Actor(actor.user_id, actor.username, actor.roles, channel=CHANNEL, system=True)
        try:
            current = self.service.get(app.app.app, form.key, target, elevated)
            fill = {
                k: v
                for k, v in sent.items()
                if _empty(current.get(k)) or (v is True and current.get(k) is False)
            }
            if fill:
                self.service.update(app.app.app, form.key, target, fill, None, elevated, allow_duplicate=True)
        except RecordError as error:
            LOG.warning("intake %s could not merge into %s %s: %s", intake.intake, form.key, target, error)
            return None
        return target

    def actor(self, intake: Intake) -> Actor:
        """Whose permissions the write runs with: the intake's user, or its role (default `public`)."""
        if intake.as_user is None:
            role = intake.as_role or PUBLIC
            return Actor(None, f"intake:{intake.intake}", frozenset({role}), channel=CHANNEL)
        with self.service.engine.connect() as conn:
            user_id = conn.execute(select(users.c.id).where(users.c.username == intake.as_user)).scalar()
            actor = load_actor(conn, int(user_id), CHANNEL) if user_id is not None else None
        if actor is None:
            LOG.error("intake %s runs as '%s', who is missing or inactive", intake.intake, intake.as_user)
            raise Unavailable()
        return actor

    def now(self) -> dt.datetime:
        """The service's clock."""
        return self.service.clock()


def _empty(value: Any) -> bool:
    """Not given: null, empty text or an empty list (a visitor's untouched input)."""
    return value is None or value == "" or value == []
