"""Tables as files: CSV (UTF-8 with a BOM, so Excel reads Chinese) and XLSX.

Both take `columns` as `(key, label)` pairs and `rows` as sequences aligned with
them, so record exports and report data share one writer. Values are written plainly:
a link or user `{id, display}` as its display text, an attachment as its file name, a
list joined with ", ", None as an empty cell. In CSV, booleans are `true`/`false` and
dates ISO 8601; in XLSX, numbers stay numbers, dates and datetimes are real Excel
dates (a datetime with a time zone keeps its wall-clock time) and booleans are booleans.

Neither file can run anything when opened: XLSX cells always hold text, never a
formula, and a CSV text that a spreadsheet would take for a formula (`=…`, `@…`,
`+…`/`-…` that are not numbers) gets a leading apostrophe.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import unicodedata
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter
from openpyxl.worksheet._write_only import WriteOnlyWorksheet

CSV_TYPE = "text/csv; charset=utf-8"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER_LIKE = re.compile(r"[+-]?[0-9][0-9 .,()-]*")  # -12.5, +86 138 0013 8000: no formula
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_SHEET_FORBIDDEN = re.compile(r"[\[\]:*?/\\]")
_XLSX_TEXT_LIMIT = 32767
_ERROR_CODES = frozenset({"#NULL!", "#DIV/0!", "#VALUE!", "#REF!", "#NAME?", "#NUM!", "#N/A"})


def table_csv(columns: list[tuple[str, str]], rows: Iterable[Sequence[Any]]) -> bytes:
    """A CSV file: a header row of the column labels, then one line per row, UTF-8 with a BOM."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([_csv_safe(label) for _, label in columns])
    for row in rows:
        writer.writerow([_csv_safe(text_of(value)) for value in row])
    return buffer.getvalue().encode("utf-8-sig")


def table_xlsx(columns: list[tuple[str, str]], rows: Iterable[Sequence[Any]], sheet: str) -> bytes:
    """An XLSX workbook of one sheet named `sheet`: a bold, frozen header row of labels, then the rows."""
    book = Workbook(write_only=True)
    ws: WriteOnlyWorksheet = book.create_sheet(sheet_title(sheet))
    widths = ws.column_dimensions  # type: ignore[attr-defined]  # set before the first row
    for index, (_, label) in enumerate(columns, start=1):
        widths[get_column_letter(index)].width = _width(label)
    ws.freeze_panes = "A2"
    bold = Font(bold=True)
    header = []
    for _, label in columns:
        cell = WriteOnlyCell(ws, value=_xlsx_text(label))
        cell.data_type = "s"
        cell.font = bold
        header.append(cell)
    ws.append(header)
    for row in rows:
        ws.append([_cell(ws, value) for value in row])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def text_of(value: Any) -> str:
    """A value as plain text: `{id, display}` as the display, lists joined with ", ", None empty."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dict):
        return _reference_text(value)
    if isinstance(value, list | tuple | set | frozenset):
        return ", ".join(text_of(item) for item in value)
    return str(value)


def sheet_title(name: str) -> str:
    """A valid sheet name: without `[]:*?/\\`, at most 31 characters, never empty."""
    cleaned = " ".join(_SHEET_FORBIDDEN.sub(" ", _NOT_XML.sub("", name)).split()).strip("'")
    return cleaned[:31].strip() or "Sheet1"


def _width(label: str) -> int:
    """A column wide enough for its label: Chinese characters count twice."""
    size = sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in label)
    return min(50, max(10, size + 4))


def _reference_text(value: dict[str, Any]) -> str:
    if "display" in value:  # link or user
        shown = value["display"]
        return str(shown) if shown is not None else f"#{value.get('id')}"
    if "name" in value:  # attachment
        return str(value["name"])
    return ", ".join(f"{k}: {text_of(v)}" for k, v in value.items())


def _csv_safe(text: str) -> str:
    if len(text) > 1 and text.startswith(_FORMULA_START) and not _NUMBER_LIKE.fullmatch(text):
        return "'" + text
    return text


def _cell(ws: WriteOnlyWorksheet, value: Any) -> Any:
    """What openpyxl gets for one value: numbers, booleans and dates as they are, the rest as text."""
    if value is None or isinstance(value, bool | int | float | Decimal):
        return value
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=None) if value.tzinfo is not None else value
    if isinstance(value, dt.date):
        return value
    return _text_cell(ws, text_of(value))


def _text_cell(ws: WriteOnlyWorksheet, text: str) -> Any:
    """Text that stays text: never read as a formula or an error code; no character XML refuses."""
    text = _xlsx_text(text)
    if not text.startswith("=") and text not in _ERROR_CODES:
        return text
    cell = WriteOnlyCell(ws, value=text)
    cell.data_type = "s"
    return cell


def _xlsx_text(text: str) -> str:
    return _NOT_XML.sub("\ufffd", text)[:_XLSX_TEXT_LIMIT]
