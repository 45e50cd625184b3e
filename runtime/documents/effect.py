"""The `document` effect: render a document of the record to PDF and keep it on the record.

`{document: {document: quote, store_in: sent_document}}` on a transition (the quote's
`send`) renders the document as the user taking the step sees the record, stores the
PDF in the file store like an upload of theirs, and sets the attachment field
`store_in` to it, inside the step's transaction: the file is there when the step
commits, and a step that fails keeps no reference to it. A step without a user (a timer,
a schedule) renders it as the system, with every field. Who may download the file is
decided like any attachment: whoever may read the record and that field.
"""

from __future__ import annotations

from io import BytesIO
from typing import TYPE_CHECKING

from sqlalchemy import Connection

from runtime.documents.service import documents_for
from runtime.identity.actor import SYSTEM, Actor
from runtime.identity.directory import load_actor
from runtime.model.process import DocumentSpec
from runtime.records.errors import FieldProblem, InvalidRecord, NotFound, missing

if TYPE_CHECKING:
    from runtime.process.engine import ProcessEngine, Target


def store_document(
    engine: ProcessEngine, conn: Connection, target: Target, spec: DocumentSpec, actor: Actor
) -> None:
    """Render `spec.document` of the record as PDF and set `spec.store_in` to the file."""
    document = target.app.app.document(spec.document)
    if document is None:
        raise missing("document", spec.document)
    if engine.files is None:
        raise RuntimeError("documents need a file store: the engine has none (see runtime/api/app.py)")
    reader = _reader(conn, actor)
    try:
        rendered = documents_for(engine.service).rendered(
            conn, target.app, target.form, document, target.record_id, reader, "pdf"
        )
    except NotFound as exc:
        message = f"the document '{spec.document}' cannot be made for you: you may not read this record"
        raise InvalidRecord([FieldProblem(None, "document", message)]) from exc
    info = engine.files.save(
        conn, BytesIO(rendered.content), rendered.filename, rendered.media_type, actor.user_id
    )
    engine.write(target, {spec.store_in: info["id"]}, actor)


def _reader(conn: Connection, actor: Actor) -> Actor:
    """The user the step is taken for, with their own permissions (not the engine's)."""
    if actor.user_id is None:
        return SYSTEM
    found = load_actor(conn, actor.user_id, channel=actor.channel)
    return found if found is not None else SYSTEM
