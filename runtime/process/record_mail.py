"""The `email` effect: e-mail an address the record holds — a customer contact, not a user.

`{email: {to: {email_field: contact.email, language_field: contact.language}, message: …}}`
follows the path of fields from the record (each part but the last a link, read as the
engine: every record, whoever caused the effect), renders the message (and subject) in the
language found at `language_field` (`zh` or `en`; anything else, or none, is Chinese) and
queues an e-mail job in the step's transaction, as `notify` does: the worker sends it after
the commit, through the same SMTP settings, and only when e-mail is configured. An empty
address sends nothing. `attach` adds the files of attachment fields of the record (a PDF a
`document` effect stored); the job names the files, the worker reads their bytes when it
sends. Each e-mail sent is noted in the record's history (`email`: to, subject).

Templates see `record` (the record's stored values, as in `notify`, with `record.labels`:
the option labels of its select fields in the message's language) and `recipient`, the
record the address was read from (the contact), shaped the same way.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, select

from runtime.identity.actor import Actor
from runtime.model import Form
from runtime.model.fields import MultiSelectField, SelectField
from runtime.model.process import EmailAddress, EmailSpec
from runtime.process import jobs
from runtime.process.history import note
from runtime.process.notifications import LABELS, in_language, render
from runtime.records.compiled import CompiledApp, CompiledForm
from runtime.records.errors import NotFound
from runtime.schema.system import files
from runtime.web.i18n import language_of

if TYPE_CHECKING:
    from runtime.process.engine import ProcessEngine, Target

Record = dict[str, Any]


def send_record_email(
    engine: ProcessEngine,
    conn: Connection,
    target: Target,
    spec: EmailSpec,
    actor: Actor,
    row: Record,
    key: str | None = None,
) -> int:
    """Queue the e-mail to each address the record holds; answers how many were queued."""
    if engine.mail is None:
        return 0  # e-mail is off where SMTP is not configured (as for notify's e-mails)
    attachments = _attachments(conn, row, spec.attach)
    app, form, record_id = target.where
    now = engine.now()
    sent = 0
    seen: set[str] = set()
    for index, address in enumerate(spec.to):
        email, holder, holder_form = follow(engine, conn, target.app, target.form, row, address.email_field)
        if not isinstance(email, str) or not email.strip() or email.strip().lower() in seen:
            continue
        email = email.strip()
        seen.add(email.lower())
        language = _language(engine, conn, target, row, address)
        record = in_language(with_labels(target.form.form, {**row, "form": form, "app": app}), language)
        recipient = with_labels(holder_form.form, holder) if holder is not None and holder_form else {}
        context = {"recipient": in_language(recipient, language)}
        body = render(spec.message, language, record, context)
        subject = _subject(spec, language, record, context, body)
        job_key = f"email:record:{key}:{index}" if key else f"email:record:{uuid.uuid4().hex}"
        payload: Record = {"to": email, "subject": subject, "body": body}
        if attachments:
            payload["attachments"] = attachments
        jobs.add_now(
            conn, "email", job_key, payload, now, app=app, form=form, record_id=record_id, max_attempts=8
        )
        note(conn, target, "email", actor, {"to": email, "subject": subject, "attachments": len(attachments)})
        sent += 1
    return sent


def follow(
    engine: ProcessEngine, conn: Connection, app: CompiledApp, form: CompiledForm, row: Record, path: str
) -> tuple[Any, Record | None, CompiledForm | None]:
    """The value at a path of fields from the record, with the record holding it and its form.

    Each part but the last is a link followed to its record; an empty link or a record
    that is gone gives (None, None, None).
    """
    parts = path.split(".")
    holder, holder_form = row, form
    for part in parts[:-1]:
        spec = holder_form.form.field(part)
        linked = holder.get(part)
        to = getattr(spec, "to", None)
        if linked is None or to is None or to not in app.forms:
            return None, None, None
        holder_form = app.forms[to]
        try:
            holder = engine.service.store.stored_row(conn, holder_form, int(linked))
        except NotFound:
            return None, None, None
    return holder.get(parts[-1]), holder, holder_form


def with_labels(form: Form, row: Record) -> Record:
    """The row with `labels`: each select field's option label, in both languages (a
    multi-select's labels joined by commas). A field named `labels` keeps its own value."""
    if form.field(LABELS) is not None:
        return dict(row)
    found: dict[str, Any] = {}
    for spec in form.fields:
        value = row.get(spec.key)
        if value is None:
            continue
        if isinstance(spec, SelectField):
            found[spec.key] = _option_label(spec, value)
        elif isinstance(spec, MultiSelectField) and isinstance(value, list):
            labels = [_option_label(spec, v) for v in value]
            found[spec.key] = {
                language: ", ".join(label[language] for label in labels) for language in ("zh", "en")
            }
    return {**row, LABELS: found}


def _option_label(spec: SelectField | MultiSelectField, value: Any) -> dict[str, str]:
    option = next((o for o in spec.options if o.key == value), None)
    label = option.label if option is not None and option.label is not None else None
    if label is None:
        return {"zh": str(value), "en": str(value)}
    return {"zh": label.text("zh"), "en": label.text("en")}


def _language(engine: ProcessEngine, conn: Connection, target: Target, row: Record, to: EmailAddress) -> str:
    if to.language_field is None:
        return language_of(None)
    value, _, _ = follow(engine, conn, target.app, target.form, row, to.language_field)
    return language_of(value if isinstance(value, str) else None)


def _subject(spec: EmailSpec, language: str, record: Record, context: Record, body: str) -> str:
    text = render(spec.subject, language, record, context) if spec.subject is not None else body
    line = next((part.strip() for part in text.splitlines() if part.strip()), "Formloom")
    return line[:150]


def _attachments(conn: Connection, row: Record, fields: list[str]) -> list[int]:
    """The ids of the files held in the attachment fields (empty fields give none)."""
    found: list[int] = []
    for key in fields:
        value = row.get(key)
        if value is None:
            continue
        column = files.c.id if isinstance(value, int) else files.c.public_id
        file_id = conn.execute(select(files.c.id).where(column == value)).scalar()
        if file_id is not None and file_id not in found:
            found.append(int(file_id))
    return found


def attached_files(conn: Connection, store: Any, ids: list[int]) -> list[tuple[str, str, bytes]]:
    """(name, content type, bytes) of each file, read from the file store when the e-mail is sent."""
    if not ids:
        return []
    if store is None:
        raise RuntimeError("e-mail attachments need the file store: the engine has none")
    rows = {r.id: r for r in conn.execute(select(files).where(files.c.id.in_(ids))).all()}
    found = []
    for file_id in ids:
        row = rows.get(file_id)
        if row is None:
            raise RuntimeError(f"attached file {file_id} no longer exists")
        found.append((str(row.name), str(row.content_type), store.path_of(row.checksum).read_bytes()))
    return found


__all__ = ["attached_files", "follow", "send_record_email", "with_labels"]
