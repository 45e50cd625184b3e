"""Dashboards: widgets that each compile to one aggregate query over a form's records.

A dashboard lives in `dashboards/*.yaml` (or the app file's `dashboards` list). Each
widget groups one form's records by up to two dimensions and computes measures; a
funnel widget counts, stage by stage, the records that reached a state — from the
process history, not only those sitting in it now.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field as Spec
from pydantic import model_validator
from pydantic_core import PydanticCustomError

from runtime.model.common import Identifier, Label, Strict
from runtime.model.fields import Expression

AGGREGATES = ("count", "count_distinct", "sum", "avg", "min", "max", "ratio")
BUCKETS = ("day", "week", "month", "quarter", "year")
CHARTS = ("number", "bar", "line", "pie", "funnel", "table", "pivot")
PATH_RE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)?$")


class Measure(Strict):
    """A number per group: an aggregate of a field (or of rows), optionally of some rows only.

    `ratio` divides two other measures of the widget (`numerator` / `denominator`), such as
    a conversion rate.
    """

    key: Identifier
    label: Label | None = None
    agg: Literal["count", "count_distinct", "sum", "avg", "min", "max", "ratio"]
    field: Identifier | None = None
    where: Expression | None = None
    numerator: Identifier | None = None
    denominator: Identifier | None = None

    @model_validator(mode="after")
    def _operands(self) -> Measure:
        if self.agg == "ratio":
            if self.numerator is None or self.denominator is None or self.field is not None or self.where:
                message = "a ratio needs a numerator and a denominator, and no field or where"
                raise PydanticCustomError("measure", message)
        elif self.numerator is not None or self.denominator is not None:
            raise PydanticCustomError("measure", "numerator and denominator go with agg: ratio")
        elif self.agg in ("sum", "avg", "min", "max", "count_distinct") and self.field is None:
            raise PydanticCustomError("measure", "'{agg}' needs a field", {"agg": self.agg})
        return self


class Dimension(Strict):
    """What rows are grouped by: a field (`account.industry` for a linked form's field), a
    date field cut into `bucket`s, a user field's `department`, or an expression."""

    key: Identifier
    label: Label | None = None
    field: str | None = Spec(default=None, pattern=PATH_RE.pattern)
    bucket: Literal["day", "week", "month", "quarter", "year"] | None = None
    department: bool = False
    expression: Expression | None = None

    @model_validator(mode="after")
    def _one_source(self) -> Dimension:
        if (self.field is None) == (self.expression is None):
            raise PydanticCustomError("dimension", "a dimension needs exactly one of field or expression")
        if self.expression is not None and (self.bucket or self.department):
            raise PydanticCustomError("dimension", "bucket and department go with a field")
        return self


class Stage(Strict):
    """A funnel stage: the records of `source` (meeting `where`) that reached state `reached`."""

    label: Label
    source: Identifier
    reached: Identifier | None = None
    where: Expression | None = None


class Widget(Strict):
    """One chart or table of a dashboard.

    Viewers' parameters apply to every widget: `from`/`to` filter `date_field` (default
    `created_at`), `owner` and `department` filter `owner_field` (default the form's).
    `top` keeps the first N groups by `sort`, with the rest as one `other` group (one
    dimension) or left out (`other: false`, any dimensions).
    """

    key: Identifier
    label: Label
    chart: Literal["number", "bar", "line", "pie", "funnel", "table", "pivot"]
    source: Identifier | None = None
    where: Expression | None = None
    dimensions: list[Dimension] = Spec(default_factory=list, max_length=2)
    measures: list[Measure] = Spec(default_factory=list)
    stages: list[Stage] = Spec(default_factory=list)
    date_field: Identifier | None = None
    owner_field: Identifier | None = None
    sort: str | None = Spec(default=None, pattern=r"^-?[a-z][a-z0-9_]*$")
    top: int | None = Spec(default=None, ge=1, le=1000)
    other: bool = True

    @model_validator(mode="after")
    def _shape(self) -> Widget:
        if self.chart == "funnel":
            if len(self.stages) < 2 or self.dimensions or self.measures or self.source:
                raise PydanticCustomError(
                    "widget", "a funnel has two or more stages, and no source or measures"
                )
            unused = [
                k
                for k in ("where", "date_field", "owner_field", "sort", "top")
                if getattr(self, k) is not None
            ]
            if unused:
                message = "a funnel does not take {keys}: give `where` on its stages"
                raise PydanticCustomError("widget", message, {"keys": ", ".join(unused)})
            return self
        if self.stages:
            raise PydanticCustomError("widget", "stages go with chart: funnel")
        if self.source is None or not self.measures:
            raise PydanticCustomError("widget", "a widget needs a source and at least one measure")
        if self.chart == "number" and self.dimensions:
            raise PydanticCustomError("widget", "a number card has no dimensions")
        if self.chart == "pivot" and len(self.dimensions) != 2:
            raise PydanticCustomError("widget", "a pivot has two dimensions")
        if self.chart in ("bar", "line", "pie") and len(self.dimensions) != 1:
            raise PydanticCustomError("widget", "a {chart} chart has one dimension", {"chart": self.chart})
        if self.top is not None and not self.dimensions:
            raise PydanticCustomError("widget", "top goes with dimensions")
        if self.top is not None and self.other and len(self.dimensions) != 1:
            raise PydanticCustomError("widget", "an `other` group goes with one dimension: give other: false")
        return self


class Dashboard(Strict):
    """Widgets shown together; `roles` limits who sees it (everyone signed in by default)."""

    dashboard: Identifier
    label: Label
    roles: list[Identifier] = Spec(default_factory=list)
    widgets: list[Widget] = Spec(min_length=1)

    def widget(self, key: str) -> Widget | None:
        """The widget with this key, if any."""
        return next((w for w in self.widgets if w.key == key), None)
