"""The documents of records: which a reader may render, and rendering them for that reader.

A reader may render a document of a record when they may read the record (404 otherwise,
as for any record outside their scope), hold one of the document's `roles` if it names
any (403), and the record meets the document's `when` and has a template (409
`unavailable`). The record is read through the records service for the reader, so
permissions hold in the document exactly as in the API: hidden fields are absent,
linked records they may not read show no title.
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Connection, select

from runtime.documents.context import template_context
from runtime.documents.render import Renderer, default_stylesheet, pdf
from runtime.identity.actor import Actor
from runtime.model.document import Document
from runtime.process.expressions import Expressions, gather, holds
from runtime.records.access import access_for
from runtime.records.compiled import CompiledApp, CompiledForm
from runtime.records.errors import Conflict, FieldProblem, NotAllowed, missing
from runtime.records.service import RecordsService
from runtime.records.visibility import Visibility
from runtime.web.formats import record_title
from runtime.web.i18n import language_of

Format = Literal["html", "pdf"]
Record = dict[str, Any]
MEDIA_TYPES = {"html": "text/html; charset=utf-8", "pdf": "application/pdf"}
UNSAFE_NAME = re.compile(r'[\x00-\x1f\x7f/\\:*?"<>|]+')


@dataclass(frozen=True)
class Rendered:
    """A rendered document: its bytes, media type and a file name for people."""

    content: bytes
    media_type: str
    filename: str


class DocumentsService:
    """Lists and renders the documents of the records a records service serves."""

    def __init__(self, service: RecordsService) -> None:
        self.service = service
        self.expressions = Expressions(service.clock)
        self.renderers: dict[str, Renderer] = {}

    # -- the API's two questions -------------------------------------------------------

    def available(self, app_key: str, form_key: str, record_id: int, actor: Actor) -> list[Record]:
        """The documents of a record the reader may render, each `ready` or not (with the reason)."""
        app, form = self.service.resolve(app_key, form_key)
        access_for(form, actor).require("read")
        found = []
        with self.service.engine.connect() as conn:
            self.service.require_in_scope(conn, form, record_id, actor, "read")
            row = self.service.store.stored_row(conn, form, record_id)
            for document in app.app.documents_of(form_key):
                if not may_render(document, actor):
                    continue
                reason = self._held(conn, app, form, document, row, actor)
                base = f"/api/v1/{app_key}/{form_key}/{record_id}/documents/{document.document}"
                found.append(
                    {
                        "key": document.document,
                        "label": document.label.model_dump(exclude_none=True),
                        "ready": reason is None,
                        "reason": reason,
                        "template": document.template_for(row.get(document.choose_by or "")),
                        "html": f"{base}.html",
                        "pdf": f"{base}.pdf",
                    }
                )
        return found

    def render(
        self, app_key: str, form_key: str, record_id: int, key: str, actor: Actor, kind: Format
    ) -> Rendered:
        """Document `key` of a record, as the reader may see it, in HTML or PDF."""
        app, form = self.service.resolve(app_key, form_key)
        document = app.app.document(key)
        if document is None or document.form != form_key:
            raise missing("document", key)
        access_for(form, actor).require("read")
        with self.service.engine.connect() as conn:
            self.service.require_in_scope(conn, form, record_id, actor, "read")
            if not may_render(document, actor):
                raise NotAllowed(f"your roles do not allow the document '{key}'")
            row = self.service.store.stored_row(conn, form, record_id)
            reason = self._held(conn, app, form, document, row, actor)
            if reason is not None:
                raise Conflict([FieldProblem(None, "unavailable", reason)])
            return self.rendered(conn, app, form, document, record_id, actor, kind)

    # -- rendering ---------------------------------------------------------------------

    def rendered(
        self,
        conn: Connection,
        app: CompiledApp,
        form: CompiledForm,
        document: Document,
        record_id: int,
        actor: Actor,
        kind: Format,
    ) -> Rendered:
        """Render on an open connection (inside a step's transaction too) for `actor`, who
        must be able to read the record (404 otherwise); `when` and roles are not checked."""
        record = self.service.visible(conn, app, form, record_id, actor)
        row = self.service.store.stored_row(conn, form, record_id)
        template = document.template_for(row.get(document.choose_by or ""))
        if template is None:
            raise Conflict([FieldProblem(None, "unavailable", _no_template(document, row))])
        language = document.language or language_of(actor.language)
        today = self.service.clock().astimezone(app.app.zone()).date()
        variables = template_context(
            app,
            form,
            document,
            record,
            language,
            today,
            self._settings(conn, app, actor),
            default_stylesheet(),
        )
        html = self.renderer(app).html(template, variables)
        name = _file_name(document.label.text(language), record_title(record, form.title_field), kind)
        content = pdf(html) if kind == "pdf" else html.encode("utf-8")
        return Rendered(content, MEDIA_TYPES[kind], name)

    def renderer(self, app: CompiledApp) -> Renderer:
        """The renderer of an app's templates (made once per served definition)."""
        found = self.renderers.get(app.app.app)
        if found is None or found.app is not app.app:
            found = self.renderers[app.app.app] = Renderer(app.app)
        return found

    def _held(
        self,
        conn: Connection,
        app: CompiledApp,
        form: CompiledForm,
        document: Document,
        row: Record,
        actor: Actor,
    ) -> str | None:
        """Why the record offers no such document now (its `when`, or no template), or None."""
        if document.when is not None:
            condition = self.expressions.get(app.app, form.form, document.when)
            if not holds(condition, gather(conn, app, form, row, [condition]), actor.user_id):
                return f"the condition of the document '{document.document}' does not hold: {document.when}"
        if document.template_for(row.get(document.choose_by or "")) is None:
            return _no_template(document, row)
        return None

    def _settings(self, conn: Connection, app: CompiledApp, actor: Actor) -> Callable[[str], Record | None]:
        """Reads the record of a single form for the reader (None when they may not read it)."""

        def read(key: str) -> Record | None:
            form = app.forms[key]
            access = access_for(form, actor)
            if not access.can("read"):
                return None
            stmt = select(form.table.c.id).order_by(form.table.c.id).limit(1)
            condition = access.condition("read", self.service.engine.dialect.name, self.service.clock())
            if condition is not None:
                stmt = stmt.where(condition)
            found = conn.execute(stmt).scalar()
            if found is None:
                return None
            return Visibility(self.service, app, actor).read_ids(conn, form, [int(found)])[0]

        return read


def may_render(document: Document, actor: Actor) -> bool:
    """Admins, and with `roles` only their holders (reading the record is checked apart)."""
    return actor.admin or not document.roles or bool(actor.roles & set(document.roles))


def _no_template(document: Document, row: Record) -> str:
    choice = row.get(document.choose_by or "")
    return f"the document '{document.document}' has no template for {document.choose_by} '{choice}'"


def _file_name(label: str, title: str, kind: str) -> str:
    """`报价单-QT-2026-00001.pdf`: the document's label and the record's title, safe for a file."""
    stem = UNSAFE_NAME.sub("_", f"{label}-{title}").strip(" ._") or "document"
    return f"{stem[:150]}.{kind}"


_SERVICES: weakref.WeakKeyDictionary[RecordsService, DocumentsService] = weakref.WeakKeyDictionary()


def documents_for(service: RecordsService) -> DocumentsService:
    """The documents service of a records service (made once)."""
    found = _SERVICES.get(service)
    if found is None:
        found = _SERVICES[service] = DocumentsService(service)
    return found
