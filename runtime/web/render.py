"""Draw pages: one Jinja2 environment (autoescaped), the navigation and the page frame.

Every page gets the user, their language (`t` translates interface strings), the
CSRF token for its forms and htmx, the navigation of the apps and forms they may
use, and the counts of their open tasks and unread notifications.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from sqlalchemy import func, select

from runtime.identity.actor import Actor
from runtime.records.access import access_for
from runtime.records.service import RecordsService
from runtime.schema.system import notifications, tasks
from runtime.web.i18n import Translate, language_of, translator
from runtime.web.security import secured

TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).resolve().parent / "templates"),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


@dataclass
class NavForm:
    """A form in the navigation."""

    app: str
    key: str
    label: str
    can_create: bool


@dataclass
class NavApp:
    """An app in the navigation, with the forms and dashboards this user may open."""

    key: str
    label: str
    forms: list[NavForm]
    dashboards: list[tuple[str, str]]


def navigation(service: RecordsService, actor: Actor, language: str) -> list[NavApp]:
    """The apps, forms (readable, not child tables) and dashboards open to `actor`."""
    found: list[NavApp] = []
    for app in service.apps.values():
        forms = []
        for form in app.forms.values():
            access = access_for(form, actor)
            if form.form.child or not access.can("read"):
                continue
            forms.append(NavForm(app.app.app, form.key, form.form.label.text(language), access.can("create")))
        boards = [
            (d.dashboard, d.label.text(language))
            for d in app.app.dashboards
            if not d.roles or actor.admin or actor.roles & set(d.roles)
        ]
        if forms or boards:
            found.append(NavApp(app.app.app, app.app.label.text(language), forms, boards))
    return found


class Pages:
    """Renders templates into secured HTML responses for one records service."""

    def __init__(self, service: RecordsService) -> None:
        self.service = service

    def render(
        self,
        request: Request,
        actor: Actor,
        template: str,
        status: int = 200,
        templates: Environment = TEMPLATES,
        translate: Translate | None = None,
        **context: Any,
    ) -> HTMLResponse:
        """A full page (or, with `fragment=True` in the context, a part htmx swaps in).

        Extensions (the designer) pass their own `templates` (which can extend these) and
        `translate` (which can fall back to the interface catalog).
        """
        language = language_of(actor.language)
        frame = {} if context.get("fragment") else self._frame(actor, language)
        html = templates.get_template(template).render(
            request=request,
            actor=actor,
            language=language,
            t=translate or translator(language),
            csrf_token=actor.csrf_token or "",
            path=request.url.path,
            extra_links=getattr(request.app.state, "nav_links", []) if actor.admin else [],
            **frame,
            **context,
        )
        return secured(HTMLResponse(html, status_code=status))  # type: ignore[return-value]

    def counts(self, actor: Actor) -> dict[str, int]:
        """The user's open tasks and unread notifications (one statement)."""
        return dict(self._frame(actor, language_of(actor.language), nav=False)["counts"])

    def _frame(self, actor: Actor, language: str, nav: bool = True) -> dict[str, Any]:
        counts = {"tasks": 0, "unread": 0}
        if actor.user_id is not None:
            open_tasks = (
                select(func.count())
                .select_from(tasks)
                .where(tasks.c.assignee_id == actor.user_id, tasks.c.status == "open")
                .scalar_subquery()
            )
            unread = (
                select(func.count())
                .select_from(notifications)
                .where(notifications.c.user_id == actor.user_id, notifications.c.read_at.is_(None))
                .scalar_subquery()
            )
            with self.service.engine.connect() as conn:
                row = conn.execute(select(open_tasks, unread)).one()
            counts = {"tasks": row[0], "unread": row[1]}
        return {"nav": navigation(self.service, actor, language) if nav else [], "counts": counts}
