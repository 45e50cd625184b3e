"""Templates to HTML, HTML to PDF.

Each app's templates are compiled once per published definition (`Renderer` keeps the
environment). PDF comes from WeasyPrint, which lays out the HTML with the default
stylesheet (runtime/documents/templates/formloom/document.css) under the template's own
CSS; fonts come from the system (fontconfig), so Chinese text needs a CJK font such as
Debian's fonts-noto-cjk. WeasyPrint fetches nothing: every URL in a document but `data:`
is refused, so a template or a value cannot make the server read a file or call a host.
"""

from __future__ import annotations

import logging
from functools import cache, lru_cache
from typing import Any

from jinja2 import TemplateError
from jinja2.sandbox import SandboxedEnvironment

from runtime.documents.environment import BUILT_IN, environment
from runtime.model import App
from runtime.records.errors import FieldProblem, InvalidRecord

STYLESHEET = BUILT_IN / "formloom" / "document.css"
PDF_CACHE = 32  # PDFs kept in memory by their HTML (a few hundred kB each)
log = logging.getLogger("formloom.documents")


@cache
def default_stylesheet() -> str:
    """The default CSS of documents (fonts with CJK first, A4 pages, tables, page numbers)."""
    return STYLESHEET.read_text(encoding="utf-8")


class Renderer:
    """Renders the documents of one app definition."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.env: SandboxedEnvironment = environment(app.document_templates)

    def html(self, template: str, variables: dict[str, Any]) -> str:
        """The template rendered with `variables`; a template failing on this record is a 422."""
        try:
            return self.env.get_template(template).render(variables)
        except (TemplateError, ArithmeticError, TypeError, ValueError) as exc:
            log.warning("document template %s failed: %s", template, exc)
            message = f"the template {template} failed on this record: {exc}"
            raise InvalidRecord([FieldProblem(None, "template", message[:500])]) from exc


@lru_cache(maxsize=PDF_CACHE)
def pdf(html: str) -> bytes:
    """The HTML laid out as PDF (A4 and the default stylesheet unless the document says otherwise).

    Laying out takes about a second; the same HTML (the same record, reader, language and
    day) gives the same PDF, so the last few are kept in memory, keyed by their HTML."""
    from weasyprint import CSS, HTML  # imported on first use: it loads Pango, which takes a while
    from weasyprint.urls import URLFetcher

    fetcher = URLFetcher(allowed_protocols={"data"}, allow_redirects=False, timeout=1)
    document = HTML(string=html, url_fetcher=fetcher, base_url=None)
    stylesheet = CSS(string=default_stylesheet(), url_fetcher=fetcher)
    return bytes(document.write_pdf(stylesheets=[stylesheet]))
