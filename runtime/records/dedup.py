"""Duplicate detection: normalised keys per duplicate group, stored in indexed columns.

A form's `duplicates` lists groups of fields; a record is a possible duplicate of
another when every field of one group matches after normalisation. Each group's
key is a hash of its normalised values, kept in the column `_dup_<n>`, so finding
candidates is an index lookup, never a scan.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from typing import Any

from sqlalchemy import Connection, or_, select

from runtime.records.compiled import CompiledForm

SEPARATOR = "\x1f"
# Legal-form words removed from company names before comparing (longest first).
LEGAL_SUFFIXES = sorted(
    [
        "股份有限公司",
        "有限责任公司",
        "集团有限公司",
        "有限公司",
        "股份公司",
        "集团",
        "公司",
        "co., ltd.",
        "co.,ltd.",
        "co. ltd.",
        "co ltd",
        "company limited",
        "limited",
        "ltd.",
        "ltd",
        "incorporated",
        "inc.",
        "inc",
        "corporation",
        "corp.",
        "corp",
        "l.l.c.",
        "llc",
        "gmbh",
        "ag",
        "s.a.",
        "plc",
        "co.",
        "company",
    ],
    key=len,
    reverse=True,
)
NOT_WORD = re.compile(r"[\W_]+", re.UNICODE)


def normalise_text(value: str) -> str:
    """Case, width, spacing, punctuation and trailing legal forms do not count."""
    text = unicodedata.normalize("NFKC", value).casefold().strip()
    changed = True
    while changed:
        changed = False
        for suffix in LEGAL_SUFFIXES:
            if text.endswith(suffix) and len(text) > len(suffix):
                before = text[: -len(suffix)]
                if suffix.isascii() and before[-1:].isalnum():
                    continue  # "Acmeinc" keeps its letters; only a separate word is a legal form
                text = before.rstrip(" ,.-")
                changed = True
                break
    return NOT_WORD.sub("", text)


def normalise(kind: str, value: Any) -> str | None:
    """The comparable form of one field value, or None when it is empty."""
    if value is None or value == "":
        return None
    if kind in ("email", "phone"):
        return str(value).strip().lower()
    if kind == "text":
        return normalise_text(str(value)) or None
    return str(value)


def group_keys(form: CompiledForm, record: dict[str, Any]) -> dict[str, str | None]:
    """`{_dup_<n>: key}` for every duplicate group; None when a field of the group is empty."""
    keys: dict[str, str | None] = {}
    for index, group in enumerate(form.form.duplicates):
        parts = [normalise(form.fields[k].type, record.get(k)) for k in group]
        if any(part is None for part in parts):
            keys[key_column(index)] = None
        else:
            joined = SEPARATOR.join(p for p in parts if p is not None)
            keys[key_column(index)] = hashlib.sha256(joined.encode()).hexdigest()[:40]
    return keys


def key_column(index: int) -> str:
    """The column holding the key of duplicate group `index`."""
    return f"_dup_{index}"


def candidates(
    conn: Connection, form: CompiledForm, keys: dict[str, str | None], exclude: int | None = None
) -> list[int]:
    """Ids of live records sharing any group key (merged records are not candidates)."""
    table = form.table
    conditions = [table.c[column] == key for column, key in keys.items() if key is not None]
    if not conditions:
        return []
    stmt = select(table.c.id).where(or_(*conditions), table.c._merged_into.is_(None))
    if exclude is not None:
        stmt = stmt.where(table.c.id != exclude)
    return [int(i) for i in conn.execute(stmt.order_by(table.c.id).limit(20)).scalars()]
