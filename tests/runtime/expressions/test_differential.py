"""Differential test: the Python and the SQL compilers agree on every row.

Random well-typed expressions over a deal form (i integer, n decimal, s text, b boolean,
d date, t datetime, c select, the link `acct.name`, aggregates over the child rows
`lines.amount` and over the payments linking to the deal, the backlink `pays`, both
filtered with WHERE) are compiled both ways; random rows are stored in real tables on SQLite
and on PostgreSQL, and each row's SQL value must equal the Python value.

Values are compared exactly, except numbers: SQLite computes decimals in binary floats,
so numbers may differ by 1e-9 relative plus a forward error bound (running error
analysis, see `Analysis`) that accounts for cancellation. Where a float error could flip
a discrete outcome (a comparison between nearly equal values, a ROUND next to a half
step, a division by nearly zero) the row is not compared on that database.

Disagreements once found are pinned by the regression tests at the bottom. The generators
do not steer around them: every fixed construct stays in the space the property explores.
"""

from __future__ import annotations

import datetime as dt
import os
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Context, Decimal, localcontext
from typing import Any

import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    Engine,
    Float,
    MetaData,
    Numeric,
    String,
    Table,
    delete,
    insert,
    select,
    type_coerce,
)

from runtime.db import make_engine
from runtime.expressions.checker import Checked, check
from runtime.expressions.parser import parse
from runtime.expressions.syntax import Binary, Call, Literal, Membership, Name, Node, Unary
from runtime.expressions.to_python import to_python
from runtime.expressions.to_sql import SqlScope, to_sql
from runtime.expressions.types import BOOLEAN, DATE, DATETIME, DECIMAL, INTEGER, NULL, REF, TEXT, Scope, Type
from runtime.model.calendar import Calendar
from runtime.schema.calendar import ensure_calendar
from runtime.schema.migrate import upgrade_system_tables
from runtime.schema.types import ExactDecimal, UTCDateTime

NOW = dt.datetime(2026, 11, 28, 20, 30, 15, 250000, tzinfo=dt.UTC)
ZONE = dt.timezone(dt.timedelta(hours=8))  # where TODAY() is already 2026-11-29
OPTIONS = ("seo", "ads", "referral")
PAY_KINDS = ("cash", "wire", "card")
PAY_KIND = Type("text", options=PAY_KINDS)
ACCOUNT_IDS = (1, 2, 3)

SCOPE = Scope(
    "deal",
    {
        "i": INTEGER,
        "n": DECIMAL,
        "s": TEXT,
        "b": BOOLEAN,
        "d": DATE,
        "t": DATETIME,
        "c": Type("text", options=OPTIONS),
        "acct": REF,
    },
    links={"acct": lambda: Scope("account", {"name": TEXT})},
    children={"lines": lambda: Scope("line", {"amount": DECIMAL})},
    backlinks={"pays": lambda: Scope("payment", {"amount": DECIMAL, "ok": BOOLEAN, "kind": PAY_KIND})},
)

# A working calendar with holidays on weekdays and a make-up Saturday, so the working-day
# functions meet every kind of day (the rows of formloom_workdays are made from it).
CALENDAR = Calendar(
    holidays=[dt.date(2026, 10, 1), dt.date(2026, 10, 2), dt.date(2026, 10, 5), dt.date(2000, 1, 3)],
    workdays=[dt.date(2026, 10, 10), dt.date(2000, 1, 8)],
)
CALENDAR_APP = "dx"

METADATA = MetaData()
ACCOUNTS = Table(
    "dx_account",
    METADATA,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("name", String(200)),
)
DEALS = Table(
    "dx_deal",
    METADATA,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("i", BigInteger),
    Column("n", ExactDecimal(18, 4)),
    Column("s", String(200)),
    Column("b", Boolean(create_constraint=False)),
    Column("d", Date),
    Column("t", UTCDateTime()),
    Column("c", String(64)),
    Column("acct", BigInteger),
)
LINES = Table(
    "dx_line",
    METADATA,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("parent_id", BigInteger, nullable=False),
    Column("amount", ExactDecimal(18, 4)),
)
PAYMENTS = Table(
    "dx_payment",
    METADATA,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("deal", BigInteger),
    Column("amount", ExactDecimal(18, 4)),
    Column("ok", Boolean(create_constraint=False)),
    Column("kind", String(64)),
)
COLUMNS = ("i", "n", "s", "b", "d", "t", "c", "acct")
PAY_COLUMNS = ("amount", "ok", "kind")
# A payment of no deal, and one of a deal that does not exist: no aggregate may count them.
STRAY_PAYMENTS = [
    {"id": 1, "deal": None, "amount": Decimal("5.0000"), "ok": True, "kind": "cash"},
    {"id": 2, "deal": 999, "amount": Decimal("7.0000"), "ok": True, "kind": "cash"},
]

Row = dict[str, Any]


# -- running expressions both ways -------------------------------------------------------


def compile_expression(text: str) -> Checked:
    """Parse and check `text` against the deal scope."""
    return check(parse(text), SCOPE, text)


def records(rows: list[Row], accounts: dict[int, str | None]) -> list[Row]:
    """The Python record of each row, as the records service would pass it."""
    out = []
    for row in rows:
        record = {key: row.get(key) for key in COLUMNS}
        record["id"] = row["id"]
        record["acct.name"] = accounts.get(row.get("acct"))  # type: ignore[arg-type]
        record["lines"] = [{"amount": amount} for amount in row.get("lines", [])]
        record["pays"] = [{key: pay.get(key) for key in PAY_COLUMNS} for pay in row.get("pays", [])]
        out.append(record)
    return out


class Harness:
    """Tables for the deal scope on one database, refilled for every example."""

    def __init__(self, url: str) -> None:
        self.engine: Engine = make_engine(url)
        self.dialect = self.engine.dialect.name
        METADATA.create_all(self.engine)
        upgrade_system_tables(self.engine)
        with self.engine.begin() as conn:
            ensure_calendar(conn, CALENDAR_APP, CALENDAR)

    def load(self, rows: list[Row], accounts: dict[int, str | None]) -> None:
        lines = [
            {"id": 10 * row["id"] + k, "parent_id": row["id"], "amount": amount}
            for row in rows
            for k, amount in enumerate(row.get("lines", []))
        ]
        pays = [
            {"id": 100 * row["id"] + k, "deal": row["id"], **{c: pay.get(c) for c in PAY_COLUMNS}}
            for row in rows
            for k, pay in enumerate(row.get("pays", []))
        ]
        with self.engine.begin() as conn:
            for table in (LINES, PAYMENTS, DEALS, ACCOUNTS):
                conn.execute(delete(table))
            batches = [
                (ACCOUNTS, [{"id": k, "name": v} for k, v in accounts.items()]),
                (DEALS, [{"id": r["id"], **{k: r.get(k) for k in COLUMNS}} for r in rows]),
                (LINES, lines),
                (PAYMENTS, [*STRAY_PAYMENTS, *pays]),
            ]
            for table, values in batches:
                if values:  # an empty executemany would insert one row of defaults
                    conn.execute(insert(table), values)

    def sql_values(self, checked: Checked, raw_decimals: bool = False) -> list[Any]:
        """The SQL value for each row. With `raw_decimals`, a result that SQLAlchemy would read
        back through a decimal column's type is read as a plain number instead (see
        test_decimal_results_read_back_at_the_column_scale)."""
        scope = SqlScope(
            DEALS, self.dialect, {"acct": ACCOUNTS}, {"lines": LINES}, now=NOW, zone=ZONE, app=CALENDAR_APP
        )
        scope.backlinks = {"pays": (PAYMENTS, "deal")}
        expr = to_sql(checked, scope)
        if raw_decimals and isinstance(expr.type, ExactDecimal):
            expr = type_coerce(expr, Float() if self.dialect == "sqlite" else Numeric())
        with self.engine.connect() as conn:
            result = conn.execute(select(DEALS.c.id, expr).select_from(DEALS).order_by(DEALS.c.id))
            return [value for _, value in result]

    def run(
        self,
        text: str,
        rows: list[Row],
        accounts: dict[int, str | None] | None = None,
        raw_decimals: bool = False,
    ) -> list[Any]:
        """(python, sql) for each row; rows get ids 1, 2, … unless they carry one."""
        rows = [{"id": k + 1, **row} for k, row in enumerate(rows)]
        accounts = accounts if accounts is not None else {}
        self.load(rows, accounts)
        checked = compile_expression(text)
        evaluate = to_python(checked, lambda: NOW, ZONE, CALENDAR)
        python = [evaluate(record) for record in records(rows, accounts)]
        return list(zip(python, self.sql_values(checked, raw_decimals), strict=True))

    def dispose(self) -> None:
        METADATA.drop_all(self.engine)
        self.engine.dispose()


@pytest.fixture
def harness(db_url: str) -> Iterator[Harness]:
    made = Harness(db_url)
    yield made
    made.dispose()


@pytest.fixture
def sqlite_harness(tmp_path: Any) -> Iterator[Harness]:
    made = Harness(f"sqlite:///{tmp_path}/diff.db")
    yield made
    made.dispose()


@pytest.fixture
def pg_harness(pg_schema_url: str) -> Iterator[Harness]:
    made = Harness(pg_schema_url)
    yield made
    made.dispose()


# -- comparing values ------------------------------------------------------------------

EPS = 2.0**-53
WIDE = Context(prec=200)


def is_number(value: Any) -> bool:
    return isinstance(value, int | Decimal) and not isinstance(value, bool)


def representable(value: int | Decimal) -> bool:
    """True when a binary double holds `value` exactly."""
    if isinstance(value, int):
        return abs(value) <= 2**53
    return Decimal(float(value)) == value


def same(python: Any, sql: Any, error: float = 0.0) -> bool:
    """Python's and the database's value agree (numbers within 1e-9 relative plus `error`)."""
    if python is None or sql is None:
        return python is None and sql is None
    if isinstance(python, bool) or isinstance(sql, bool):
        return type(python) is type(sql) and python == sql
    if is_number(python) and isinstance(sql, int | float | Decimal):
        want = Decimal(python)
        got = Decimal(repr(sql)) if isinstance(sql, float) else Decimal(sql)
        with localcontext(WIDE):
            return abs(want - got) <= abs(want) * Decimal("1e-9") + Decimal(2 * error)
    if isinstance(python, dt.datetime) or isinstance(sql, dt.datetime):
        return isinstance(python, dt.datetime) and isinstance(sql, dt.datetime) and python == sql
    return type(python) is type(sql) and python == sql


# -- how far a database's numbers may stray ------------------------------------------------


class Uncertain(Exception):
    """A float error could change a discrete outcome on this row; it is not compared."""


@dataclass(frozen=True)
class Num:
    """A bound on |database value - Python value|; `pure` when the database holds
    exactly the nearest double of Python's value (so comparisons keep their order)."""

    error: float
    pure: bool


EXACT = Num(0.0, True)


class Arithmetic:
    """PostgreSQL: exact NUMERIC, divisions to at least 16 significant digits, while
    Python rounds + - * to 28 digits and / to 34."""

    nudge = 0.0

    def convert(self, value: int | Decimal) -> float:
        return 0.0

    def rounding(self, op: str, a: Any, b: Any, result: Any, error: float) -> float:
        with localcontext(WIDE):
            exact = {"+": a + b, "-": a - b, "*": a * b}.get(op)
            if op == "/":
                python_exact = result * b == a
                digits = len(Decimal(result).normalize().as_tuple().digits)
                return 0.0 if python_exact and digits <= 15 else abs(float(result)) * 1e-15
        return 0.0 if exact == result else abs(float(result)) * 1e-27

    def average(self, values: list[Decimal], result: Decimal) -> Num:
        return Num(self.rounding("/", sum(values), len(values), result, 0.0), True)

    def total(self, values: list[Decimal], result: Any) -> Num:
        return EXACT


class Floats(Arithmetic):
    """SQLite: decimals are binary doubles, every operation rounds once; ROUND nudges
    its argument by 1e-13 relative to push ties away from zero."""

    nudge = 1e-13

    def convert(self, value: int | Decimal) -> float:
        return 0.0 if representable(value) else abs(float(value)) * EPS

    def rounding(self, op: str, a: Any, b: Any, result: Any, error: float) -> float:
        python = super().rounding(op, a, b, result, error) if op != "/" else 0.0
        if error == 0 and python == 0 and representable(result):
            return 0.0
        return (abs(float(result)) + error) * 2 * EPS + python

    def average(self, values: list[Decimal], result: Decimal) -> Num:
        if len(values) == 1:
            return Num(self.convert(result), True)
        total = self.total(values, sum(values))
        error = total.error / len(values)
        return Num(error + self.rounding("/", 0, 0, result, error), False)

    def total(self, values: list[Decimal], result: Any) -> Num:
        if len(values) <= 1:
            return Num(self.convert(result), True)
        error = sum(self.convert(v) for v in values) + len(values) * 2 * EPS * float(sum(map(abs, values)))
        return Num(error, error == 0)


class Analysis:
    """Running error analysis of one expression on one record (raises `Uncertain`)."""

    def __init__(self, arithmetic: Arithmetic, evaluators: dict[int, Callable[[Row], Any]]) -> None:
        self.arithmetic = arithmetic
        self.evaluators = evaluators
        self.record: Row = {}

    def run(self, node: Node, record: Row) -> Num:
        self.record = record
        return self.visit(node)

    def value(self, node: Node) -> Any:
        evaluate = self.evaluators.get(id(node))
        if evaluate is None:
            evaluate = to_python(Checked(node, node.type, ""), lambda: NOW, ZONE)
            self.evaluators[id(node)] = evaluate
        return evaluate(self.record)

    def visit(self, node: Node) -> Num:
        if isinstance(node, Literal | Name):
            value = self.value(node)
            return Num(self.arithmetic.convert(value), True) if is_number(value) else EXACT
        if isinstance(node, Unary):
            inner = self.visit(node.operand)
            return inner if node.op == "-" else EXACT
        if isinstance(node, Binary):
            return self.binary(node)
        if isinstance(node, Membership):
            operand = self.visit(node.operand)
            for item in node.items:
                self.compare(node.operand, operand, item, self.visit(item))
            return EXACT
        assert isinstance(node, Call)
        return self.call(node)

    def compare(self, left: Node, a: Num, right: Node, b: Num) -> None:
        va, vb = self.value(left), self.value(right)
        if not (is_number(va) and is_number(vb)) or (a.pure and b.pure):
            return
        with localcontext(WIDE):
            gap = float(abs(Decimal(va) - Decimal(vb)))
        if gap <= a.error + b.error:
            raise Uncertain

    def binary(self, node: Binary) -> Num:
        a, b = self.visit(node.left), self.visit(node.right)
        if node.op in ("and", "or") or NULL in (node.left.type, node.right.type):
            return EXACT
        if node.op not in ("+", "-", "*", "/"):
            self.compare(node.left, a, node.right, b)
            return EXACT
        va, vb, result = self.value(node.left), self.value(node.right), self.value(node)
        if va is None or vb is None:
            return EXACT
        if node.op == "/" and b.error > 0 and abs(float(vb)) <= b.error:
            raise Uncertain  # the database may divide by zero where Python does not, or not where it does
        if result is None:
            return EXACT
        if node.op == "*":
            error = abs(float(va)) * b.error + abs(float(vb)) * a.error + a.error * b.error
        elif node.op == "/":
            error = (a.error + abs(float(result)) * b.error) / (abs(float(vb)) - b.error)
        else:
            error = a.error + b.error
        error += self.arithmetic.rounding(node.op, va, vb, result, error)
        return Num(error, error == 0)

    def call(self, node: Call) -> Num:
        if node.aggregate:
            return self.aggregate(node)
        args = [self.visit(arg) for arg in node.args]
        values = {"IF": args[1:], "IFS": args[1::2], "COALESCE": args, "MIN": args, "MAX": args}
        if node.name in values:
            chosen = values[node.name]
            return Num(sum(n.error for n in chosen), all(n.pure for n in chosen))
        if node.name == "ABS":
            return args[0]
        if node.name == "ROUND":
            return self.round(node, args[0])
        return EXACT

    def round(self, node: Call, inner: Num) -> Num:
        value, result = self.value(node.args[0]), self.value(node)
        if value is None or result is None:
            return EXACT
        if node.args[0].type == INTEGER:
            return inner  # whole numbers are returned as they are
        digits = self.value(node.args[1]) if len(node.args) > 1 else 0
        nudge = self.arithmetic.nudge
        if inner.error == 0 and nudge == 0:
            return EXACT
        step = Decimal(1).scaleb(-digits)
        with localcontext(WIDE):
            moved = Decimal(value) * (1 + Decimal(nudge))
            spread = Decimal(inner.error * (1 + nudge) + (abs(float(value)) * 4 * EPS if nudge else 0))
            low, high = moved - spread, moved + spread
            inside = result - step / 2 < low and high < result + step / 2
        if inside:
            return Num(self.arithmetic.convert(result), True)
        # the database may round the nudged value, anywhere in its spread, to another step
        error = abs(float(value)) * nudge + float(spread) + float(step) + self.arithmetic.convert(result)
        return Num(error, False)

    def aggregate(self, node: Call) -> Num:
        arg = node.args[0]
        assert isinstance(arg, Name)
        result = self.value(node)
        if node.name == "COUNT" or result is None or not is_number(result):
            return EXACT
        rows = self.record.get(arg.ref[1]) or []
        if node.where is not None:  # a condition on stored values only: no float error to bound
            keep = to_python(Checked(node.where, BOOLEAN, ""), lambda: NOW, ZONE)
            rows = [row for row in rows if keep(row) is True]
        values = [row[arg.ref[2]] for row in rows if row.get(arg.ref[2]) is not None]
        if node.name == "SUM":
            return self.arithmetic.total(values, result)
        if node.name == "AVG":
            return self.arithmetic.average(values, result)
        return Num(self.arithmetic.convert(result), True)


ARITHMETIC: dict[str, Arithmetic] = {"sqlite": Floats(), "postgresql": Arithmetic()}


# -- generating well-typed expressions ---------------------------------------------------

INT_LIMIT = 2**53  # integers stay exact even where SQLite turns them into doubles
DECIMAL_LIMIT = 1e15
KINDS = ("integer", "decimal", "text", "boolean", "date", "datetime")
ORDERED_KINDS = ("decimal", "text", "date", "datetime")


@dataclass(frozen=True)
class E:
    """A generated expression: its text, its kind, and what the generators need to know."""

    text: str
    kind: str  # "decimal" means any number; "integer" an integer
    null: bool = False  # typed null by the checker: the null literal, or a choice among nulls only
    literal: str | None = None  # the value of a bare text literal
    bound: float = 0.0  # largest magnitude a number may reach
    select: bool = False  # the select field `c`
    negation: bool = False  # `not x`
    leaf: bool = False  # a literal (not null), a field or an aggregate


def int_literal(value: int) -> E:
    return E(str(value) if value >= 0 else f"(-{-value})", "integer", bound=abs(value), leaf=True)


def quoted(value: str, quote: str) -> str:
    return quote + value.replace("\\", "\\\\").replace(quote, "\\" + quote) + quote


TEXT_VALUES = st.one_of(
    st.sampled_from(
        ["", "Éé中文", "abc", "ABC", "a'b", 'say "hi"', "back\\slash", "50%_off", "ß", "İ", "😀", " "]
    ),
    st.text(
        st.one_of(
            st.sampled_from(list("aAbBzZ09 '\"\\É é中文%_-ßİ😀\n\t")),
            st.characters(codec="utf-8", exclude_characters="\x00"),
        ),
        max_size=12,
    ),
)


@st.composite
def text_literals(draw: Any) -> E:
    value = draw(TEXT_VALUES)
    return E(quoted(value, draw(st.sampled_from("'\""))), "text", literal=value, leaf=True)


@st.composite
def decimal_literals(draw: Any) -> E:
    places = draw(st.integers(1, 6))
    units = draw(
        st.one_of(
            st.integers(-(10 ** (places + 2)), 10 ** (places + 2)),
            st.integers(-(10 ** (places + 6)) + 1, 10 ** (places + 6) - 1),
        )
    )
    value = Decimal(units).scaleb(-places)
    text = f"{abs(value):f}"
    return E(text if value >= 0 else f"(-{text})", "decimal", bound=float(abs(value)), leaf=True)


@st.composite
def date_literals(draw: Any) -> E:
    day = draw(st.dates(dt.date(1900, 1, 1), dt.date(2100, 12, 31)))
    return E(f"#{day.isoformat()}#", "date", leaf=True)


@st.composite
def datetime_literals(draw: Any) -> E:
    moment = draw(st.datetimes(dt.datetime(1970, 1, 1), dt.datetime(2100, 12, 31), timezones=st.just(dt.UTC)))
    if draw(st.booleans()):
        moment = moment.replace(microsecond=0)
    offset = draw(st.sampled_from([0, 8 * 60, -(5 * 60 + 30)]))
    shown = moment.astimezone(dt.timezone(dt.timedelta(minutes=offset)))
    text = shown.isoformat(sep=draw(st.sampled_from("T ")))
    if offset == 0:
        text = draw(st.sampled_from([text.replace("+00:00", "Z"), text[: -len("+00:00")], text]))
    return E(f"#{text}#", "datetime", leaf=True)


def fixed(text: str, kind: str, bound: float = 0.0, leaf: bool = True, **extra: Any) -> st.SearchStrategy[E]:
    return st.just(E(text, kind, bound=bound, leaf=leaf, **extra))


def null(kind: str) -> st.SearchStrategy[E]:
    return st.sampled_from(["null", "NULL", "Null"]).map(lambda text: E(text, kind, null=True))


@st.composite
def line_conditions(draw: Any) -> str:
    """A WHERE on a line: its `amount` against a literal, or its emptiness."""
    value = draw(decimal_literals()).text
    return draw(  # type: ignore[no-any-return]
        st.sampled_from(
            [
                f"amount > {value}",
                f"amount <= {value}",
                f"amount == {value}",
                f"amount != {value}",
                "amount == null",
                "amount != null",
                f"not (amount >= {value})",
                f"amount in [{value}, null]",
                f"amount < {value} or amount == null",
            ]
        )
    )


@st.composite
def payment_conditions(draw: Any) -> str:
    """A WHERE on a payment linking to the deal: its `ok`, `kind` and `amount`."""
    value, kind = draw(decimal_literals()).text, draw(st.sampled_from(PAY_KINDS))
    return draw(  # type: ignore[no-any-return]
        st.sampled_from(
            [
                "ok",
                "not ok",
                "ok == null",
                f"kind == '{kind}'",
                f"kind in ['{kind}', 'cash']",
                f"ok and amount > {value}",
                f"IS_EMPTY(kind) or amount <= {value}",
                f"kind != '{kind}' and ok != false",
                "true",
                "null",
                draw(line_conditions()),
            ]
        )
    )


@st.composite
def filtered_counts(draw: Any) -> E:
    """COUNT over filtered lines or payments."""
    where = draw(st.sampled_from(["WHERE", "where"]))
    text = draw(
        st.sampled_from(
            [
                f"COUNT(lines {where} {draw(line_conditions())})",
                f"COUNT(pays {where} {draw(payment_conditions())})",
                f"count(pays.amount {where} {draw(payment_conditions())})",
                "COUNT(pays)",
            ]
        )
    )
    return E(text, "integer", bound=10, leaf=True)


@st.composite
def filtered_totals(draw: Any) -> E:
    """SUM, AVG, MIN or MAX over filtered lines or payments."""
    function = draw(st.sampled_from(["SUM", "AVG", "MIN", "MAX"]))
    rows = draw(st.sampled_from(["lines", "pays"]))
    condition = draw(line_conditions() if rows == "lines" else payment_conditions())
    text = f"{function}({rows}.amount WHERE {condition})"
    if draw(st.booleans()):
        text = f"{function}({rows}.amount)"
    bound = 3e8 if function == "SUM" else 1e8
    return E(text, "decimal", bound=bound, leaf=function != "AVG")  # AVG is untyped in SQL


# Strategies are listed more than once to weight them.
INTEGER_LEAVES = [
    st.one_of(st.integers(-20, 20), st.integers(-(10**9) + 1, 10**9 - 1)).map(int_literal),
    st.integers(-20, 20).map(int_literal),
    null("integer"),
    fixed("i", "integer", 1e9),
    fixed("i", "integer", 1e9),
    fixed("COUNT(lines)", "integer", 10),
    fixed("count(lines.amount)", "integer", 10),
    filtered_counts(),
]
LEAVES: dict[str, st.SearchStrategy[E]] = {
    "integer": st.one_of(INTEGER_LEAVES),
    "decimal": st.one_of(
        decimal_literals(),
        decimal_literals(),
        null("decimal"),
        fixed("n", "decimal", 1e8),
        fixed("n", "decimal", 1e8),
        fixed("n", "decimal", 1e8),
        fixed("SUM(lines.amount)", "decimal", 3e8),
        fixed("AVG(lines.amount)", "decimal", 1e8, leaf=False),  # untyped in SQL
        fixed("MIN(lines.amount)", "decimal", 1e8),
        fixed("Max(lines.amount)", "decimal", 1e8),
        filtered_totals(),
        filtered_totals(),
        *INTEGER_LEAVES,
    ),
    "text": st.one_of(
        text_literals(),
        null("text"),
        fixed("s", "text"),
        fixed("c", "text", select=True),
        fixed("acct.name", "text"),
    ),
    "boolean": st.one_of(
        st.sampled_from(["true", "false", "TRUE", "False"]).map(lambda t: E(t, "boolean")),
        null("boolean"),
        fixed("b", "boolean"),
    ),
    "date": st.one_of(date_literals(), null("date"), fixed("d", "date"), fixed("TODAY()", "date")),
    "datetime": st.one_of(
        datetime_literals(), null("datetime"), fixed("t", "datetime"), fixed("now()", "datetime")
    ),
}
# Day counts for ADD_DAYS stay well inside the calendar, land near its ends (year 9999 is
# some 2.9 million days after the dates generated, year 1 some 0.7 million before), or go
# far beyond it (then null).
SMALL_INTEGERS = st.one_of(
    st.integers(-3000, 3000).map(int_literal),
    st.integers(-3_000_000, 3_000_000).map(int_literal),
    st.integers(3_650_001, 10**9).map(int_literal),
    st.integers(3_650_001, 10**9).map(lambda v: int_literal(-v)),
    null("integer"),
    fixed("LEN(s)", "integer", 1000),
    fixed("(-MONTH(d))", "integer", 12),
    fixed("COUNT(lines)", "integer", 10),
)


def expressions(kind: str, depth: int) -> st.SearchStrategy[E]:
    return _expression(kind, depth)


@st.composite
def _expression(draw: Any, kind: str, depth: int) -> E:
    if depth <= 0 or draw(st.integers(0, 2)) == 0:
        leaf: E = draw(LEAVES[kind])
        return leaf
    build = draw(st.sampled_from(BUILDERS[kind]))
    result: E = build(draw, kind, depth - 1)
    return result


def value(draw: Any, kind: str, depth: int) -> E:
    """A sub-expression that is not the bare null literal."""
    return draw(expressions(kind, depth).filter(lambda e: not e.null))  # type: ignore[no-any-return]


def name(draw: Any, function: str) -> str:
    return draw(st.sampled_from([function, function.lower()]))  # type: ignore[no-any-return]


def call(draw: Any, function: str, args: list[E], kind: str, **extra: Any) -> E:
    text = f"{name(draw, function)}({', '.join(a.text for a in args)})"
    return E(text, kind, **extra)


def arithmetic(draw: Any, kind: str, depth: int) -> E:
    a: E = draw(expressions(kind, depth))
    b: E = draw(expressions(kind, depth))
    op = draw(st.sampled_from("+-*//" if kind == "decimal" else "+-*"))
    limit = INT_LIMIT if kind == "integer" else DECIMAL_LIMIT
    bounds = {"+": a.bound + b.bound, "-": a.bound + b.bound, "*": a.bound * b.bound, "/": a.bound * 1e4}
    if bounds[op] > limit:
        op = "+"
    if bounds[op] > limit:
        return a
    return E(f"({a.text} {op} {b.text})", kind, bound=bounds[op])


def negate(draw: Any, kind: str, depth: int) -> E:
    a: E = draw(expressions(kind, depth))
    if draw(st.booleans()):
        return E(f"(+{a.text})", kind, bound=a.bound)
    return E(f"(-{a.text})", kind, bound=a.bound)


def absolute(draw: Any, kind: str, depth: int) -> E:
    a: E = draw(expressions(kind, depth))
    return call(draw, "ABS", [a], kind, bound=a.bound)


def rounding(draw: Any, kind: str, depth: int) -> E:
    a = value(draw, kind, depth) if kind == "integer" else draw(expressions(kind, depth))
    digits = draw(st.sampled_from(["", "0", "1", "2", "4", "10"]))
    args = [a] if not digits else [a, E(digits, "integer")]
    return call(draw, "ROUND", args, kind, bound=a.bound + 1)


def choices(draw: Any, kind: str, depth: int, count: int) -> list[E]:
    return [draw(expressions(kind, depth)) for _ in range(count)]


def nulls(values: list[E]) -> bool:
    """A choice among values that are all typed null is typed null too."""
    return all(v.null for v in values)


def if_(draw: Any, kind: str, depth: int) -> E:
    condition = draw(expressions("boolean", depth))
    values = choices(draw, kind, depth, 2)
    return call(
        draw, "IF", [condition, *values], kind, bound=max(v.bound for v in values), null=nulls(values)
    )


def ifs(draw: Any, kind: str, depth: int) -> E:
    pairs = draw(st.integers(1, 3))
    values = choices(draw, kind, depth, pairs)
    args = [x for v in values for x in (draw(expressions("boolean", depth)), v)]
    return call(draw, "IFS", args, kind, bound=max(v.bound for v in values), null=nulls(values))


def coalesce(draw: Any, kind: str, depth: int) -> E:
    values = choices(draw, kind, depth, draw(st.integers(1, 3)))
    return call(draw, "COALESCE", values, kind, bound=max(v.bound for v in values), null=nulls(values))


def extreme(draw: Any, kind: str, depth: int) -> E:
    values = choices(draw, kind, depth, draw(st.integers(1, 3)))
    function = draw(st.sampled_from(["MIN", "MAX"]))
    return call(draw, function, values, kind, bound=max(v.bound for v in values), null=nulls(values))


def length(draw: Any, kind: str, depth: int) -> E:
    return call(draw, "LEN", [draw(expressions("text", depth))], "integer", bound=1000)


def days_between(draw: Any, kind: str, depth: int) -> E:
    args = [draw(expressions(draw(st.sampled_from(["date", "datetime"])), depth)) for _ in range(2)]
    return call(draw, "DAYS_BETWEEN", args, "integer", bound=1e6)


def time_between(draw: Any, kind: str, depth: int) -> E:
    args = [draw(expressions("datetime", depth)) for _ in range(2)]
    return call(draw, draw(st.sampled_from(["HOURS_BETWEEN", "MINUTES_BETWEEN"])), args, "integer", bound=1e8)


def workdays_between(draw: Any, kind: str, depth: int) -> E:
    args = [draw(expressions("date", depth)) for _ in range(2)]
    return call(draw, "WORKDAYS_BETWEEN", args, "integer", bound=1e5)


def add_hours(draw: Any, kind: str, depth: int) -> E:
    return call(draw, "ADD_HOURS", [draw(expressions("datetime", depth)), draw(SMALL_INTEGERS)], "datetime")


def add_workdays(draw: Any, kind: str, depth: int) -> E:
    return call(draw, "ADD_WORKDAYS", [draw(expressions("date", depth)), draw(SMALL_INTEGERS)], "date")


def date_part(draw: Any, kind: str, depth: int) -> E:
    family = draw(st.sampled_from(["date", "datetime"]))
    arg = draw(expressions(family, depth))
    return call(draw, draw(st.sampled_from(["YEAR", "MONTH"])), [arg], "integer", bound=10000)


def integer(draw: Any, kind: str, depth: int) -> E:
    return draw(expressions("integer", depth))  # type: ignore[no-any-return]


def concat(draw: Any, kind: str, depth: int) -> E:
    args = []
    for _ in range(draw(st.integers(1, 3))):
        if draw(st.booleans()):
            args.append(draw(expressions("text", depth)))
        else:
            args.append(draw(expressions("integer", depth)))
    return call(draw, "CONCAT", args, "text")


def case_change(draw: Any, kind: str, depth: int) -> E:
    return call(draw, draw(st.sampled_from(["LOWER", "UPPER"])), [draw(expressions("text", depth))], "text")


def add_days(draw: Any, kind: str, depth: int) -> E:
    return call(draw, "ADD_DAYS", [draw(expressions("date", depth)), draw(SMALL_INTEGERS)], "date")


def an_option(draw: Any, side: E, other: E) -> E:
    """`side`, unless it is a text literal compared with the select field and not one of its options."""
    if other.select and side.literal is not None and side.literal not in OPTIONS:
        option = draw(st.sampled_from(OPTIONS))
        return E(quoted(option, "'"), "text", literal=option)
    return side


def comparison(draw: Any, kind: str, depth: int) -> E:
    family = draw(st.sampled_from([*ORDERED_KINDS, "decimal", "integer", "boolean"]))
    a, b = draw(expressions(family, depth)), draw(expressions(family, depth))
    a, b = an_option(draw, a, b), an_option(draw, b, a)
    ordered = family != "boolean" and not (a.null or b.null)
    ops = ["==", "=", "!=", "<>", *(["<", "<=", ">", ">="] if ordered else [])]
    return E(f"({a.text} {draw(st.sampled_from(ops))} {b.text})", "boolean")


def logic(draw: Any, kind: str, depth: int) -> E:
    a, b = draw(expressions("boolean", depth)), draw(expressions("boolean", depth))
    op = draw(st.sampled_from(["and", "or", "AND", "&&", "||"]))
    return E(f"({a.text} {op} {b.text})", "boolean")


def negation(draw: Any, kind: str, depth: int) -> E:
    a = draw(expressions("boolean", depth))
    return E(f"({draw(st.sampled_from(['not ', 'NOT ', '!']))}{a.text})", "boolean", negation=True)


def membership(draw: Any, kind: str, depth: int) -> E:
    family = draw(st.sampled_from([*ORDERED_KINDS, "integer", "boolean"]))
    tested = draw(expressions(family, depth).filter(lambda e: not e.null))
    count = draw(st.integers(1, 3))
    items = [an_option(draw, draw(expressions(family, depth)), tested) for _ in range(count)]
    op = draw(st.sampled_from(["in", "not in", "IN"]))
    return E(f"({tested.text} {op} [{', '.join(i.text for i in items)}])", "boolean")


def is_empty(draw: Any, kind: str, depth: int) -> E:
    return call(draw, "IS_EMPTY", [draw(expressions(draw(st.sampled_from(KINDS)), depth))], "boolean")


def text_test(draw: Any, kind: str, depth: int) -> E:
    function = draw(st.sampled_from(["CONTAINS", "STARTS_WITH"]))
    args = [draw(expressions("text", depth))]
    args.append(draw(expressions("text", depth)))
    return call(draw, function, args, "boolean")


Builder = Callable[[Any, str, int], E]
CHOICE: list[Builder] = [if_, ifs, coalesce]
BUILDERS: dict[str, list[Builder]] = {
    "integer": [
        *[arithmetic] * 3,
        negate,
        absolute,
        rounding,
        *CHOICE,
        extreme,
        length,
        days_between,
        time_between,
        workdays_between,
        date_part,
    ],
    "decimal": [*[arithmetic] * 6, negate, absolute, rounding, rounding, *CHOICE, extreme, integer],
    "text": [concat, concat, case_change, case_change, *CHOICE, extreme],
    "boolean": [
        *[comparison] * 4,
        logic,
        logic,
        negation,
        membership,
        membership,
        is_empty,
        text_test,
        text_test,
        *CHOICE,
    ],
    "date": [add_days, add_workdays, *CHOICE, extreme],
    "datetime": [add_hours, *CHOICE, extreme],
}


# -- generating rows ---------------------------------------------------------------------

DECIMALS = st.one_of(st.integers(-(10**6), 10**6), st.integers(-(10**12) + 1, 10**12 - 1)).map(
    lambda units: Decimal(units).scaleb(-4)
)
ROWS = st.fixed_dictionaries(
    {},
    optional={
        "i": st.one_of(st.none(), st.integers(-20, 20), st.integers(-(10**9) + 1, 10**9 - 1)),
        "n": st.none() | DECIMALS,
        "s": st.none() | TEXT_VALUES,
        "b": st.none() | st.booleans(),
        "d": st.none() | st.dates(dt.date(1900, 1, 1), dt.date(2100, 12, 31)),
        "t": st.none()
        | st.datetimes(dt.datetime(1970, 1, 1), dt.datetime(2100, 12, 31), timezones=st.just(dt.UTC)),
        "c": st.none() | st.sampled_from(OPTIONS),
        "acct": st.none() | st.sampled_from([*ACCOUNT_IDS, 99]),
        "lines": st.lists(st.none() | DECIMALS, max_size=3),
        "pays": st.lists(
            st.fixed_dictionaries(
                {
                    "amount": st.none() | DECIMALS,
                    "ok": st.none() | st.booleans(),
                    "kind": st.none() | st.sampled_from(PAY_KINDS),
                }
            ),
            max_size=3,
        ),
    },
)
ACCOUNT_NAMES = st.fixed_dictionaries({k: st.none() | TEXT_VALUES for k in ACCOUNT_IDS})


# -- the property ----------------------------------------------------------------------

FAMILIES = {
    "integer": {"integer"},
    "decimal": {"integer", "decimal"},
    "text": {"text"},
    "boolean": {"boolean"},
    "date": {"date"},
    "datetime": {"datetime"},
}
EXAMPLES = int(os.environ.get("FORMLOOM_DIFF_EXAMPLES", "300"))
DIFFERENTIAL = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
WEIGHTED_KINDS = [*KINDS, "decimal", "decimal", "integer", "boolean", "boolean", "text"]
ANY_EXPRESSION = st.sampled_from(WEIGHTED_KINDS).flatmap(lambda kind: expressions(kind, 3))


def test_python_and_sql_agree_on_every_row(harness: Harness) -> None:
    arithmetic = ARITHMETIC[harness.dialect]
    stats: Counter[str] = Counter()

    @DIFFERENTIAL
    @given(
        batch=st.lists(ANY_EXPRESSION, min_size=1, max_size=6),
        rows=st.lists(ROWS, min_size=1, max_size=6),
        accounts=ACCOUNT_NAMES,
    )
    def agree(batch: list[E], rows: list[Row], accounts: dict[int, str | None]) -> None:
        rows = [{"id": k + 1, **row} for k, row in enumerate(rows)]
        harness.load(rows, accounts)
        for e in batch:
            note(f"expression: {e.text}")
            checked = compile_expression(e.text)
            assert checked.type.kind in ({"null"} if e.null else FAMILIES[e.kind]), (e, checked.type)
            got = harness.sql_values(checked)
            evaluate = to_python(checked, lambda: NOW, ZONE, CALENDAR)
            analysis = Analysis(arithmetic, {})
            for row, record, sql in zip(rows, records(rows, accounts), got, strict=True):
                python = evaluate(record)
                try:
                    bound = analysis.run(checked.node, record)
                except Uncertain:
                    stats["uncertain"] += 1
                    continue
                stats["compared"] += 1
                assert same(python, sql, bound.error), (
                    f"{harness.dialect} disagrees with Python on {e.text!r}\n"
                    f"row: {row!r}\naccounts: {accounts!r}\npython: {python!r}\nsql: {sql!r}\n"
                    f"allowed error: {bound.error!r}"
                )

    agree()
    # the error analysis must not quietly skip most rows
    assert stats["compared"] >= 4 * stats["uncertain"], stats


def test_the_error_analysis_skips_only_close_calls(sqlite_harness: Harness) -> None:
    """Float noise is tolerated where it cannot matter and flagged where it can."""
    rows = [{"n": Decimal("0.1000"), "i": 3}]
    floats = Floats()
    for text, uncertain in [
        ("n + 0.2 == 0.3", True),  # 0.1 + 0.2 != 0.3 in binary
        ("n == 0.1", False),  # both sides are the nearest double of 0.1
        ("n * 3 > 0.2", False),  # far apart
        ("i / 3 * 3", False),
        ("ROUND(n * 3 + 0.05, 1) == 0.4", False),  # the nudge outweighs the float error
        ("ROUND(n * 3 + 1000000 - 1000000 + 0.05, 1) == 0.4", True),  # it does not here
        ("ROUND(n * 3 + 1000000 - 1000000 + 0.05, 1) > 0", False),
        ("ROUND(0.125, 2)", False),  # an exact tie in binary too
        ("1 / (n * 3 - 0.3)", True),  # zero in decimal, not in binary
    ]:
        checked = compile_expression(text)
        record = records([{"id": 1, **rows[0]}], {})[0]
        try:
            Analysis(floats, {}).run(checked.node, record)
            flagged = False
        except Uncertain:
            flagged = True
        assert flagged is uncertain, text
    [(python, sql)] = sqlite_harness.run("n + 0.2 - 0.3", rows, raw_decimals=True)
    assert python == 0 and sql != 0  # what the analysis is for
    record = records([{"id": 1, **rows[0]}], {})[0]
    assert same(python, sql, Analysis(floats, {}).run(compile_expression("n + 0.2 - 0.3").node, record).error)


# -- disagreements found and fixed: regression tests --


def agree(harness: Harness, text: str, rows: list[Row]) -> None:
    pairs = harness.run(text, rows)
    assert all(same(python, sql) for python, sql in pairs), pairs


@pytest.mark.parametrize("text", ["-null", "-(+null)", "1 + -null"])
def test_negated_null_on_postgres(pg_harness: Harness, text: str) -> None:
    agree(pg_harness, text, [{}])


@pytest.mark.parametrize("text", ["null + null", "null + (null + 1)", "null * (null * 2.5)"])
def test_null_plus_null_on_postgres(pg_harness: Harness, text: str) -> None:
    agree(pg_harness, text, [{}])


@pytest.mark.parametrize("text", ["YEAR(null)", "MONTH(null)"])
def test_date_part_of_null_on_postgres(pg_harness: Harness, text: str) -> None:
    agree(pg_harness, text, [{}])


@pytest.mark.parametrize(
    "text",
    [
        "IF(b, null, null) + 1",
        "-COALESCE(null, null)",
        "ABS(MIN(null, null))",
        "i in [IF(b, null, null)]",
        "IF(b, IFS(b, null), 1)",
        "YEAR(COALESCE(null, null))",
    ],
)
def test_all_null_choice_on_postgres(pg_harness: Harness, text: str) -> None:
    agree(pg_harness, text, [{"b": True, "i": 1}])


@pytest.mark.parametrize(
    "text", ["true and IF(b, null, null)", "b or COALESCE(null, MIN(null))", "IFS(b and IFS(b, null), d)"]
)
def test_all_null_choice_in_a_condition(harness: Harness, text: str) -> None:
    agree(harness, text, [{"b": True, "d": dt.date(2026, 1, 2)}, {"b": False}, {}])


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_starts_with_null(request: pytest.FixtureRequest, dialect: str) -> None:
    harness = request.getfixturevalue("sqlite_harness" if dialect == "sqlite" else "pg_harness")
    agree(harness, "STARTS_WITH(s, null)", [{"s": "abc"}, {}])


@pytest.mark.parametrize("text", ["IS_EMPTY(not b)", "(not b) == null", "(not b) in [true, false]"])
def test_null_test_of_a_negation_on_postgres(pg_harness: Harness, text: str) -> None:
    agree(pg_harness, text, [{"b": True}, {"b": False}, {}])


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
@pytest.mark.parametrize("text", ["n * n", "COALESCE(n, 0.00001)", "MAX(lines.amount) * n"])
def test_decimal_results_read_back_at_the_column_scale(
    request: pytest.FixtureRequest, dialect: str, text: str
) -> None:
    harness = request.getfixturevalue("sqlite_harness" if dialect == "sqlite" else "pg_harness")
    agree(harness, text, [{"n": Decimal("0.1235"), "lines": [Decimal("0.1235")]}, {}])


@pytest.mark.parametrize("text", ["s in [acct.name]", "s not in [acct.name]"])
def test_membership_in_a_single_link_value_on_postgres(pg_harness: Harness, text: str) -> None:
    agree(pg_harness, text, [{"s": "x"}, {"s": "x", "acct": 99}, {}])


@pytest.mark.parametrize(
    "text",
    [
        "MAX(ABS(n))",
        "MIN(MAX(i, 2), MAX(i, 3))",
        "MIN(ABS(i), ROUND(n))",
        "YEAR(MAX(MIN(t, NOW())))",
        "MIN(AVG(lines.amount))",
    ],
)
def test_min_max_of_untyped_values_on_postgres(pg_harness: Harness, text: str) -> None:
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    agree(pg_harness, text, [{"i": 1, "n": Decimal("1.5000"), "t": now}, {}])


def test_abs_of_null_makes_a_float_on_postgres(pg_harness: Harness) -> None:
    agree(pg_harness, "IF(b, ABS(null), 1 / n)", [{"b": False, "n": Decimal("3000.0000")}])


def test_coalesce_of_one_value_on_sqlite(sqlite_harness: Harness) -> None:
    agree(sqlite_harness, "COALESCE(i)", [{"i": 5}])


@pytest.mark.parametrize(
    ("text", "n"),
    [
        ("ROUND(n, 4) == n", "600000000.0000"),
        ("ROUND(n) == n", "6000000000000.0000"),
        ("ROUND(n, 2) == n", "6000000000000.0000"),
        ("ROUND(n, 10) == n", "2491.3398"),
    ],
)
def test_round_nudge_on_large_numbers_on_sqlite(sqlite_harness: Harness, text: str, n: str) -> None:
    agree(sqlite_harness, text, [{"n": Decimal(n)}])


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
@pytest.mark.parametrize("text", ["ADD_DAYS(d, i)", "YEAR(ADD_DAYS(d, i))"])
def test_add_days_just_past_the_calendar(request: pytest.FixtureRequest, dialect: str, text: str) -> None:
    harness = request.getfixturevalue("sqlite_harness" if dialect == "sqlite" else "pg_harness")
    agree(harness, text, [{"d": dt.date(9999, 12, 31), "i": 1}, {"d": dt.date(1, 1, 1), "i": -1}])


# -- fixed since they were found: kept as regression tests ------------------------------------


@pytest.mark.parametrize(
    "text", ["CONCAT(ROUND(i))", "CONCAT(ROUND(i, 2))", "ROUND(i, 4) == i", "ROUND(i, 10) - i"]
)
def test_rounding_an_integer_keeps_it_whole(harness: Harness, text: str) -> None:
    agree(harness, text, [{"i": 5}, {"i": 999_999_999}, {"i": -7}, {}])


@pytest.mark.parametrize(
    "text", ["ADD_DAYS(d, i)", "ADD_DAYS(#9999-12-31#, 3650001)", "ADD_DAYS(d, -i) == null"]
)
def test_add_days_far_beyond_the_calendar_is_null(harness: Harness, text: str) -> None:
    rows = [{"d": dt.date(2026, 1, 31), "i": 3_650_001}, {"d": dt.date(2026, 1, 31), "i": 10**9}, {}]
    agree(harness, text, rows)


def test_text_extremes_use_code_points(harness: Harness) -> None:
    agree(harness, "CONCAT(MIN('a', 'B', s), MAX('a', 'B', s))", [{"s": "é"}, {"s": "Z"}, {}])


# -- filtered aggregates, over child rows and over the records linking to a deal ---------------

PAID_ROWS: list[Row] = [
    {
        "lines": [Decimal("1.5000"), None, Decimal("2.2500")],
        "pays": [
            {"amount": Decimal("10.0000"), "ok": True, "kind": "cash"},
            {"amount": Decimal("2.5000"), "ok": False, "kind": "wire"},
            {"amount": None, "ok": None, "kind": None},
        ],
    },
    {"pays": [{"amount": Decimal("0.1000"), "ok": True, "kind": "card"}]},
    {},
]


@pytest.mark.parametrize(
    "text",
    [
        "SUM(pays.amount WHERE ok)",
        "SUM(pays.amount)",
        "COUNT(pays)",
        "COUNT(pays WHERE kind in ['cash', 'wire'])",
        "COUNT(pays.amount WHERE ok != true)",
        "AVG(lines.amount WHERE amount > 1.5)",
        "MAX(pays.amount WHERE not ok)",
        "MIN(pays.kind WHERE ok)",
        "COUNT(lines WHERE amount == null)",
        "SUM(pays.amount WHERE null)",
        "SUM(lines.amount WHERE IS_EMPTY(amount) or amount < 2) + COUNT(pays WHERE true)",
        "IF(COUNT(pays WHERE ok) > 0, MAX(pays.amount WHERE ok), -1)",
    ],
)
def test_filtered_aggregates_agree(harness: Harness, text: str) -> None:
    agree(harness, text, PAID_ROWS)


def test_filtered_aggregate_values(sqlite_harness: Harness) -> None:
    pairs = sqlite_harness.run("SUM(pays.amount WHERE ok)", PAID_ROWS)
    assert [python for python, _ in pairs] == [Decimal("10.0000"), Decimal("0.1000"), 0]
    counts = sqlite_harness.run("COUNT(pays WHERE kind != 'cash')", PAID_ROWS)
    assert [python for python, _ in counts] == [1, 1, 0], "a null kind is not 'other than cash'"


@pytest.mark.parametrize(
    "text", ["ADD_WORKDAYS(IF(true, COALESCE(d, TODAY()), null), 1)", "ADD_WORKDAYS(COALESCE(d, TODAY()), 1)"]
)
def test_working_days_from_a_chosen_date(harness: Harness, text: str) -> None:
    agree(harness, text, [{"id": 2, "d": dt.date(2000, 1, 1)}])
