"""Single (settings) forms hold their one record from the start.

A single form's record is what every formula reading `form.field` reads; with no record
those reads are null, so a fresh install would compute nothing (every lead's score
empty until an admin thought of creating the settings). When an app is served — at
start and after each publish — each single form without a record gets one, written by
the records service as the system from the fields' defaults, with the usual rules,
formulas and history. Demo data and scenarios then change that record rather than
create another.
"""

from __future__ import annotations

from sqlalchemy import func, select

from runtime.identity.actor import SYSTEM
from runtime.records.errors import Conflict
from runtime.records.service import RecordsService


def ensure_single_records(service: RecordsService) -> list[tuple[str, str]]:
    """Create the missing records of single forms; answers the `(app, form)` pairs created."""
    created = []
    for app in service.apps.values():
        for form in app.forms.values():
            if not form.form.single:
                continue
            with service.engine.connect() as conn:
                if conn.execute(select(func.count()).select_from(form.table)).scalar_one():
                    continue
            try:
                service.create(app.app.app, form.key, {}, SYSTEM)
            except Conflict:
                continue  # another server created it a moment ago
            created.append((app.app.app, form.key))
    return created
