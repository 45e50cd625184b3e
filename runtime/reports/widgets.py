"""A widget compiled to one aggregate statement: filters, the viewer's scope, GROUP BY, measures.

Dimensions become grouped columns (joined tables give a linked form's field, a user's
name or department); measures become aggregates, each optionally over some rows only
(`CASE WHEN … END` inside the aggregate); a ratio divides two of them. With `top`, a
window function ranks the groups and a `UNION ALL` adds the rest as one `other` group,
aggregated again from the rows themselves (so averages and distinct counts stay right).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    Float,
    Select,
    and_,
    case,
    cast,
    distinct,
    exists,
    func,
    literal,
    null,
    select,
    true,
    union_all,
)

from runtime.expressions.checker import Checked, check
from runtime.expressions.parser import parse
from runtime.expressions.to_sql import Guard, to_sql
from runtime.expressions.types import scope_for
from runtime.model.dashboard import Dimension, Measure, Widget
from runtime.records.compiled import CompiledApp, CompiledForm
from runtime.records.query import sql_scope
from runtime.reports.buckets import bucket_sql
from runtime.reports.params import Params
from runtime.schema.system import departments, users

SQL = Any


@dataclass
class Column:
    """One output column: a dimension (with its display column) or a measure."""

    key: str
    kind: str  # dimension | measure
    value: SQL
    display: SQL | None = None
    spec: Dimension | Measure | None = None
    field_type: str | None = None


@dataclass
class Compiled:
    """A widget's statement and how to read its rows."""

    statement: Select[Any]
    dimensions: list[Column]
    measures: list[Column]
    joins: list[Any] = field(default_factory=list)


class WidgetCompiler:
    """Compiles one widget of one form, for one database dialect, at one moment."""

    def __init__(
        self,
        app: CompiledApp,
        form: CompiledForm,
        widget: Widget,
        dialect: str,
        now: dt.datetime,
        guard: Guard | None = None,
    ) -> None:
        self.app = app
        self.form = form
        self.widget = widget
        self.dialect = dialect
        self.now = now
        self.guard = guard  # the viewer's row scope on linked forms (None: every row)
        self.table = form.table
        self.joined: list[tuple[Any, Any, bool]] = []  # (table, on, inner join)

    # -- conditions ------------------------------------------------------------------------

    def expression(self, text: str) -> SQL:
        """An expression of the form, in SQL; linked records out of the viewer's scope read as null."""
        scope = sql_scope(self.form, self.dialect, self.now)
        scope.guard = self.guard
        return to_sql(checked_on(self.form, text), scope)

    def guarded(self, table: Any, alias: Any, value: SQL) -> SQL:
        """`value` of a linked record, or null where the viewer may not read that record."""
        condition = self.guard(table, alias) if self.guard is not None else None
        return value if condition is None else case((condition, value), else_=null())

    def conditions(self, scope: SQL | None, params: Params, team: tuple[int, ...]) -> list[SQL]:
        """The widget's filter, the viewer's scope and the viewer's parameters."""
        found: list[SQL] = []
        if self.form.form.duplicates:
            found.append(self.table.c._merged_into.is_(None))
        if scope is not None:
            found.append(scope)
        if self.widget.where is not None:
            found.append(self.expression(self.widget.where))
        found.extend(param_conditions(self.app, self.form, self.widget, params, team))
        return found

    # -- dimensions and measures -------------------------------------------------------

    def dimension(self, spec: Dimension) -> Column:
        """A dimension's grouped value (and display) column."""
        if spec.expression is not None:
            return Column(
                spec.key, "dimension", self.expression(spec.expression), spec=spec, field_type="any"
            )
        head, _, tail = str(spec.field).partition(".")
        column = self.table.c[head]
        kind = "datetime" if head in ("created_at", "updated_at") else self.form.fields[head].type
        required = kind == "link" and bool(
            self.form.fields[head].spec.required
        )  # an inner join keeps every row
        if tail:
            linked = self.app.form(self.form.fields[head].spec.to).table
            target = linked.alias(f"j_{spec.key}")
            self.joined.append((target, target.c.id == column, required))
            column = self.guarded(linked, target, target.c[tail])
            kind = self.app.form(self.form.fields[head].spec.to).fields[tail].type
        if spec.bucket is not None:
            value = bucket_sql(column, kind, spec.bucket, self.dialect, self.app.app.zone(), self.now)
            return Column(spec.key, "dimension", value, spec=spec, field_type="bucket")
        if kind == "user" and spec.department:
            person, unit = users.alias(f"u_{spec.key}"), departments.alias(f"d_{spec.key}")
            self.joined.append((person, person.c.id == column, False))
            self.joined.append((unit, unit.c.id == person.c.department_id, False))
            return Column(spec.key, "dimension", unit.c.id, unit.c.name, spec, "department")
        if kind == "department":
            unit = departments.alias(f"d_{spec.key}")
            self.joined.append((unit, unit.c.id == column, False))
            return Column(spec.key, "dimension", column, unit.c.name, spec, "department")
        if kind == "user":
            person = users.alias(f"u_{spec.key}")
            self.joined.append((person, person.c.id == column, False))
            return Column(spec.key, "dimension", column, person.c.display_name, spec, "user")
        if kind == "link":
            target_form = self.app.form(self.form.fields[head].spec.to)
            target = target_form.table.alias(f"l_{spec.key}")
            self.joined.append((target, target.c.id == column, required))
            title = self.guarded(target_form.table, target, target.c[target_form.title_field])
            return Column(spec.key, "dimension", column, title, spec, "link")
        return Column(spec.key, "dimension", column, spec=spec, field_type=kind)

    def measure(self, spec: Measure, plain: dict[str, SQL]) -> Column:
        """A measure's aggregate."""
        value: SQL
        if spec.agg == "ratio":
            numerator, denominator = plain[str(spec.numerator)], plain[str(spec.denominator)]
            value = cast(numerator, Float()) / func.nullif(cast(denominator, Float()), 0)
            return Column(spec.key, "measure", value, spec=spec)
        condition = self.expression(spec.where) if spec.where is not None else None
        operand: SQL = self.table.c[spec.field] if spec.field is not None else literal(1)
        if condition is not None:
            operand = case((condition, operand), else_=null())
        if spec.agg == "count":  # rows, or with a field the rows where it is not empty
            value = func.count(operand) if condition is not None or spec.field is not None else func.count()
        elif spec.agg == "count_distinct":
            value = func.count(distinct(operand))
        else:
            value = getattr(func, spec.agg)(operand)
        return Column(spec.key, "measure", value, spec=spec)

    # -- the statement -----------------------------------------------------------------

    def compile(self, scope: SQL | None, params: Params, team: tuple[int, ...]) -> Compiled:
        """The widget's one statement."""
        dims = [self.dimension(d) for d in self.widget.dimensions]
        plain: dict[str, SQL] = {}
        measures: list[Column] = []
        for spec in self.widget.measures:
            if spec.agg != "ratio":
                column = self.measure(spec, plain)
                plain[spec.key] = column.value
                measures.append(column)
        for spec in self.widget.measures:
            if spec.agg == "ratio":
                measures.append(self.measure(spec, plain))
        measures.sort(key=lambda c: [m.key for m in self.widget.measures].index(c.key))
        where = self.conditions(scope, params, team)
        # a top N of users or linked records names only its N groups: their names join after ranking
        later = None
        if self.widget.top is not None and len(dims) == 1 and dims[0].field_type in ("user", "link"):
            later = self.joined.pop()  # the display join the dimension added last
        source: Any = self.table
        for target, on, required in self.joined:
            source = source.join(target, on) if required else source.outerjoin(target, on)
        shown = [d for d in dims if d.display is not None and later is None]
        grouped = [d.value for d in dims] + [d.display for d in shown]
        outputs = [d.value.label(f"d_{d.key}") for d in dims]
        outputs += [d.display.label(f"s_{d.key}") for d in shown if d.display is not None]
        outputs += [m.value.label(f"m_{m.key}") for m in measures]
        base = select(*outputs).select_from(source).where(and_(true(), *where))
        if grouped:
            base = base.group_by(*grouped)
        order = self.order(dims, measures)
        if self.widget.top is None or not dims:
            return Compiled(base.order_by(*order), dims, measures)
        statement = self.top_with_other(base, source, where, dims, measures, order, later)
        return Compiled(statement, dims, measures)

    def order(self, dims: list[Column], measures: list[Column]) -> list[SQL]:
        """ORDER BY: the widget's sort, then the dimensions."""
        found: list[SQL] = []
        if self.widget.sort is not None:
            key = self.widget.sort.lstrip("-")
            column = next(c.value for c in [*dims, *measures] if c.key == key)
            found.append(
                column.desc().nulls_last() if self.widget.sort.startswith("-") else column.asc().nulls_last()
            )
        found.extend(d.value.asc().nulls_last() for d in dims)
        return found

    def top_with_other(
        self,
        base: Select[Any],
        source: Any,
        where: list[SQL],
        dims: list[Column],
        measures: list[Column],
        order: list[SQL],
        later: tuple[Any, Any, bool] | None = None,
    ) -> Select[Any]:
        """The first `top` groups, then (with `other`) the rest as one group, in one statement.

        When every measure adds up across groups (counts, sums, minimums, maximums and
        ratios of them), the `other` row is summed from the ranked groups; otherwise it is
        aggregated again from the rows outside the top groups. `later` is a display join
        made only for the kept groups.
        """
        top = int(self.widget.top or 0)
        ranked = base.add_columns(func.row_number().over(order_by=order).label("rank")).cte("ranked")
        kept = self._kept(ranked, dims, measures, top, later)
        if not self.widget.other or len(dims) != 1:
            return kept.order_by(ranked.c.rank)
        shown = [null().label(f"d_{dims[0].key}")]
        if dims[0].display is not None:
            shown.append(null().label(f"s_{dims[0].key}"))
        if all(_additive(m, self.widget.measures) for m in measures):
            rest = self._other_from_groups(ranked, shown, measures, top)
        else:
            rest = self._other_from_rows(ranked, shown, source, where, dims[0], measures, top)
        both = union_all(kept, rest).subquery("both")
        return select(both).order_by(both.c.rank)

    def _kept(
        self,
        ranked: Any,
        dims: list[Column],
        measures: list[Column],
        top: int,
        later: tuple[Any, Any, bool] | None,
    ) -> Select[Any]:
        """The top groups, in the column order the `other` row repeats."""
        columns: list[SQL] = [ranked.c[f"d_{d.key}"] for d in dims]
        joined: Any = ranked
        if later is not None:
            target, _, _ = later
            dim = dims[0]
            joined = ranked.outerjoin(target, target.c.id == ranked.c[f"d_{dim.key}"])
            assert dim.display is not None
            columns.append(dim.display.label(f"s_{dim.key}"))
        else:
            columns += [ranked.c[f"s_{d.key}"] for d in dims if d.display is not None]
        columns += [ranked.c[f"m_{m.key}"] for m in measures]
        kept: Select[Any] = select(*columns, ranked.c.rank).select_from(joined).where(ranked.c.rank <= top)
        return kept

    def _other_from_groups(
        self, ranked: Any, shown: list[SQL], measures: list[Column], top: int
    ) -> Select[Any]:
        """The `other` row re-added from the groups ranked below `top` (the rank top + 1 marks it)."""
        again: dict[str, SQL] = {}
        for column in measures:
            spec = column.spec
            assert isinstance(spec, Measure)
            if spec.agg != "ratio":
                combine = "sum" if spec.agg == "count" else spec.agg  # counts add up like sums
                again[spec.key] = getattr(func, combine)(ranked.c[f"m_{spec.key}"])
        values = []
        for column in measures:
            spec = column.spec
            assert isinstance(spec, Measure)
            if spec.agg == "ratio":
                numerator, denominator = again[str(spec.numerator)], again[str(spec.denominator)]
                values.append(
                    (cast(numerator, Float()) / func.nullif(cast(denominator, Float()), 0)).label(
                        f"m_{spec.key}"
                    )
                )
            else:
                values.append(again[spec.key].label(f"m_{spec.key}"))
        rest: Select[Any] = (
            select(*shown, *values, literal(top + 1).label("rank"))
            .where(ranked.c.rank > top)
            .having(func.count() > 0)
        )
        return rest

    def _other_from_rows(
        self,
        ranked: Any,
        shown: list[SQL],
        source: Any,
        where: list[SQL],
        dim: Column,
        measures: list[Column],
        top: int,
    ) -> Select[Any]:
        """The `other` row aggregated from the rows outside the top groups (averages, distinct counts)."""
        grouped = ranked.c[f"d_{dim.key}"]
        in_top = exists(select(1).where(ranked.c.rank <= top, grouped == dim.value))
        null_in_top = exists(select(1).where(ranked.c.rank <= top, grouped.is_(None)))
        outside = and_(~in_top, ~and_(dim.value.is_(None), null_in_top))  # no OR: anti joins stay hashed
        rest: Select[Any] = (
            select(*shown, *[m.value.label(f"m_{m.key}") for m in measures], literal(top + 1).label("rank"))
            .select_from(source)
            .where(and_(true(), *where), outside)
            .having(func.count() > 0)
        )
        return rest


def _additive(column: Column, specs: list[Measure]) -> bool:
    spec = column.spec
    assert isinstance(spec, Measure)
    if spec.agg == "ratio":
        parts = {m.key: m for m in specs}
        return all(
            parts[str(k)].agg in ("count", "sum", "min", "max") for k in (spec.numerator, spec.denominator)
        )
    return spec.agg in ("count", "sum", "min", "max")


def checked_on(form: CompiledForm, text: str) -> Checked:
    """An expression of the form, parsed and type-checked once and kept with the compiled form."""
    key = f"report expression: {text}"
    found = form.cache.get(key)
    if found is None:
        found = form.cache[key] = check(parse(text), scope_for(form.app, form.form), text)
    return found


def param_conditions(
    app: CompiledApp, form: CompiledForm, widget: Widget | None, params: Params, team: tuple[int, ...]
) -> list[SQL]:
    """The viewer's date range, owner and department, on the widget's (or the form's) fields."""
    table = form.table
    found: list[SQL] = []
    date_key = (widget.date_field if widget else None) or "created_at"
    column = table.c[date_key]
    is_datetime = date_key in ("created_at", "updated_at") or form.fields[date_key].type == "datetime"
    zone = app.app.zone()
    if params.start is not None:
        start = dt.datetime.combine(params.start, dt.time(0), tzinfo=zone) if is_datetime else params.start
        found.append(column >= start)
    if params.end is not None:
        if is_datetime:
            end = dt.datetime.combine(params.end + dt.timedelta(days=1), dt.time(0), tzinfo=zone)
            found.append(column < end)
        else:
            found.append(column <= params.end)
    owner_key = (widget.owner_field if widget else None) or form.form.owner_field or "created_by"
    owner = table.c[owner_key]
    if params.owner is not None:
        found.append(owner == params.owner)
    if params.department is not None:
        found.append(owner.in_(select(users.c.id).where(users.c.department_id.in_(team))))
    return found
