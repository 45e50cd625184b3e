"""Saved list views: a user's named query strings (filter, search, sort, columns) per form."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlencode

from sqlalchemy import Engine, delete, select

from runtime.db import write
from runtime.schema.system import saved_views
from runtime.schema.types import utcnow

# Only these parameters are kept: paging is not part of a view.
KEPT = frozenset({"where", "q", "sort", "columns"})
MAX_QUERY = 4000


def clean_query(query: str) -> str:
    """The parts of a list URL's query string that make up a view."""
    pairs = [(k, v) for k, v in parse_qsl(query, keep_blank_values=False) if k in KEPT]
    return urlencode(pairs)[:MAX_QUERY]


def views_of(engine: Engine, user_id: int, app: str, form: str) -> list[dict[str, Any]]:
    """The user's views of one form, by name."""
    table = saved_views
    stmt = (
        select(table.c.id, table.c.name, table.c.query)
        .where(table.c.user_id == user_id, table.c.app == app, table.c.form == form)
        .order_by(table.c.name)
    )
    with engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(stmt)]


def save_view(engine: Engine, user_id: int, app: str, form: str, name: str, query: str) -> None:
    """Save (or replace) the user's view called `name`."""
    table = saved_views
    with write(engine) as conn:
        conn.execute(
            delete(table).where(
                table.c.user_id == user_id, table.c.app == app, table.c.form == form, table.c.name == name
            )
        )
        conn.execute(
            table.insert().values(
                user_id=user_id, app=app, form=form, name=name, query=clean_query(query), created_at=utcnow()
            )
        )


def delete_view(engine: Engine, user_id: int, view_id: int) -> None:
    """Delete one of the user's views (another user's view is never touched)."""
    with write(engine) as conn:
        conn.execute(delete(saved_views).where(saved_views.c.id == view_id, saved_views.c.user_id == user_id))
