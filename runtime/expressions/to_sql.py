"""Compile a checked expression into a SQLAlchemy Core expression, for SQLite or PostgreSQL.

The SQL follows the same rules as the Python compiler (see docs/expressions.md):
three-valued logic, null on division by zero, rounding half away from zero,
code-point text comparison, ASCII-only LOWER and UPPER, dates in UTC.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    Float,
    Integer,
    Numeric,
    String,
    Table,
    and_,
    case,
    cast,
    exists,
    func,
    literal,
    literal_column,
    not_,
    null,
    or_,
    select,
    type_coerce,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.sql.elements import ColumnElement, Grouping

from runtime.expressions.checker import Checked
from runtime.expressions.sql_rows import aggregate_sql, lookup_sql
from runtime.expressions.syntax import MAX_DAYS, Binary, Call, Literal, Membership, Name, Node, Unary
from runtime.expressions.types import NULL, Type
from runtime.model.calendar import CALENDAR_FIRST, CALENDAR_LAST
from runtime.schema.system import workdays as workdays_table
from runtime.schema.types import UTCDateTime

SQL = ColumnElement[Any]
Guard = Callable[[Table, Any], "ColumnElement[bool] | None"]


@dataclass
class SqlScope:
    """The tables an expression on one form reads: its own, linked targets, child tables."""

    table: Any
    dialect: str
    links: dict[str, Table] = field(default_factory=dict)
    children: dict[str, Table] = field(default_factory=dict)
    singles: dict[str, Table] = field(default_factory=dict)
    now: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    user_id: int | None = None
    zone: dt.tzinfo = dt.UTC
    # For an expression a reader wrote: the reader's row scope on a linked table (given the
    # table and the alias the expression reads it through); out of scope reads as null.
    guard: Guard | None = None
    # The app whose working days `formloom_workdays` holds, and what makes those rows exist.
    app: str = ""
    workdays_ready: Callable[[], None] | None = None
    # The child tables of linked forms a LOOKUP reads, by (link field, table field).
    link_children: dict[tuple[str, str], Table] = field(default_factory=dict)
    # The values of `record.field` and `parent.field` in a link filter, by outer name: they
    # become literal parameters, never SQL text.
    outer: dict[str, dict[str, Any]] = field(default_factory=dict)
    # The records linking here, by backlink key: their form's table and its link column.
    backlinks: dict[str, tuple[Table, str]] = field(default_factory=dict)


def to_sql(checked: Checked, scope: SqlScope) -> SQL:
    """The SQL expression computing `checked` for each row of `scope.table`."""
    compiler = _Compiler(scope)
    return compiler.typed(compiler.compile(checked.node), checked.type)


class _Compiler:
    def __init__(self, scope: SqlScope) -> None:
        self.scope = scope
        self.pg = scope.dialect == "postgresql"

    def typed(self, expr: SQL, kind: Type) -> SQL:
        """Tell SQLAlchemy how to read the result back: as the expression's own type, not as
        the type of a column inside it (a product of two 4-place decimals has 8 places)."""
        target = self.sql_type(kind)
        return type_coerce(expr, target) if target is not None else expr

    def sql_type(self, kind: Type) -> Any:
        """The SQL type of an expression type (None when it has none)."""
        if kind.kind == "decimal":
            return Numeric(asdecimal=True) if self.pg else Float()
        targets: dict[str, Any] = {
            "integer": BigInteger(),
            "text": String(),
            "date": Date(),
            "datetime": UTCDateTime(),
            "boolean": Boolean(),
            "ref": BigInteger(),
        }
        return targets.get(kind.kind)

    def typed_null(self, kind: Type) -> SQL:
        """NULL with a type, so PostgreSQL never has to guess (`null + null`, `YEAR(null)`)."""
        target = self.sql_type(kind)
        return cast(null(), target) if target is not None else null()

    def compile(self, node: Node) -> SQL:
        if node.type == NULL:  # the null literal, or a choice among nulls only: null on every row
            return null()  # (PostgreSQL would type `CASE … THEN NULL ELSE NULL END` as text)
        if isinstance(node, Literal):
            return self.literal(node.value)
        if isinstance(node, Name):
            return self.name(node)
        if isinstance(node, Unary):
            if node.operand.type == NULL:
                return self.typed_null(node.type)
            inner = self.compile(node.operand)
            if node.op == "+":
                return inner
            return -inner if node.op == "-" else Grouping(not_(inner))  # (NOT b) IS NULL
        if isinstance(node, Binary):
            return self.binary(node)
        if isinstance(node, Membership):
            return self.membership(node)
        assert isinstance(node, Call)
        return self.call(node)

    def literal(self, value: Any) -> SQL:
        if value is None:
            return null()
        if isinstance(value, bool):
            return literal(value, Boolean())
        if isinstance(value, int):
            return literal(value, BigInteger())
        if isinstance(value, Decimal):
            return literal(value, Numeric()) if self.pg else literal(float(value), Float())
        if isinstance(value, dt.datetime):
            return literal(value, UTCDateTime())
        if isinstance(value, dt.date):
            return literal(value, Date())
        return literal(value, String())

    def name(self, node: Name) -> SQL:
        table = self.scope.table
        if node.ref[0] == "field":
            column: SQL = table.c[node.ref[1]]
            return column
        if node.ref[0] == "outer":
            value = self.scope.outer.get(node.ref[1], {}).get(node.ref[2])
            if value is None:
                return self.typed_null(node.type)
            if node.type.kind in ("ref", "integer"):
                return literal(int(value), BigInteger())
            if node.type.kind == "decimal":
                return self.literal(Decimal(value))
            return self.literal(value)
        if node.ref[0] == "single":
            single = self.scope.singles[node.ref[1]]
            first: SQL = select(single.c[node.ref[2]]).order_by(single.c.id).limit(1).scalar_subquery()
            return first
        link, key = node.ref[1], node.ref[2]
        target = self.scope.links[link]
        alias = target.alias()  # a link to the form itself must not correlate with the outer row
        # correlate explicitly: the subquery may sit several levels deep (inside another subquery)
        stmt = select(alias.c[key]).where(alias.c.id == table.c[link]).correlate(table)
        guard = self.scope.guard(target, alias) if self.scope.guard is not None else None
        if guard is not None:
            stmt = stmt.where(guard)
        subquery: SQL = stmt.scalar_subquery()
        return subquery

    def binary(self, node: Binary) -> SQL:
        op = node.op
        if op in ("==", "!=") and NULL in (node.left.type, node.right.type):
            other = self.compile(node.right if node.left.type == NULL else node.left)
            return other.is_(None) if op == "==" else other.is_not(None)
        if op not in ("and", "or") and NULL in (node.left.type, node.right.type):
            return self.typed_null(node.type)  # arithmetic or comparison with null is null
        left, right = self.compile(node.left), self.compile(node.right)
        if op == "and":
            return and_(left, right)
        if op == "or":
            return or_(left, right)
        if op == "/":
            return cast(left, Numeric() if self.pg else Float()) / func.nullif(right, 0)
        if op in ("<", "<=", ">", ">=") and node.left.type.kind == "text":
            left, right = self.binary_text(left), self.binary_text(right)
        return _OPERATORS[op](left, right)

    def binary_text(self, expr: SQL) -> SQL:
        return expr.collate("C" if self.pg else "BINARY")

    def membership(self, node: Membership) -> SQL:
        if node.operand.type == NULL:
            return self.typed_null(node.type)
        operand = self.compile(node.operand)
        items = [
            self.typed_null(node.operand.type) if item.type == NULL else self.compile(item)
            for item in node.items
        ]
        if all(isinstance(item, Literal) for item in node.items):
            found: SQL = operand.in_(items)
        else:  # `IN ((SELECT …))` would read as a subquery: spell the equalities out
            group = operand.self_group()
            equal = group.op("=", is_comparison=True)  # boolean-typed, so NOT applies cleanly
            found = or_(*(equal(item.self_group()) for item in items)).self_group()
        return Grouping(not_(found)) if node.negated else found

    def call(self, node: Call) -> SQL:
        if node.aggregate:
            return self.aggregate(node)
        if node.name == "LOOKUP":
            return self.lookup(node)
        if node.name in STRICT and any(arg.type == NULL for arg in node.args):
            return self.typed_null(node.type)  # a strict function of null is null
        args = [self.typed_null(arg.type) if arg.type == NULL else self.compile(arg) for arg in node.args]
        builder = getattr(self, f"fn_{node.name.lower()}")
        result: SQL = builder(node, args)
        return result

    def aggregate(self, node: Call) -> SQL:
        return aggregate_sql(self, node)

    def lookup(self, node: Call) -> SQL:
        return lookup_sql(self, node)

    def nested(self, scope: SqlScope) -> _Compiler:
        """A compiler for a condition on other rows (the WHERE of an aggregate)."""
        return _Compiler(scope)

    # -- functions -----------------------------------------------------------------

    def fn_if(self, node: Call, args: list[SQL]) -> SQL:
        return case((args[0], args[1]), else_=args[2])

    def fn_ifs(self, node: Call, args: list[SQL]) -> SQL:
        pairs = list(zip(args[::2], args[1::2], strict=True))
        return case(*pairs, else_=null())

    def fn_coalesce(self, node: Call, args: list[SQL]) -> SQL:
        return args[0] if len(args) == 1 else func.coalesce(*args)

    def fn_is_empty(self, node: Call, args: list[SQL]) -> SQL:
        if node.args[0].type.kind == "text":
            return or_(args[0].is_(None), args[0] == "")
        return args[0].is_(None)

    def fn_round(self, node: Call, args: list[SQL]) -> SQL:
        if node.args[0].type.kind == "integer":
            return args[0]  # whole numbers need no rounding (digits are 0 to 10)
        digits = args[1] if len(args) > 1 else literal(0, Integer())
        if self.pg:
            return func.round(cast(args[0], Numeric()), cast(digits, Integer()))
        return func.round(nudge(args[0]), digits)

    def fn_abs(self, node: Call, args: list[SQL]) -> SQL:
        return func.abs(args[0])

    def fn_min(self, node: Call, args: list[SQL]) -> SQL:
        return self.extreme(args, func.least if self.pg else func.min, node.type)

    def fn_max(self, node: Call, args: list[SQL]) -> SQL:
        return self.extreme(args, func.greatest if self.pg else func.max, node.type)

    def extreme(self, args: list[SQL], pick: Callable[..., SQL], kind: Type) -> SQL:
        if self.pg and kind.kind == "text":
            args = [a.collate("C") for a in args]  # code-point order, as in Python
        if len(args) == 1:
            return args[0]
        if self.pg:
            return pick(*args)
        rotated = [func.coalesce(*args[i:], *args[:i]) for i in range(len(args))]
        return pick(*rotated)

    def fn_len(self, node: Call, args: list[SQL]) -> SQL:
        return func.char_length(args[0]) if self.pg else func.length(args[0])

    def fn_concat(self, node: Call, args: list[SQL]) -> SQL:
        parts = [func.coalesce(cast(arg, String()), literal("", String())) for arg in args]
        result: SQL = parts[0]
        for part in parts[1:]:
            result = result.op("||")(part)
        return result

    def fn_lower(self, node: Call, args: list[SQL]) -> SQL:
        return func.lower(args[0].collate("C")) if self.pg else func.lower(args[0])

    def fn_upper(self, node: Call, args: list[SQL]) -> SQL:
        return func.upper(args[0].collate("C")) if self.pg else func.upper(args[0])

    def fn_contains(self, node: Call, args: list[SQL]) -> SQL:
        whole, part = args
        if node.args[0].type.kind == "list":
            if self.pg:
                found: SQL = type_coerce(whole, JSONB).contains(func.jsonb_build_array(part))
            else:
                each = func.json_each(whole).table_valued("value")
                found = exists(select(literal_column("1")).select_from(each).where(each.c.value == part))
            return case((whole.is_(None), null()), (part.is_(None), null()), else_=found)
        position = func.strpos(whole, part) if self.pg else func.instr(whole, part)
        return position > 0

    def fn_starts_with(self, node: Call, args: list[SQL]) -> SQL:
        text, prefix = args
        return func.substr(text, 1, self.fn_len(node, [prefix])).op("=")(prefix)

    def fn_today(self, node: Call, args: list[SQL]) -> SQL:
        return literal(self.scope.now.astimezone(self.scope.zone).date(), Date())

    def fn_current_user(self, node: Call, args: list[SQL]) -> SQL:
        return null() if self.scope.user_id is None else literal(self.scope.user_id, BigInteger())

    def fn_now(self, node: Call, args: list[SQL]) -> SQL:
        return literal(self.scope.now, UTCDateTime())

    def as_date(self, expr: SQL) -> SQL:
        return cast(expr, Date()) if self.pg else func.date(expr)

    def fn_days_between(self, node: Call, args: list[SQL]) -> SQL:
        start, end = (self.as_date(a) for a in args)
        if self.pg:
            return end - start
        return cast(func.julianday(end) - func.julianday(start), Integer())

    def fn_add_days(self, node: Call, args: list[SQL]) -> SQL:
        day, count = args
        beyond = func.abs(count) > MAX_DAYS
        if self.pg:
            start = cast(day, Date())
            outside = or_(
                beyond,
                (start - literal(FIRST_DAY, Date())) + count < 0,
                (literal(LAST_DAY, Date()) - start) - count < 0,
            )
            return case((outside, null()), else_=start + cast(count, Integer()))
        julian = func.julianday(day) + count
        outside = or_(
            beyond,
            julian < func.julianday(FIRST_DAY.isoformat()),
            julian > func.julianday(LAST_DAY.isoformat()),
        )
        shifted = func.date(day, cast(count, String()).op("||")(literal(" days", String())))
        return case((outside, null()), else_=shifted)

    def micros(self, moment: SQL) -> SQL:
        """A datetime as whole microseconds since 1970, exactly (no floating point)."""
        if self.pg:
            return cast(func.extract("epoch", moment) * 1_000_000, BigInteger())
        seconds = cast(func.strftime("%s", moment), BigInteger())
        fraction = func.coalesce(cast(func.substr(moment, 21, 6), BigInteger()), 0)
        return seconds * 1_000_000 + fraction

    def whole(self, start: SQL, end: SQL, unit: int) -> SQL:
        """Whole `unit`s (microseconds) from start to end, truncated toward zero."""
        difference = self.micros(end) - self.micros(start)
        # integer division truncates toward zero on both databases (SQLAlchemy's `/` would not)
        whole: SQL = difference.self_group().op("/", return_type=BigInteger())(literal(unit, BigInteger()))
        return whole

    def fn_hours_between(self, node: Call, args: list[SQL]) -> SQL:
        return self.whole(args[0], args[1], 3_600_000_000)

    def fn_minutes_between(self, node: Call, args: list[SQL]) -> SQL:
        return self.whole(args[0], args[1], 60_000_000)

    def fn_add_hours(self, node: Call, args: list[SQL]) -> SQL:
        moment, hours = args
        beyond = func.abs(hours) > MAX_DAYS * 24
        if self.pg:
            shifted = moment + func.make_interval(0, 0, 0, 0, cast(hours, Integer()))
            first, last = literal(FIRST_MOMENT, UTCDateTime()), literal(LAST_MOMENT, UTCDateTime())
            outside = or_(beyond, shifted < first, shifted > last)
            return case((outside, null()), else_=shifted)
        whole = func.datetime(moment, cast(hours, String()).op("||")(literal(" hours", String())))
        later = whole.op("||")(func.substr(moment, 20))  # whole hours keep the fraction of a second
        julian = func.julianday(moment) + cast(hours, Float()) / 24
        outside = or_(
            beyond, julian < func.julianday(FIRST_DAY.isoformat()), julian >= func.julianday("10000-01-01")
        )
        return case((outside, null()), else_=later)

    def workday_number(self, day: SQL, *, after: bool = False) -> SQL:
        """The number of the last working day on or before `day` (`after`: first on or after)."""
        if self.scope.workdays_ready is not None:
            self.scope.workdays_ready()
        rows = workdays_table.alias()  # its own alias: these subqueries nest in one another
        picked = func.min(rows.c.n) if after else func.max(rows.c.n)
        near = rows.c.day >= day if after else rows.c.day <= day
        number: SQL = select(picked).where(rows.c.app == self.scope.app, near).scalar_subquery()
        return number

    def calendar_range(self, *days: SQL) -> SQL:
        """True when a day is empty or outside the days the calendar's rows cover."""
        first, last = literal(CALENDAR_FIRST, Date()), literal(CALENDAR_LAST, Date())
        return or_(*(or_(d.is_(None), d < first, d > last) for d in days))

    def fn_workdays_between(self, node: Call, args: list[SQL]) -> SQL:
        start, end = args
        difference = func.coalesce(self.workday_number(end), 0) - func.coalesce(self.workday_number(start), 0)
        return case((self.calendar_range(start, end), null()), else_=difference)

    def fn_add_workdays(self, node: Call, args: list[SQL]) -> SQL:
        day, count = args

        def day_numbered(number: SQL) -> SQL:
            rows = workdays_table.alias()
            found: SQL = (
                select(rows.c.day).where(rows.c.app == self.scope.app, rows.c.n == number).scalar_subquery()
            )
            return found

        forward = day_numbered(func.coalesce(self.workday_number(day), 0) + count)
        backward = day_numbered(self.workday_number(day, after=True) + count)
        return case(
            (or_(self.calendar_range(day), count.is_(None)), null()),
            (count == 0, day),
            (count > 0, forward),
            else_=backward,
        )

    def fn_year(self, node: Call, args: list[SQL]) -> SQL:
        return self.part("year", "%Y", args[0])

    def fn_month(self, node: Call, args: list[SQL]) -> SQL:
        return self.part("month", "%m", args[0])

    def part(self, name: str, pattern: str, expr: SQL) -> SQL:
        if self.pg:
            return cast(func.extract(name, expr), Integer())
        return cast(func.strftime(pattern, expr), Integer())


STRICT = {
    "HOURS_BETWEEN",
    "MINUTES_BETWEEN",
    "ADD_HOURS",
    "WORKDAYS_BETWEEN",
    "ADD_WORKDAYS",
    "ROUND",
    "ABS",
    "LEN",
    "LOWER",
    "UPPER",
    "CONTAINS",
    "STARTS_WITH",
    "DAYS_BETWEEN",
    "ADD_DAYS",
    "YEAR",
    "MONTH",
}
FIRST_DAY, LAST_DAY = dt.date(1, 1, 1), dt.date(9999, 12, 31)
FIRST_MOMENT = dt.datetime(1, 1, 1, tzinfo=dt.UTC)
LAST_MOMENT = dt.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=dt.UTC)
# SQLite rounds binary floats: a decimal tie such as 2.675 is stored a hair below it. Two
# units in the last place push true ties across, without moving any value that has at
# most 15 significant digits (see docs/expressions.md).
NUDGE = 5e-16


def nudge(expr: Any) -> SQL:
    """`x` moved two units in the last place away from zero, so ties round half away from zero."""
    moved: SQL = expr + expr * literal(NUDGE, Float())
    return moved


_OPERATORS: dict[str, Callable[[Any, Any], SQL]] = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}
