"""In-app notifications (read and unread) and the e-mails that go with them.

A notify effect stores one row per user with the message's template (both languages)
and the values it reads (the record's fields, the form's label …); a list renders each
message in the reader's language when it is read, so a user who switches language
reads every message in the new one. The text rendered in the recipient's language at
sending time is kept too (for e-mail, and for rows written before templates were kept).
With `email: true` (and SMTP configured) an e-mail job is queued in the same
transaction; the worker sends it. A notification about a task is marked read once the
task is done.
"""

from __future__ import annotations

import datetime as dt
import logging
from decimal import Decimal
from typing import Any

from jinja2 import ChainableUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment
from sqlalchemy import Connection, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from runtime.model.common import Labels
from runtime.process import jobs
from runtime.process.mail import MailSettings
from runtime.records.errors import NotFound
from runtime.records.reader import iso_or_none
from runtime.schema.system import notifications, users

TEMPLATES = SandboxedEnvironment(autoescape=False, undefined=ChainableUndefined)
MAX_PAGE = 200
LABELS = "labels"  # record.labels.status: the label of the status option, in the reader's language
log = logging.getLogger("formloom.notifications")


def render(
    message: Labels, language: str, record: dict[str, Any], context: dict[str, Any] | None = None
) -> str:
    """The message in `language`, its template filled from the record (`record`, plus `app` and `form`).

    A template that fails while rendering never loses the change that caused it: the
    message is sent as written, and the failure is logged.
    """
    text = message.text(language)
    try:
        return TEMPLATES.from_string(text).render(record=in_language(record, language), **(context or {}))
    except (TemplateError, ArithmeticError, TypeError, ValueError) as exc:
        log.warning("message template failed (%s); sent as written: %s", exc, text)
        return text


def in_language(record: dict[str, Any], language: str) -> dict[str, Any]:
    """The record with `labels` (option labels of its select fields, kept in both languages:
    `{status: {zh, en}}`, see runtime/process/record_mail.py) in one language."""
    labels = record.get(LABELS)
    if not isinstance(labels, dict) or not all(isinstance(v, dict) for v in labels.values()):
        return record
    chosen = {k: v.get(language) or v.get("en") or v.get("zh") or "" for k, v in labels.items()}
    return {**record, LABELS: chosen}


def notify(
    conn: Connection,
    user_ids: list[int],
    message: Labels,
    record: dict[str, Any],
    now: dt.datetime,
    *,
    where: tuple[str, str, int] | None = None,
    key: str | None = None,
    email: MailSettings | None = None,
    context: dict[str, Any] | None = None,
    tasks_of: dict[int, int] | None = None,
) -> int:
    """Notify each user once (per `key`, when given); answers how many rows were written.

    `context` values may be `Labels` (rendered in the reader's language); `tasks_of` maps a
    user to the task the message asks them to do.
    """
    if not user_ids:
        return 0
    template = message.model_dump(exclude_none=True)
    params = {"record": plain(record), "context": plain(context or {})}
    people = conn.execute(
        select(users.c.id, users.c.language, users.c.email).where(users.c.id.in_(user_ids))
    ).all()
    builder = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    written = 0
    for person in people:
        extra = {
            k: v.text(person.language) if isinstance(v, Labels) else v for k, v in (context or {}).items()
        }
        text = render(message, person.language, record, extra)
        app, form, record_id = where or (None, None, None)
        row_key = f"{key}:{person.id}" if key else None
        stmt = builder(notifications).values(
            user_id=person.id,
            app=app,
            form=form,
            record_id=record_id,
            message=text,
            template=template,
            params=params,
            task_id=(tasks_of or {}).get(person.id),
            key=row_key,
            created_at=now,
        )
        returning = stmt.on_conflict_do_nothing(index_elements=["key"]).returning(notifications.c.id)
        new_id = conn.execute(returning).scalar()
        if new_id is None:
            continue  # already notified under this key: a retried job
        written += 1
        if email is not None and person.email:
            subject = next((line.strip() for line in text.splitlines() if line.strip()), "Formloom")[:150]
            payload = {"to": person.email, "subject": subject, "body": text}
            jobs.add_now(conn, "email", f"email:notification:{new_id}", payload, now, max_attempts=8)
    return written


def plain(value: Any) -> Any:
    """`value` as JSON can hold it: dates and times as ISO text, decimals as text, labels as dicts."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, Labels):
        return {"$labels": value.model_dump(exclude_none=True)}
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def read_text(row: Any, language: str) -> str:
    """A stored notification's message in `language` (the text sent, for rows without a template)."""
    if not row["template"]:
        return str(row["message"])
    params = row["params"] or {}
    context = {
        key: Labels(**value["$labels"]).text(language)
        if isinstance(value, dict) and "$labels" in value
        else value
        for key, value in (params.get("context") or {}).items()
    }
    return render(Labels(**row["template"]), language, params.get("record") or {}, context)


def list_for(
    conn: Connection, user_id: int, *, unread_only: bool, limit: int, offset: int, language: str = "zh"
) -> dict[str, Any]:
    """A page of a user's notifications, newest first, in `language`, with the unread count."""
    table = notifications
    stmt = select(table).where(table.c.user_id == user_id)
    if unread_only:
        stmt = stmt.where(table.c.read_at.is_(None))
    rows = conn.execute(stmt.order_by(table.c.id.desc()).limit(limit + 1).offset(offset)).mappings().all()
    unread = conn.execute(
        select(func.count()).select_from(table).where(table.c.user_id == user_id, table.c.read_at.is_(None))
    ).scalar_one()
    items = [_public(row, language) for row in rows[:limit]]
    more = len(rows) > limit
    return {"items": items, "unread": unread, "next_offset": offset + limit if more else None}


def mark_read(conn: Connection, user_id: int, notification_id: int | None, now: dt.datetime) -> int:
    """Mark one notification (or, with None, all) of the user as read; NotFound for another's."""
    table = notifications
    stmt = update(table).where(table.c.user_id == user_id, table.c.read_at.is_(None)).values(read_at=now)
    if notification_id is None:
        return int(conn.execute(stmt).rowcount)
    owner = conn.execute(select(table.c.user_id).where(table.c.id == notification_id)).scalar()
    if owner != user_id:
        raise NotFound("notification", notification_id)
    return int(conn.execute(stmt.where(table.c.id == notification_id)).rowcount)


def _public(row: Any, language: str) -> dict[str, Any]:
    link = None
    if row["app"] and row["form"] and row["record_id"]:
        link = f"/api/v1/{row['app']}/{row['form']}/{row['record_id']}"
    return {
        "id": row["id"],
        "message": read_text(row, language),
        "record": link,
        "created_at": iso_or_none(row["created_at"]),
        "read_at": iso_or_none(row["read_at"]),
    }
