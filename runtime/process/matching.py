"""A `create` effect's `match`: an existing record to use instead of creating one.

`match` is a condition on the records of the form the effect would create, reading the
record the effect runs on as `record.field` — the language of a link's `filter`, and
compiled the same way, to SQL on the target form's table with the source's values as
parameters. The oldest record meeting it (lowest id; merged records left out) is used.
The search is the engine's: it sees every record of the form, whoever may read it, as
the duplicate check of a create does.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, select

from runtime.expressions.checker import check
from runtime.expressions.parser import parse
from runtime.expressions.to_python import CURRENT_USER
from runtime.expressions.types import filter_scope
from runtime.model import App
from runtime.model.process import CreateSpec
from runtime.records.link_filters import LinkFilter, filter_condition

if TYPE_CHECKING:
    from runtime.process.engine import ProcessEngine, Target

_CACHE: dict[tuple[int, str, str, str], LinkFilter] = {}
_LOCK = threading.Lock()


def matching_record(
    engine: ProcessEngine,
    conn: Connection,
    target: Target,
    definition: App,
    spec: CreateSpec,
    row: dict[str, Any],
    user_id: int | None,
) -> int | None:
    """The id of the oldest record of `spec.form` meeting `spec.match` for the source `row`;
    None when none does (or the effect has no `match`)."""
    if spec.match is None:
        return None
    condition = _compiled(definition, spec.form, target.form.key, spec.match)
    table = target.app.form(spec.form).table
    token = CURRENT_USER.set(user_id)
    try:
        where = filter_condition(target.app, condition, row, None, conn.dialect.name, engine.now())
    finally:
        CURRENT_USER.reset(token)
    stmt = select(table.c.id).where(where)
    if "_merged_into" in table.c:
        stmt = stmt.where(table.c._merged_into.is_(None))
    found = conn.execute(stmt.order_by(table.c.id).limit(1)).scalar()
    return None if found is None else int(found)


def _compiled(definition: App, form_key: str, source_key: str, text: str) -> LinkFilter:
    """The condition checked against the target form, with `record.` the source; kept."""
    key = (id(definition), form_key, source_key, text)
    found = _CACHE.get(key)
    if found is None:
        target, source = definition.form(form_key), definition.form(source_key)
        assert target is not None and source is not None  # checked at load
        found = LinkFilter(
            "match", form_key, text, check(parse(text), filter_scope(definition, target, source), text)
        )
        with _LOCK:
            _CACHE[key] = found
    return found
