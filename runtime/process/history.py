"""Process steps in a record's history: transitions, approval decisions, comments, timers.

They go to the same append-only audit trail as field changes, with their own actions
(`transition`, `approval_started`, `approve`, `reject`, `delegate`, `transfer`,
`sent_back`, `approved`, `rejected`, `approval_cancelled`, `timer`, `automation`), so
`GET …/{id}/history` tells the whole story.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

from runtime.identity.actor import Actor
from runtime.records import audit

if TYPE_CHECKING:
    from runtime.process.engine import Target


def note(conn: Connection, target: Target, action: str, actor: Actor, changes: dict[str, Any]) -> None:
    """Append one process step to the record's history."""
    app, form, record_id = target.where
    audit.record(conn, app, form, record_id, action, actor, changes)
