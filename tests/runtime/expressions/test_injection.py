"""Hostile expressions: they fail with `ExpressionError` and nothing else, and text that
gets through reaches the database only as bound parameters."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    Engine,
    MetaData,
    String,
    Table,
    create_engine,
    func,
    insert,
    inspect,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite

from runtime.expressions.checker import Checked, check
from runtime.expressions.parser import parse
from runtime.expressions.syntax import ExpressionError
from runtime.expressions.to_python import to_python
from runtime.expressions.to_sql import SqlScope, to_sql
from runtime.schema.types import ExactDecimal
from tests.runtime.expressions.test_errors import SCOPE

NOW = dt.datetime(2026, 11, 28, 9, 0, tzinfo=dt.UTC)

METADATA = MetaData()
DEALS = Table(
    "deal",
    METADATA,
    Column("id", BigInteger, primary_key=True),
    Column("budget", ExactDecimal(18, 2)),
    Column("visits", BigInteger),
    Column("name", String(200)),
    Column("hot", Boolean(create_constraint=False)),
    Column("due", Date),
    Column("source", String(64)),
    Column("account", BigInteger),
)
ACCOUNTS = Table(
    "account",
    METADATA,
    Column("id", BigInteger, primary_key=True),
    Column("name", String(200)),
    Column("industry", String(200)),
)
LINES = Table(
    "line",
    METADATA,
    Column("id", BigInteger, primary_key=True),
    Column("parent_id", BigInteger),
    Column("amount", ExactDecimal(18, 2)),
    Column("sku", String(64)),
)


DIALECTS: list[Any] = [postgresql.dialect(), sqlite.dialect()]  # type: ignore[no-untyped-call]


def checked(text: str) -> Checked:
    return check(parse(text), SCOPE, text)


def sql_scope(dialect: str) -> SqlScope:
    return SqlScope(DEALS, dialect, {"account": ACCOUNTS}, {"lines": LINES}, now=NOW)


def quoted(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


HOSTILE = [
    "__import__('os')",
    "__import__('os').system('rm -rf /')",
    "eval('1 + 1')",
    "exec",
    "x.__class__",
    "name.__class__",
    "lines.__len__",
    "account.__dict__",
    "().__class__.__bases__[0].__subclasses__()",
    "[c for c in ()]",
    "lambda: 1",
    "1; DROP TABLE t",
    "name == 'x'; DROP TABLE deal; --",
    "' OR 1=1 --",
    "name == '' OR 1=1 --'",
    "1 -- comment",
    "1 /* comment */",
    "name = 'a' UNION SELECT password FROM users",
    "$$; DROP TABLE deal; $$",
    "`id`",
    "@@version",
    "'a" + "b" * 100_000 + "'",
    "(" * 100_000,
    "(" * 999 + "1" + ")" * 999,
    "-" * 1999 + "1",
    "IF(" * 600,
    "not " * 400 + "hot",
    "1" + "+1" * 999,
    "ＩＦ(hot, 1, 2)",  # fullwidth letters
    "nаme",  # Cyrillic a
    "name\u202e == 'x'",  # right-to-left override
    "name\u200b",  # zero-width space
    "\ufeffname",  # byte-order mark
    "name == 'x'\x00",
    "\x00",
    "𝐧𝐚𝐦𝐞",  # mathematical bold letters
    "visits + ２",  # fullwidth digit
    "٣ + 1",  # Arabic-Indic digit
    "name == 'a\\\nb'",  # backslash before a newline
    "'abc\\",
    "#2026-01-01'; DROP TABLE deal; --#",
    "#2026-13-45#",
    "#99999-01-01#",
    'name == "unterminated',
]


@pytest.mark.parametrize("text", HOSTILE, ids=lambda t: repr(t[:40]))
def test_hostile_input_is_an_expression_error(text: str) -> None:
    with pytest.raises(ExpressionError) as caught:
        checked(text)
    assert 0 <= caught.value.offset <= len(text)


@pytest.mark.parametrize(
    "text",
    [
        "#9999-12-31T23:59:59-01:00#",  # one hour past the calendar in UTC
        "#0001-01-01T00:00:00+01:00#",  # one hour before it
    ],
)
def test_datetime_literal_beyond_the_calendar(text: str) -> None:
    with pytest.raises(ExpressionError):
        checked(text)


@pytest.mark.parametrize("text", ["name == 'a\x00b'", "name == '\ud800'"], ids=["NUL", "lone surrogate"])
def test_text_literal_that_no_database_can_hold(text: str) -> None:
    with pytest.raises(ExpressionError):
        checked(text)


PIECES = st.one_of(
    st.sampled_from([*"()[],.'\"\\#-+*/<>=!&|;:$`@ \n\t", "and", "or", "not", "in", "null", "IF", "name"]),
    st.sampled_from(["\u00a0", "\u200b", "\u202e", "\ufeff", "\x00", "中", "É", "𝐧", "２", "٣"]),
    st.sampled_from(["budget", "visits", "hot", "due", "source", "account.name", "lines.amount", "lines"]),
    st.sampled_from(["ROUND(", "SUM(", "COUNT(", "CONTAINS(", "#2026-01-31#", "'seo'", "1", "2.5"]),
)
TRICKY = st.lists(PIECES, max_size=30).map("".join)


@settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.lists(TRICKY, min_size=1, max_size=3).map(" ".join))
def test_random_text_fails_only_with_expression_errors(text: str) -> None:
    try:
        result = checked(text)
    except ExpressionError as exc:
        assert 0 <= exc.offset <= len(text)
        return
    to_python(result, lambda: NOW)
    for dialect in DIALECTS:
        select(to_sql(result, sql_scope(dialect.name))).select_from(DEALS).compile(dialect=dialect)


# -- what gets through is bound, never spliced into the SQL ----------------------------------

NASTY_TEXTS = [
    "Robert'); DROP TABLE deal;--",
    "' OR '1'='1' --",
    '" OR ""="',
    "\\'; SELECT pg_sleep(10); --",
    "$$; DROP TABLE deal; $$",
    "%(name)s and %s",
    "/* comment */ 1",
    "E'\\x41' || chr(65)",
    "中文' OR 注入 --",
    "50%_off\\_%",
]
TEMPLATES = [
    "name == {q}",
    "name != {q} and hot",
    "name < {q}",
    "CONTAINS(name, {q})",
    "STARTS_WITH(name, {q})",
    "CONCAT(name, {q}, visits)",
    "name in [{q}, 'x']",
    "IF(hot, {q}, name)",
    "IFS(hot, {q}, true, name)",
    "LOWER({q})",
    "UPPER({q}) == name",
    "COALESCE(account.name, {q})",
    "MAX(name, {q})",
    "IS_EMPTY({q})",
    "LEN({q}) > visits",
    "MIN(lines.sku) == {q}",
]


@pytest.mark.parametrize("template", TEMPLATES)
@pytest.mark.parametrize("dialect", DIALECTS, ids=["postgresql", "sqlite"])
def test_text_literals_are_bound_parameters(template: str, dialect: Any) -> None:
    for text in NASTY_TEXTS:
        expr = to_sql(checked(template.format(q=quoted(text))), sql_scope(dialect.name))
        compiled = select(expr).select_from(DEALS).compile(dialect=dialect)
        sql = str(compiled)
        assert text not in sql, sql
        assert "DROP" not in sql and "pg_sleep" not in sql and "--" not in sql, sql
        assert text in compiled.params.values(), (template, compiled.params)


@pytest.mark.parametrize("dialect", DIALECTS, ids=["postgresql", "sqlite"])
def test_numbers_and_dates_are_bound_parameters_too(dialect: Any) -> None:
    text = "visits == 31337 or budget > 27182.818 or due == #1987-06-05#"
    compiled = (
        select(to_sql(checked(text), sql_scope(dialect.name))).select_from(DEALS).compile(dialect=dialect)
    )
    sql = str(compiled)
    for spelled in ("31337", "27182", "1987"):
        assert spelled not in sql, sql
    values = set(compiled.params.values())
    assert 31337 in values and dt.date(1987, 6, 5) in values, values
    assert Decimal("27182.818") in values or 27182.818 in values, values


@pytest.fixture
def engine() -> Iterator[Engine]:
    made = create_engine("sqlite://")
    METADATA.create_all(made)
    with made.begin() as conn:
        conn.execute(insert(DEALS), [{"id": 1, "name": "Robert"}, {"id": 2, "name": NASTY_TEXTS[0]}])
    yield made
    made.dispose()


def test_hostile_text_runs_as_data(engine: Engine) -> None:
    """Run every template on a real database: the tables survive and the text is matched as data."""
    with engine.connect() as conn:
        for template in TEMPLATES:
            for text in NASTY_TEXTS:
                result = checked(template.format(q=quoted(text)))
                conn.execute(select(to_sql(result, sql_scope("sqlite"))).select_from(DEALS)).all()
        assert set(inspect(conn).get_table_names()) == {"deal", "account", "line"}
        assert conn.execute(select(func.count()).select_from(DEALS)).scalar() == 2
        found = to_sql(checked(f"name == {quoted(NASTY_TEXTS[0])}"), sql_scope("sqlite"))
        ids = conn.execute(select(DEALS.c.id).where(found)).scalars().all()
    assert ids == [2]
