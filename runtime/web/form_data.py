"""Read a submitted web form into the record the records service expects.

Input names follow the error paths of the API, so a 422 lands beside its input:
`company`, `interests` (one entry per ticked option), `lines[0].product`,
`lines[0].id`. Markers name the fields whose absence means "empty" rather than
"not sent": `_present=interests` (no option ticked), `_present=lines` (every row
removed). A tick box sends a hidden `false` before the box's own `true`. Empty inputs become null.
Datetimes typed in the app's time zone are sent with that zone's offset, and
percentages are typed as people say them (35 for 35 %, stored as 0.35).

A field with a `fetch` carries a hidden `<name>._fetched`: the value it last had from
the server (stored, or filled by the live preview). While the input still holds that
value the user has not set the field, so it is not sent and the service decides
(it follows its fetch, or keeps its value; runtime/records/fetching.py).
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from starlette.datastructures import FormData, UploadFile

from runtime.records.compiled import CompiledForm

ROW_INPUT = re.compile(r"^([a-z][a-z0-9_]*)\[([0-9]{1,4})\]\.([a-z][a-z0-9_]*)$")
IDS = ("link", "user", "department", "attachment")
NUMBERS = ("integer", "decimal", "money", "percent")
Record = dict[str, Any]


def record_from_form(form: CompiledForm, data: FormData, zone: ZoneInfo, editable: set[str]) -> Record:
    """The record the user entered: only `editable` fields (and rows of editable tables)."""
    present = set(data.getlist("_present"))
    record: Record = {}
    for key, field in form.fields.items():
        if key not in editable or field.type == "attachment":
            continue
        if field.type == "multi_select":
            if key in data or key in present:
                record[key] = [str(v) for v in data.getlist(key) if isinstance(v, str) and v]
        elif unchanged_fetch(field, key, data):
            continue
        elif field.type == "boolean":
            if key in data:
                record[key] = "true" in data.getlist(key)  # a hidden "false" comes first
        elif key in data:
            record[key] = scalar(field.type, data.get(key), zone)
    for key, child in form.children.items():
        if key in editable and (key in present or any(name.startswith(f"{key}[") for name in data)):
            record[key] = _rows(child, key, data, zone)
    return record


def unchanged_fetch(field: Any, name: str, data: FormData) -> bool:
    """True when a fetched field's input `name` still holds the value it last had from the
    server (its `<name>._fetched`): the user has not set it."""
    marker = data.get(f"{name}._fetched") if getattr(field.spec, "fetch", None) is not None else None
    if not isinstance(marker, str):
        return False
    values = [v for v in data.getlist(name) if isinstance(v, str)]
    if field.type == "boolean":
        current = "true" if "true" in values else ("false" if marker else "")
    elif field.type == "multi_select":
        current = ",".join(sorted(v for v in values if v))
    else:
        current = values[0].strip() if values else ""
    return current == marker.strip()


def fetched_input(value: Any) -> str:
    """An input-shaped state value as its `._fetched` marker holds it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(sorted(str(v) for v in value))
    return "" if value is None else str(value)


def uploads(form: CompiledForm, data: FormData, editable: set[str]) -> dict[str, UploadFile]:
    """The files chosen for attachment fields (an empty file input means: keep the file)."""
    found: dict[str, UploadFile] = {}
    for key, field in form.fields.items():
        value = data.get(key)
        if (
            field.type == "attachment"
            and key in editable
            and isinstance(value, UploadFile)
            and value.filename
        ):
            found[key] = value
    return found


def cleared(form: CompiledForm, data: FormData, editable: set[str]) -> list[str]:
    """Attachment fields whose "remove the file" box was ticked."""
    return [
        key
        for key, field in form.fields.items()
        if field.type == "attachment" and key in editable and data.get(f"{key}._clear") == "true"
    ]


def scalar(kind: str, raw: Any, zone: ZoneInfo) -> Any:
    """One submitted input as the API would receive it: empty means null."""
    if not isinstance(raw, str):
        return None
    text = raw.strip()
    if not text:
        return None
    if kind in IDS:
        return int(text) if text.isdigit() and len(text) < 19 else text
    if kind == "datetime":
        return _zoned(text, zone)
    if kind in ("text", "long_text"):
        return raw
    if kind in NUMBERS:
        return _number(kind, text)
    return text


def _number(kind: str, text: str) -> str:
    """A typed number without group separators; a percentage typed as 35 is stored as 0.35."""
    plain = text.replace(",", "").replace("，", "").replace(" ", "").removesuffix("%")
    if kind != "percent":
        return plain
    try:
        return format((Decimal(plain) / 100).normalize(), "f")
    except InvalidOperation:
        return text  # the API explains what is wrong with it


def _rows(child: CompiledForm, key: str, data: FormData, zone: ZoneInfo) -> list[Record]:
    """The child rows in the order their inputs came (the order the user left them in)."""
    rows: dict[str, Record] = {}
    for name, raw in data.multi_items():
        match = ROW_INPUT.match(name)
        if match is None or match.group(1) != key:
            continue
        row = rows.setdefault(match.group(2), {})
        column = match.group(3)
        if column == "id":
            if isinstance(raw, str) and raw.isdigit():
                row["id"] = int(raw)
            continue
        field = child.fields.get(column)
        if field is None or field.spec.formula is not None or unchanged_fetch(field, name, data):
            continue
        if field.type == "multi_select":
            row.setdefault(column, []).append(raw)
        elif field.type == "boolean":
            row[column] = raw == "true"
        else:
            row[column] = scalar(field.type, raw, zone)
    return list(rows.values())


def _zoned(text: str, zone: ZoneInfo) -> str:
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        return text  # the API explains what is wrong with it
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment.isoformat()
