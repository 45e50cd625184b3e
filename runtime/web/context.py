"""What every web router shares: the services, the page renderer and the signed-in user."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from runtime.identity.actor import Actor
from runtime.process.service import ProcessService
from runtime.records.access import hidden_fields
from runtime.records.compiled import CompiledApp, CompiledForm
from runtime.records.files import FileStore
from runtime.records.service import RecordsService
from runtime.reports.service import ReportsService
from runtime.web.form_view import Context
from runtime.web.i18n import language_of
from runtime.web.render import Pages
from runtime.web.session import page_actor


@dataclass
class Web:
    """The services behind the pages; `actor` is the dependency of every page."""

    service: RecordsService
    process: ProcessService
    reports: ReportsService
    store: FileStore
    pages: Pages

    def actor(self, request: Request) -> Actor:
        """The signed-in user (pages without one redirect to the sign-in form)."""
        return page_actor(self.service.engine, request)

    def input_context(self, app: CompiledApp, form: CompiledForm, actor: Actor, creating: bool) -> Context:
        """What the form's inputs need: language, currency, zone, hidden and locked fields."""
        access = self.service.access(app.app.app, form.key, actor)
        locked = self.service.locked_fields(app.app.app, form.key, actor, creating=creating)
        children = {key: hidden_fields(child, actor) for key, child in form.children.items()}
        return Context(
            language_of(actor.language), app.app.currency, app.app.zone(), access.hidden, locked, children
        )

    def editable(self, form: CompiledForm, ctx: Context) -> set[str]:
        """The fields the user may fill in on this form."""
        keys = [*form.writable(), *form.children]
        return {k for k in keys if k not in ctx.locked and k not in ctx.hidden}
