"""Permissions of an actor on a form: allowed operations, row scope, hidden and read-only fields.

Everything the records service returns or changes passes through here, so lists,
gets, filters, sorts, link display values, duplicate candidates, bulk writes and
history all obey the same rules.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Table, false, or_, select, true
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.util import ClauseAdapter

from runtime.expressions.checker import Checked, check
from runtime.expressions.parser import parse
from runtime.expressions.to_sql import Guard, SqlScope, to_sql
from runtime.expressions.types import Scope, scope_for
from runtime.identity.actor import Actor
from runtime.model import App, Form
from runtime.records.compiled import CompiledApp, CompiledForm
from runtime.records.errors import Forbidden, Unauthenticated
from runtime.records.query import Reading, sql_scope
from runtime.schema.system import users

ALL = "all"


@dataclass
class Access:
    """What one actor may do with one form's records."""

    form: CompiledForm
    actor: Actor
    scopes: dict[str, list[str]] = field(default_factory=dict)  # operation -> scopes granting it
    hidden: frozenset[str] = frozenset()
    read_only: frozenset[str] = frozenset()

    def can(self, operation: str) -> bool:
        """True when some role of the actor is granted the operation."""
        return self.actor.admin or bool(self.scopes.get(operation))

    def require(self, operation: str) -> None:
        """Raise 403 unless the operation is granted (401 for a caller who has not signed in)."""
        if not self.can(operation):
            if self.actor.user_id is None and not self.actor.system:
                raise Unauthenticated()
            raise Forbidden(operation, self.form.key)

    def condition(self, operation: str, dialect: str, now: dt.datetime) -> ColumnElement[bool] | None:
        """The SQL condition of the records the actor may touch (None: every record)."""
        if self.actor.admin:
            return None
        granted = self.scopes.get(operation, [])
        if not granted:
            return false()
        if ALL in granted:
            return None
        return or_(*(self._scope_sql(scope, dialect, now) for scope in granted))

    def _scope_sql(self, scope: str, dialect: str, now: dt.datetime) -> ColumnElement[bool]:
        table = self.form.table
        owners = [table.c.created_by]
        owner_field = self.form.form.owner_field
        if owner_field:
            owners.append(table.c[owner_field])
        user_id = self.actor.user_id
        if scope == "own" or (scope == "team" and not self.actor.team):
            if user_id is None:
                return false()
            return or_(*(column == user_id for column in owners))
        if scope == "team":
            members = select(users.c.id).where(users.c.department_id.in_(self.actor.team))
            mine = [column.in_(members) for column in owners]
            department_field = self.form.form.department_field
            if department_field:  # records of the caller's department or one below it
                mine.append(table.c[department_field].in_(self.actor.team))
            return or_(*mine)
        checked = _scope_expression(self.form, scope)
        expression: ColumnElement[bool] = to_sql(
            checked, _with_user(sql_scope(self.form, dialect, now), user_id)
        )
        return expression == true()


def access_for(form: CompiledForm, actor: Actor) -> Access:
    """The actor's access to a top-level form (child rows follow their parent)."""
    top = form.parent or form
    if actor.admin:
        return Access(top, actor)
    scopes: dict[str, list[str]] = {}
    for permission in top.form.permissions:
        if actor.roles & set(permission.roles):
            for operation in permission.can:
                scopes.setdefault(operation, []).append(permission.scope)
    return Access(top, actor, scopes, hidden_fields(form, actor), _fields_for(form, actor, "read_only_for"))


def expression_scope(form: CompiledForm, actor: Actor) -> Scope:
    """The names a caller's conditions (`where=`, sorts, searches) may use.

    No field hidden from the caller — on the form, in its child rows, on linked forms, on
    the forms of its backlinks and on single (settings) forms — and no form the caller
    cannot read (nor a backlink whose link is hidden from them). The rows a link or a
    backlink reaches are limited in SQL by `link_guard`.
    """
    app = form.app

    def visible(target: Form) -> Scope:
        scope = scope_for(app, target)
        if actor.admin:
            return scope
        hidden = _hidden_keys(target, actor)
        scope.fields = {k: v for k, v in scope.fields.items() if k not in hidden}
        scope.links = {
            k: _lazy_visible(_target_of(app, target, k), visible)
            for k in scope.links
            if k not in hidden and _may_read(_target_of(app, target, k), actor)
        }
        scope.children = {
            k: _lazy_visible(_child_of(app, target, k), visible) for k in scope.children if k not in hidden
        }
        scope.singles = {
            k: _lazy_visible(single, visible)
            for k in scope.singles
            if (single := app.form(k)) is not None and _may_read(single, actor)
        }
        scope.backlinks = {  # the records linking here, where the reader may read their link
            b.key: _lazy_visible(source, visible)
            for b in target.backlinks
            if b.key in scope.backlinks
            and (source := app.form(b.form)) is not None
            and _may_read(source, actor)
            and b.link not in _hidden_keys(source, actor)
        }
        return scope

    return visible(form.form)


def _hidden_keys(form: Form, actor: Actor) -> set[str]:
    return {f.key for f in form.fields if actor.roles & set(f.hidden_for)}


def _target_of(app: App, form: Form, link: str) -> Form:
    target = app.form(getattr(form.field(link), "to", ""))
    assert target is not None
    return target


def _child_of(app: App, form: Form, key: str) -> Form:
    child = app.form(getattr(form.field(key), "form", ""))
    assert child is not None
    return child


def _may_read(target: Form, actor: Actor) -> bool:
    return actor.admin or any(actor.roles & set(p.roles) and "read" in p.can for p in target.permissions)


def _lazy_visible(target: Form, visible: Callable[[Form], Scope]) -> Callable[[], Scope]:
    return lambda: visible(target)


def link_guard(app: CompiledApp, actor: Actor, dialect: str, now: dt.datetime) -> Guard | None:
    """The reader's row scope on any linked form (or a backlink's), for expressions the reader wrote.

    Given a form table and the alias an expression reads it through, the guard is the
    reader's read condition on that alias (None: every row); a form the reader cannot
    read yields `false`, so every value read through it is null.
    """
    if actor.admin:
        return None
    forms = {f.table.name: f for f in app.forms.values()}
    conditions: dict[str, ColumnElement[bool] | None] = {}

    def guard(table: Table, alias: Any) -> ColumnElement[bool] | None:
        if table.name not in conditions:
            target = forms.get(table.name)
            access = access_for(target, actor) if target is not None else None
            readable = access is not None and access.can("read")
            conditions[table.name] = (
                access.condition("read", dialect, now) if access is not None and readable else false()
            )
        condition = conditions[table.name]
        if condition is None:
            return None
        adapted: ColumnElement[bool] = ClauseAdapter(alias).traverse(condition)
        return adapted

    return guard


def reading_for(
    app: CompiledApp, form: CompiledForm, actor: Actor, dialect: str, now: dt.datetime
) -> Reading:
    """How `actor` reads `form` in lists, exports and searches: the names their conditions
    may use (`expression_scope`) and their row scope on every linked form (`link_guard`)."""
    return Reading(
        hidden_fields(form, actor),
        lambda: expression_scope(form, actor),
        actor.user_id,
        link_guard(app, actor, dialect, now),
    )


def reader_sql_scope(
    app: CompiledApp, form: CompiledForm, actor: Actor, dialect: str, now: dt.datetime
) -> SqlScope:
    """The SQL scope of an expression a reader wrote: the reader's id, and links guarded."""
    scope = sql_scope(form, dialect, now)
    scope.user_id = actor.user_id
    scope.guard = link_guard(app, actor, dialect, now)
    return scope


def hidden_fields(form: CompiledForm, actor: Actor) -> frozenset[str]:
    """Fields of `form` (top or child) hidden from the actor."""
    return frozenset() if actor.admin else _fields_for(form, actor, "hidden_for")


def _fields_for(form: CompiledForm, actor: Actor, option: str) -> frozenset[str]:
    """Keys of the fields (table fields included) whose `option` names a role of the actor."""
    specs = [f.spec for f in form.fields.values()] + [form.form.field(key) for key in form.children]
    return frozenset(
        spec.key for spec in specs if spec is not None and actor.roles & set(getattr(spec, option))
    )


def _scope_expression(form: CompiledForm, text: str) -> Checked:
    cache: dict[str, Checked] = form.cache.setdefault("scopes", {})
    if text not in cache:
        cache[text] = check(parse(text), scope_for(form.app, form.form), text)
    return cache[text]


def _with_user(scope: Any, user_id: int | None) -> Any:
    scope.user_id = user_id
    return scope
