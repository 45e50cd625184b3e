"""Drill-down: the list of records behind a bar or a cell, as a `where=` expression on the list API."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from runtime.model.dashboard import Widget
from runtime.reports.buckets import bucket_range
from runtime.reports.params import Params
from runtime.reports.widgets import Column


def literal(value: Any) -> str:
    """A value written in the expression language."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | Decimal):
        return str(value)
    if isinstance(value, dt.datetime):
        return "#" + value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ") + "#"
    if isinstance(value, dt.date):
        return f"#{value.isoformat()}#"
    text = str(value).replace("\\", "\\\\").replace("'", "\\'")
    return f"'{text}'"


class Drill:
    """Drill-down URLs of one widget's rows: the fixed part is worked out once, each row adds its groups."""

    def __init__(
        self, app: str, form: str, widget: Widget, params: Params, zone: ZoneInfo, field_types: dict[str, str]
    ) -> None:
        self.base = f"/api/v1/{app}/{form}?where="
        self.zone = zone
        self.types = field_types
        self.fixed = _fixed_parts(widget, params, zone, field_types)
        self.quoted = quote(" and ".join(self.fixed), safe="") if self.fixed else ""  # once per widget

    def url(self, dims: list[Column], values: list[Any]) -> str | None:
        """The list URL of the records behind one group, or None where the list cannot say it."""
        if self.fixed is None:
            return None
        parts = []
        for column, value in zip(dims, values, strict=True):
            part = _dimension(column, value, self.zone, self.types)
            if part is None:
                return None
            parts.append(part)
        if not parts:
            return self.base + (self.quoted or "true")
        joined = quote(" and ".join(parts), safe="")
        return self.base + (self.quoted + "%20and%20" + joined if self.quoted else joined)


def _fixed_parts(
    widget: Widget, params: Params, zone: ZoneInfo, field_types: dict[str, str]
) -> list[str] | None:
    """The widget's filter and the viewer's parameters as expressions; None when the list cannot say them."""
    if params.department is not None:
        return None  # the list API has no department filter
    parts = [f"({widget.where})"] if widget.where else []
    date_key = widget.date_field or "created_at"
    is_datetime = field_types.get(date_key, "datetime") == "datetime"
    if params.start is not None:
        start = dt.datetime.combine(params.start, dt.time(0), tzinfo=zone) if is_datetime else params.start
        parts.append(f"{date_key} >= {literal(start)}")
    if params.end is not None:
        if is_datetime:
            after = dt.datetime.combine(params.end + dt.timedelta(days=1), dt.time(0), tzinfo=zone)
            parts.append(f"{date_key} < {literal(after)}")
        else:
            parts.append(f"{date_key} <= {literal(params.end)}")
    if params.owner is not None:
        parts.append(f"{widget.owner_field or field_types.get('__owner__', 'created_by')} == {params.owner}")
    return parts


def _dimension(column: Column, value: Any, zone: ZoneInfo, field_types: dict[str, str]) -> str | None:
    spec = column.spec
    if spec is None or getattr(spec, "department", False):
        return None
    if getattr(spec, "expression", None):
        return f"({spec.expression}) == {literal(value)}"  # type: ignore[union-attr]
    name = str(getattr(spec, "field", ""))
    bucket = getattr(spec, "bucket", None)
    if bucket is None or value is None:
        return f"{name} == {literal(value)}"
    start, end = bucket_range(str(value), bucket)
    if field_types.get(name, "date") == "datetime":
        low = dt.datetime.combine(start, dt.time(0), tzinfo=zone)
        high = dt.datetime.combine(end, dt.time(0), tzinfo=zone)
        return f"{name} >= {literal(low)} and {name} < {literal(high)}"
    return f"{name} >= {literal(start)} and {name} < {literal(end)}"
