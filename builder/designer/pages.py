"""What every designer page shares: admin-only access, templates and interface strings.

Designer templates extend the app's own (`base.html`, `_field.html`), so the designer
looks like the app and its preview is drawn by the same macros as the generated form.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.datastructures import FormData

from builder.designer.workspace import Workspace
from runtime.identity.actor import Actor
from runtime.records.errors import NotAllowed
from runtime.records.service import RecordsService
from runtime.web.i18n import Translate, language_of, translator
from runtime.web.render import Pages
from runtime.web.session import check_csrf, page_actor

HERE = Path(__file__).resolve().parent
RUNTIME_TEMPLATES = HERE.parents[1] / "runtime" / "web" / "templates"
TEMPLATES = Environment(
    loader=ChoiceLoader([FileSystemLoader(HERE / "templates"), FileSystemLoader(RUNTIME_TEMPLATES)]),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


@cache
def catalog(language: str) -> dict[str, str]:
    """The designer's own interface strings."""
    data: dict[str, str] = json.loads((HERE / "locales" / f"{language}.json").read_text(encoding="utf-8"))
    return data


def designer_translator(language: str) -> Translate:
    """Designer strings first, then the app's interface strings."""
    own = catalog(language_of(language))
    fallback = translator(language)

    def t(key: str, /, **values: Any) -> str:
        text = own.get(key)
        if text is None:
            return fallback(key, **values)
        return text.format(**values) if values else text

    return t


class Designer:
    """The workspace, the served records service and the page renderer of the designer routes."""

    def __init__(self, workspace: Workspace, service: RecordsService) -> None:
        self.workspace = workspace
        self.service = service
        self.pages = Pages(service)

    def admin(self, request: Request) -> Actor:
        """The signed-in admin; everyone else is refused (403)."""
        actor = page_actor(self.service.engine, request)
        if not actor.admin:
            raise NotAllowed("only admins may use the designer")
        return actor

    def render(
        self, request: Request, actor: Actor, template: str, status: int = 200, **context: Any
    ) -> Response:
        """A designer page in the admin's language."""
        t = designer_translator(actor.language)
        return self.pages.render(
            request, actor, template, status=status, templates=TEMPLATES, translate=t, **context
        )


def require_token(request: Request, actor: Actor, form: FormData | None = None) -> None:
    """Refuse a write without the session's CSRF token (a header for JSON, a field for forms)."""
    check_csrf(request, form if form is not None else FormData(), actor)


def json_answer(data: Any, status: int = 200) -> Response:
    """A JSON answer of a designer endpoint."""
    return JSONResponse(data, status_code=status)
