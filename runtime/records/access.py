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

from sqlalchemy import false, or_, select, true
from sqlalchemy.sql.elements import ColumnElement

from runtime.expressions.checker import Checked, check
from runtime.expressions.parser import parse
from runtime.expressions.to_sql import to_sql
from runtime.expressions.types import Scope, scope_for
from runtime.identity.actor import Actor
from runtime.model import App, Form
from runtime.records.compiled import CompiledForm
from runtime.records.errors import Forbidden, Unauthenticated
from runtime.records.query import sql_scope
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
            return or_(*(column.in_(members) for column in owners))
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
    """The names a caller's conditions (`where=`) may use: no hidden field, no unreadable form."""
    app = form.app

    def visible(target: Form) -> Scope:
        scope = scope_for(app, target)
        if actor.admin:
            return scope
        hidden = {f.key for f in target.fields if actor.roles & set(f.hidden_for)}
        scope.fields = {k: v for k, v in scope.fields.items() if k not in hidden}
        scope.links = {
            k: _lazy_visible(app, target, k, visible)
            for k in scope.links
            if k not in hidden and _readable(app, target, k, actor)
        }
        scope.children = {k: v for k, v in scope.children.items() if k not in hidden}
        return scope

    return visible(form.form)


def _readable(app: App, form: Form, link: str, actor: Actor) -> bool:
    spec = form.field(link)
    target = app.form(getattr(spec, "to", "")) if spec is not None else None
    if target is None:
        return False
    return any(actor.roles & set(p.roles) and "read" in p.can for p in target.permissions)


def _lazy_visible(app: App, form: Form, link: str, visible: Callable[[Form], Scope]) -> Callable[[], Scope]:
    spec = form.field(link)
    target = app.form(getattr(spec, "to", ""))
    assert target is not None
    return lambda: visible(target)


def hidden_fields(form: CompiledForm, actor: Actor) -> frozenset[str]:
    """Fields of `form` (top or child) hidden from the actor."""
    return frozenset() if actor.admin else _fields_for(form, actor, "hidden_for")


def _fields_for(form: CompiledForm, actor: Actor, option: str) -> frozenset[str]:
    return frozenset(key for key, f in form.fields.items() if actor.roles & set(getattr(f.spec, option)))


def _scope_expression(form: CompiledForm, text: str) -> Checked:
    cache: dict[str, Checked] = form.cache.setdefault("scopes", {})
    if text not in cache:
        cache[text] = check(parse(text), scope_for(form.app, form.form), text)
    return cache[text]


def _with_user(scope: Any, user_id: int | None) -> Any:
    scope.user_id = user_id
    return scope
