"""What a document template is given: the record as its reader sees it, written for people.

The record comes from the records service, read for the reader, so the fields hidden
from them are not there at all (a template naming one renders nothing) and linked
records they may not read show no title. Variables:

- `record`: every field as text in the document's language: option labels, money with
  its currency, dates written out, links and users by their title or name, attachments
  by file name; a table field is the list of its rows, each a mapping of the same kind;
  `id` and `created_at` too.
- `values`: the same record as the API gives it (decimals as text, dates in ISO, links as
  `{id, display}`), for arithmetic and conditions.
- `labels`: field labels in the document's language (`labels.amount`,
  `labels["lines.quantity"]` for a table field's row fields).
- `title` (the record's title), `document` (`key`, `label`), `app` (`key`, `label`,
  `currency`, `timezone`), `language`, `today` (written out, in the app's time zone).
- `settings`: the records of the app's single (settings) forms the reader may read, by
  form key, shaped like `record` (`settings.company_profile.name`): a company's name,
  address and bank details for the letterhead.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from babel.dates import format_date
from markupsafe import Markup

from runtime.model.document import Document
from runtime.records.compiled import CompiledApp, CompiledForm
from runtime.web.formats import display, local_time, locale_of, record_title

Record = dict[str, Any]


def template_context(
    app: CompiledApp,
    form: CompiledForm,
    document: Document,
    record: Record,
    language: str,
    today: dt.date,
    settings: Callable[[str], Record | None],
    stylesheet: str,
) -> dict[str, Any]:
    """The variables a document's template renders with (see the module's description)."""
    definition = app.app
    return {
        "record": shown(form, record, language, definition.currency, definition.zone()),
        "values": record,
        "labels": labels_of(form, language),
        "title": record_title(record, form.title_field),
        "document": {"key": document.document, "label": document.label.text(language)},
        "app": {
            "key": definition.app,
            "label": definition.label.text(language),
            "currency": definition.currency,
            "timezone": definition.timezone,
        },
        "language": language,
        "today": format_date(today, "long", locale=locale_of(language)),
        "settings": Settings(app, language, settings),
        "stylesheet": Markup(stylesheet),
    }


def shown(form: CompiledForm, record: Record, language: str, currency: str, zone: Any) -> Record:
    """The record's fields (those present: not hidden from the reader) as text for people."""
    found: Record = {"id": record.get("id")}
    if "created_at" in record:
        found["created_at"] = _text("datetime", record["created_at"], language, currency, zone)
    if isinstance(record.get("created_by"), dict):
        found["created_by"] = str(record["created_by"].get("display") or "")
    for key, field in form.fields.items():
        if key in record:
            found[key] = _shown_value(field.spec, record[key], language, currency, zone)
    for key, child in form.children.items():
        rows = record.get(key)
        if isinstance(rows, list):
            found[key] = [shown(child, row, language, currency, zone) for row in rows]
    return found


def _shown_value(spec: Any, value: Any, language: str, currency: str, zone: Any) -> str:
    if isinstance(value, dict) and "display" in value and value["display"] is None:
        return ""  # a linked record the reader may not read: no title, not even its id
    if spec.type == "date":
        return _text("date", value, language, currency, zone)
    return display(spec, value, language, currency, zone)


def _text(kind: str, value: Any, language: str, currency: str, zone: Any) -> str:
    if value is None or value == "":
        return ""
    if kind == "date":
        try:
            return str(
                format_date(dt.date.fromisoformat(str(value)[:10]), "long", locale=locale_of(language))
            )
        except ValueError:
            return str(value)
    return local_time(value, zone)


def labels_of(form: CompiledForm, language: str) -> dict[str, str]:
    """Field labels in `language`; a table field's row fields as `table.field`."""
    found = {spec.key: _label(spec, language) for spec in form.form.fields}
    for table, child in form.children.items():
        for spec in child.form.fields:
            found[f"{table}.{spec.key}"] = _label(spec, language)
    return found


def _label(spec: Any, language: str) -> str:
    label = getattr(spec, "label", None)
    return str(label.text(language)) if label is not None else str(spec.key)


class Settings(Mapping[str, Record]):
    """The app's single forms by key, each read (for the reader) only when a template asks.

    Everything else it holds is behind underscores, which the sandbox does not let a
    template reach."""

    def __init__(self, app: CompiledApp, language: str, read: Callable[[str], Record | None]) -> None:
        self._app = app
        self._language = language
        self._read = read
        self._keys = [f.key for f in app.forms.values() if f.form.single]
        self._found: dict[str, Record] = {}

    def __getitem__(self, key: str) -> Record:
        if key not in self._keys:
            raise KeyError(key)
        if key not in self._found:
            record = self._read(key) or {}
            definition = self._app.app
            self._found[key] = shown(
                self._app.forms[key], record, self._language, definition.currency, definition.zone()
            )
        return self._found[key]

    def __getattr__(self, key: str) -> Record:
        if key.startswith("_"):
            raise AttributeError(key)
        try:
            return self[key]
        except KeyError:
            raise AttributeError(key) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)
