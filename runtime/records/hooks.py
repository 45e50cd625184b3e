"""What the records service tells the process engine, and how the engine's own writes differ.

The records service knows nothing of workflows; it calls these hooks inside the write
transaction, so whatever the engine does (initial states, automations, timers) commits
or rolls back with the change that caused it. While `ENGINE_WRITE` is set, the state
fields of workflows may be written and approval locks do not apply.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any, Protocol

from sqlalchemy import Connection

from runtime.identity.actor import Actor
from runtime.records.compiled import CompiledApp, CompiledForm
from runtime.records.writer import Prepared

ENGINE_WRITE: ContextVar[bool] = ContextVar("formloom_engine_write", default=False)
Stored = dict[str, Any]


class RecordHooks(Protocol):
    """The process engine, as the records service sees it."""

    def state_field(self, app: CompiledApp, form: CompiledForm) -> str | None:
        """The workflow state field of a form, which only transitions may write."""

    def before_create(
        self, app: CompiledApp, form: CompiledForm, items: list[Prepared], actor: Actor
    ) -> None:
        """Put new records into their workflow's initial state."""

    def created(
        self, conn: Connection, app: CompiledApp, form: CompiledForm, ids: list[int], actor: Actor
    ) -> None:
        """React to new records: instances, timers, automations, automatic transitions."""

    def updated(
        self,
        conn: Connection,
        app: CompiledApp,
        form: CompiledForm,
        record_id: int,
        before: Stored,
        after: Stored,
        changed: set[str],
        actor: Actor,
    ) -> None:
        """React to a changed record (`changed`: the fields that changed, table fields included)."""

    def ensure_unlocked(
        self,
        conn: Connection,
        app: CompiledApp,
        form: CompiledForm,
        record_id: int,
        *,
        deleting: bool = False,
    ) -> None:
        """Refuse a change while a locking approval runs (a deletion while anything guards the record)."""

    def guard_before(self, conn: Connection, app: CompiledApp, form: CompiledForm, record_id: int) -> Any:
        """What guards the record before a change (approvals and states with material fields)."""

    def guard_after(
        self,
        conn: Connection,
        app: CompiledApp,
        form: CompiledForm,
        record_id: int,
        holds: Any,
        changes: dict[str, Any],
        actor: Actor,
    ) -> Any:
        """Refuse a material change (409 `material`), or answer what to approve again."""

    def reapprove(
        self, conn: Connection, app: CompiledApp, form: CompiledForm, record_id: int, again: Any, actor: Actor
    ) -> None:
        """Start again the approvals a material change touched (after the update's other hooks)."""

    def deleted(self, conn: Connection, app: CompiledApp, form: CompiledForm, record_id: int) -> None:
        """End the record's instances and cancel its timers."""

    def recomputed(
        self, conn: Connection, app: CompiledApp, records: list[tuple[str, int]], actor: Actor
    ) -> None:
        """Records of `app` (form key, id) whose stored rollups a change of other records just
        recomputed: take the automatic transitions whose guard now holds on them."""
