"""Expressions of process definitions (guards, conditions, mappings), compiled once and kept.

A guard or mapping is checked against its form's scope when the pack loads; here it is
compiled to a Python closure on first use. `gather` collects what a set of
expressions reads — the stored row, linked values, single-form settings, child rows, the
records of backlinks — with one query per link, single form, child table or backlink.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, select

from runtime.expressions.checker import Checked, check
from runtime.expressions.parser import parse
from runtime.expressions.to_python import CURRENT_USER, Evaluator, to_python
from runtime.expressions.types import scope_for
from runtime.model import App, Form
from runtime.records.backlinks import fill_backlinks
from runtime.records.compiled import CompiledApp, CompiledForm
from runtime.records.evaluation import fill_link_children, fill_links, fill_singles

Clock = Callable[[], Any]
Record = dict[str, Any]


@dataclass
class Expr:
    """A compiled expression and the names it reads."""

    evaluate: Evaluator
    checked: Checked


@dataclass
class Expressions:
    """Compiled expressions per (app version, form, text); compiled once, used by every request."""

    clock: Clock
    _cache: dict[tuple[int, str, str], Expr] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self, app: App, form: Form, text: str) -> Expr:
        """The compiled expression `text` on `form` of `app`."""
        key = (id(app), form.form, text)
        found = self._cache.get(key)
        if found is None:
            checked = check(parse(text), scope_for(app, form), text)
            found = Expr(to_python(checked, self.clock, app.zone(), app.calendar), checked)
            with self._lock:
                self._cache[key] = found
        return found


def gather(
    conn: Connection, app: CompiledApp, form: CompiledForm, row: Record, exprs: Iterable[Expr]
) -> Record:
    """A copy of `row` with every linked value, setting and child row the expressions read."""
    record = dict(row)
    links: set[tuple[str, str]] = set()
    singles: set[tuple[str, str]] = set()
    children: set[str] = set()
    linked_rows: set[tuple[str, str, str]] = set()
    backlinks: set[tuple[str, str | None]] = set()
    for expr in exprs:
        backlinks.update(expr.checked.backlinks)
        links.update(expr.checked.links)
        linked_rows.update(expr.checked.link_children)
        singles.update(expr.checked.singles)
        children.update(table for table, _ in expr.checked.children)
    if links:
        fill_links(conn, app, form, [record], links)
    if singles:
        fill_singles(conn, app, [record], singles)
    if linked_rows:
        fill_link_children(conn, app, form, [record], linked_rows)
    if backlinks:
        fill_backlinks(conn, app, form, [record], backlinks)
    for key in children:
        child = form.children[key]
        stmt = (
            select(child.table).where(child.table.c.parent_id == row["id"]).order_by(child.table.c.position)
        )
        record[key] = [dict(r) for r in conn.execute(stmt).mappings()]
    return record


def holds(expr: Expr | None, record: Record, user_id: int | None = None) -> bool:
    """True when there is no condition, or it is true for `record` (null counts as false)."""
    if expr is None:
        return True
    token = CURRENT_USER.set(user_id)
    try:
        return expr.evaluate(record) is True
    finally:
        CURRENT_USER.reset(token)


def value_of(expr: Expr, record: Record, user_id: int | None = None) -> Any:
    """The value of `expr` for `record`."""
    token = CURRENT_USER.set(user_id)
    try:
        return expr.evaluate(record)
    finally:
        CURRENT_USER.reset(token)
