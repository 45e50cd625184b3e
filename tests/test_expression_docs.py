"""docs/expressions.md is executable: its examples are run against the code, in Python and in SQL.

The tests read four things from the document, and nothing else:

1. Headings written exactly ``### `NAME` `` name functions; every function of
   ``runtime.expressions.checker.ARITY`` needs one, and every such heading must name one.

2. Example blocks: a line ``<!-- examples -->`` directly followed by a fenced block opened
   with ``` ```text ```. Each non-blank line of the block is one example::

       EXPR  →  RESULT

   the expression, two spaces, the arrow (U+2192), two spaces, the result. RESULT is a
   literal of the expression language itself, read with its parser: ``null``, ``true``,
   ``false``, ``'text'`` (or ``"text"``, backslash escapes as in expressions), a date
   ``#2026-12-15#``, a datetime ``#2026-11-28T09:00:00Z#``, or a number, optionally with a
   leading ``-``. A number written without a point (``17``) promises an integer result,
   with a point (``17.0``, ``2000.50``) a decimal result; the checker's type must agree.

   Every example is type-checked against SCOPE, evaluated with ``to_python`` on RECORD with
   the clock at NOW (app time zone UTC) and must give RESULT exactly (numbers compare by
   value: ``2.0`` equals ``Decimal('2')``). It is then compiled with ``to_sql`` and run
   against the same record stored in SQLite (and in PostgreSQL, where it is reachable, as
   for every database test); numbers there agree within a relative tolerance of 1e-9,
   because SQLite computes decimals in binary floating point.

3. Error blocks: ``<!-- errors -->`` followed by a ``` ```text ``` block, each line
   ``EXPR  →  MESSAGE``: the checker must refuse EXPR with a message containing MESSAGE.

4. A pack block: ``<!-- pack -->`` followed by a ``` ```yaml ``` block holding a whole
   single-file pack; it must load and start, and behave as the document says.

SCOPE and RECORD describe the example record, which the document lists before its first
example block; keep the two in step.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    Engine,
    ForeignKey,
    MetaData,
    String,
    Table,
    create_engine,
    insert,
    select,
    text,
)

from runtime.db import make_engine
from runtime.expressions.checker import ARITY, Checked, check
from runtime.expressions.parser import parse
from runtime.expressions.syntax import ExpressionError, Literal, Unary
from runtime.expressions.to_python import to_python
from runtime.expressions.to_sql import SqlScope, to_sql
from runtime.expressions.types import BOOLEAN, DATE, DATETIME, DECIMAL, INTEGER, REF, TEXT, Scope, Type
from runtime.model.calendar import Calendar
from runtime.schema.calendar import ensure_calendar
from runtime.schema.system import calendars, system_metadata, workdays
from runtime.schema.types import ExactDecimal, UTCDateTime, json_type
from tests.conftest import PG_URL, require_postgres
from tests.support import admin_token

DOC = Path(__file__).resolve().parent.parent / "docs" / "expressions.md"
ARROW = "  →  "
HEADING = re.compile(r"^### `([A-Z_]+)`$")
NOW = dt.datetime(2026, 11, 28, 9, 0, tzinfo=dt.UTC)
# The working calendar of the examples (docs/expressions.md, WORKDAYS_BETWEEN): National Day
# 2026 off, its make-up Saturday worked.
CALENDAR = Calendar(holidays=[dt.date(2026, 10, d) for d in range(1, 8)], workdays=[dt.date(2026, 10, 10)])
CALENDAR_APP = "docs"
TOLERANCE = 1e-9


# -- the example record ------------------------------------------------------------------


def _select(*options: str) -> Type:
    return Type("text", options=options)


def _multi(*options: str) -> Type:
    return Type("list", item=_select(*options))


ACCOUNT = Scope(
    "account", {"city": TEXT, "industry": _select("manufacturing", "it_software", "finance", "other")}
)
LINE = Scope("quote_line", {"product": TEXT, "quantity": INTEGER, "amount": DECIMAL})
SETTINGS = Scope(
    "scoring_settings",
    {
        "mql_threshold": INTEGER,
        "target_industries": _multi("manufacturing", "it_software", "finance", "other"),
    },
)
SCOPE = Scope(
    "lead",
    {
        "id": INTEGER,
        "company": TEXT,
        "name": TEXT,
        "email": TEXT,
        "phone": TEXT,
        "budget": DECIMAL,
        "discount": DECIMAL,
        "visits": INTEGER,
        "asked_for_demo": BOOLEAN,
        "source": _select("seo", "webinar", "trade_show", "partner_referral"),
        "status": _select("new", "contacted", "qualified", "disqualified"),
        "tags": _multi("vip", "key_account", "public_sector"),
        "due": DATE,
        "met_at": DATETIME,
        "account": REF,
    },
    links={"account": lambda: ACCOUNT},
    children={"lines": lambda: LINE},
    singles={"scoring_settings": lambda: SETTINGS},
)
ACCOUNT_ROW = {"id": 1, "city": "Shanghai", "industry": "manufacturing"}
SETTINGS_ROW = {
    "id": 1,
    "mql_threshold": 60,
    "target_industries": ["manufacturing", "it_software", "finance"],
}
LEAD_ROW: dict[str, Any] = {
    "id": 1,
    "company": "上海华信精密制造有限公司",
    "name": "Zoë Chen",
    "email": "zoe.chen@huaxin.cn",
    "phone": None,
    "budget": Decimal("120000.50"),
    "discount": None,
    "visits": 7,
    "asked_for_demo": True,
    "source": "webinar",
    "status": "contacted",
    "tags": ["vip", "key_account"],
    "due": dt.date(2026, 12, 15),
    "met_at": dt.datetime(2026, 11, 20, 6, 30, tzinfo=dt.UTC),
    "account": 1,
}
LINE_ROWS: list[dict[str, Any]] = [
    {"product": "Platform licence", "quantity": 3, "amount": Decimal("1200.00")},
    {"product": "Training", "quantity": 1, "amount": Decimal("800.50")},
    {"product": "Implementation", "quantity": 2, "amount": None},
]
# What the Python compiler reads: stored values, `link.field`, `@single.field`, child rows.
RECORD: dict[str, Any] = {
    **LEAD_ROW,
    **{f"account.{k}": v for k, v in ACCOUNT_ROW.items() if k != "id"},
    **{f"@scoring_settings.{k}": v for k, v in SETTINGS_ROW.items() if k != "id"},
    "lines": LINE_ROWS,
}


def _tables(metadata: MetaData) -> tuple[Table, Table, Table, Table]:
    account = Table(
        "doc_account",
        metadata,
        Column("id", BigInteger, primary_key=True),
        Column("city", String(50)),
        Column("industry", String(64)),
    )
    settings = Table(
        "doc_scoring_settings",
        metadata,
        Column("id", BigInteger, primary_key=True),
        Column("mql_threshold", BigInteger),
        Column("target_industries", json_type()),
    )
    lead = Table(
        "doc_lead",
        metadata,
        Column("id", BigInteger, primary_key=True),
        Column("company", String(200)),
        Column("name", String(100)),
        Column("email", String(254)),
        Column("phone", String(32)),
        Column("budget", ExactDecimal(18, 2)),
        Column("discount", ExactDecimal(12, 6)),
        Column("visits", BigInteger),
        Column("asked_for_demo", Boolean),
        Column("source", String(64)),
        Column("status", String(64)),
        Column("tags", json_type()),
        Column("due", Date),
        Column("met_at", UTCDateTime()),
        Column("account", BigInteger, ForeignKey("doc_account.id")),
    )
    lines = Table(
        "doc_lead__lines",
        metadata,
        Column("id", BigInteger, primary_key=True),
        Column("parent_id", BigInteger, ForeignKey("doc_lead.id")),
        Column("position", BigInteger),
        Column("product", String(100)),
        Column("quantity", BigInteger),
        Column("amount", ExactDecimal(18, 2)),
    )
    return account, settings, lead, lines


# -- reading the document -----------------------------------------------------------------


@dataclass(frozen=True)
class Example:
    """One `EXPR  →  RESULT` line of the document."""

    line: int
    expr: str
    result: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.expr}"


def _lines() -> list[str]:
    return DOC.read_text(encoding="utf-8").splitlines()


def _blocks(tag: str, fence: str = "text") -> Iterator[tuple[int, list[str]]]:
    """(1-based line of the first content line, content lines) of each block tagged `tag`."""
    lines = _lines()
    for index, line in enumerate(lines):
        if line.strip() != f"<!-- {tag} -->":
            continue
        assert index + 1 < len(lines) and lines[index + 1].strip() == f"```{fence}", (
            f"docs/expressions.md:{index + 1}: '<!-- {tag} -->' must be followed by a ```{fence} block"
        )
        end = index + 2
        while end < len(lines) and lines[end].strip() != "```":
            end += 1
        yield index + 3, lines[index + 2 : end]


def _examples(tag: str) -> list[Example]:
    found = []
    for first, block in _blocks(tag):
        for offset, line in enumerate(block):
            if not line.strip():
                continue
            where = first + offset
            assert line.count(ARROW) == 1, f"docs/expressions.md:{where}: write 'EXPR  →  RESULT': {line!r}"
            expr, result = line.split(ARROW)
            found.append(Example(where, expr.strip(), result.strip()))
    return found


EXAMPLES = _examples("examples")
ERRORS = _examples("errors")


def _expected(example: Example) -> Any:
    """The documented result, read as a literal of the expression language."""
    node = parse(example.result)
    if isinstance(node, Unary) and node.op == "-" and isinstance(node.operand, Literal):
        value = node.operand.value
        assert isinstance(value, int | Decimal) and not isinstance(value, bool), f"{example}: bad result"
        return -value
    assert isinstance(node, Literal), f"{example}: the result {example.result!r} is not a literal"
    return node.value


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return BOOLEAN.kind
    if isinstance(value, int):
        return INTEGER.kind
    if isinstance(value, Decimal):
        return DECIMAL.kind
    if isinstance(value, dt.datetime):
        return DATETIME.kind
    if isinstance(value, dt.date):
        return DATE.kind
    return TEXT.kind


def _checked(example: Example) -> Checked:
    checked = check(parse(example.expr), SCOPE, example.expr)
    expected = _expected(example)
    if expected is not None:
        assert checked.type.kind == _kind(expected), (
            f"{example}: the result is written as a {_kind(expected)} value, "
            f"but the expression gives a {checked.type} value"
        )
    return checked


# -- the document's structure ---------------------------------------------------------------


def _function_sections() -> dict[str, list[str]]:
    """Function name -> the lines of its section (up to the next heading of level 1 to 3)."""
    sections: dict[str, list[str]] = {}
    current: str | None = None
    for line in _lines():
        match = HEADING.match(line)
        if match:
            current = match.group(1)
            sections[current] = []
        elif re.match(r"^#{1,3} ", line):
            current = None
        elif current is not None:
            sections[current].append(line)
    return sections


def test_the_document_has_examples() -> None:
    assert len(EXAMPLES) >= 100
    assert len(ERRORS) >= 10


@pytest.mark.parametrize("name", sorted(ARITY))
def test_every_function_has_a_heading_and_an_example(name: str) -> None:
    sections = _function_sections()
    assert name in sections, f"docs/expressions.md needs the heading: ### `{name}`"
    body = "\n".join(sections[name])
    calls = [e for e in EXAMPLES if re.search(rf"\b{name}\(", e.expr) and e.expr in body]
    assert "<!-- examples -->" in body and calls, f"the section of {name} needs an example calling it"


def test_function_headings_name_functions() -> None:
    assert sorted(set(_function_sections()) - set(ARITY)) == []


# -- the examples, in Python ----------------------------------------------------------------


@pytest.mark.parametrize("example", EXAMPLES, ids=str)
def test_example_in_python(example: Example) -> None:
    expected = _expected(example)
    got = to_python(_checked(example), lambda: NOW, dt.UTC, CALENDAR)(RECORD)
    if expected is None or isinstance(expected, bool):
        assert got is expected, f"{example}: got {got!r}"
    elif isinstance(expected, int | Decimal):
        assert isinstance(got, int | Decimal) and not isinstance(got, bool), f"{example}: got {got!r}"
        assert Decimal(got) == Decimal(expected), f"{example}: got {got!r}"
    else:
        assert type(got) is type(expected) and got == expected, f"{example}: got {got!r}"


# -- the examples, in SQL -------------------------------------------------------------------


@dataclass
class Database:
    """The example record stored in one database, and how to compile against it."""

    engine: Engine
    lead: Table
    scope: SqlScope


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest) -> Iterator[Database]:
    metadata = MetaData()
    account, settings, lead, lines = _tables(metadata)
    schema = None
    if request.param == "sqlite":
        engine = make_engine("sqlite://")
    else:
        require_postgres()
        schema = f"t_{uuid.uuid4().hex[:12]}"
        admin = create_engine(PG_URL)
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        engine = make_engine(f"{PG_URL}?options=-csearch_path%3D{schema}")
    try:
        metadata.create_all(engine)
        system_metadata.create_all(engine, tables=[workdays, calendars])
        with engine.begin() as conn:
            ensure_calendar(conn, CALENDAR_APP, CALENDAR)
            conn.execute(insert(account), [ACCOUNT_ROW])
            conn.execute(insert(settings), [SETTINGS_ROW])
            conn.execute(insert(lead), [LEAD_ROW])
            rows = [{"id": i + 1, "parent_id": 1, "position": i, **row} for i, row in enumerate(LINE_ROWS)]
            conn.execute(insert(lines), rows)
        scope = SqlScope(
            lead,
            engine.dialect.name,
            links={"account": account},
            children={"lines": lines},
            singles={"scoring_settings": settings},
            now=NOW,
            zone=dt.UTC,
            app=CALENDAR_APP,
        )
        yield Database(engine, lead, scope)
    finally:
        engine.dispose()
        if schema is not None:
            with admin.begin() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()


@pytest.mark.parametrize("example", EXAMPLES, ids=str)
def test_example_in_sql(database: Database, example: Example) -> None:
    expected = _expected(example)
    expr = to_sql(_checked(example), database.scope)
    with database.engine.connect() as conn:
        got = conn.execute(select(expr).select_from(database.lead).where(database.lead.c.id == 1)).scalar()
    where = f"{example} ({database.engine.dialect.name})"
    if expected is None:
        assert got is None, f"{where}: got {got!r}"
    elif isinstance(expected, bool):
        assert got is not None and bool(got) is expected, f"{where}: got {got!r}"
    elif isinstance(expected, int | Decimal):
        assert isinstance(got, int | float | Decimal) and not isinstance(got, bool), f"{where}: got {got!r}"
        assert math.isclose(float(got), float(expected), rel_tol=TOLERANCE, abs_tol=TOLERANCE), (
            f"{where}: got {got!r}"
        )
    else:
        assert type(got) is type(expected) and got == expected, f"{where}: got {got!r}"


# -- documented errors ----------------------------------------------------------------------


@pytest.mark.parametrize("example", ERRORS, ids=str)
def test_error_example(example: Example) -> None:
    with pytest.raises(ExpressionError) as caught:
        check(parse(example.expr), SCOPE, example.expr)
    assert example.result in caught.value.message, f"{example}: the message is {caught.value.message!r}"


# -- the example pack -----------------------------------------------------------------------


def test_example_pack_loads_and_behaves_as_described(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from runtime.boot import start

    (_, block), *others = list(_blocks("pack", fence="yaml"))
    assert not others, "the document holds one whole pack"
    pack = tmp_path / "sales.yaml"
    pack.write_text("\n".join(block) + "\n", encoding="utf-8")
    runtime = start([pack], f"sqlite:///{tmp_path}/pack.db", tmp_path / "files", clock=lambda: NOW)
    try:
        client = TestClient(runtime.api, headers={"Authorization": f"Bearer {admin_token(runtime.engine)}"})
        base = "/api/v1/sales"
        assert len(client.get(f"{base}/scoring_settings").json()["items"]) == 1  # there from the start
        account = client.post(f"{base}/account", json={"name": "上海华信精密制造有限公司"}).json()
        lead = {
            "company": "上海华信精密制造 有限公司",
            "contact_name": "王磊",
            "source": "webinar",
            "budget": "120000.50",
            "site_visits": 7,
            "account": account["id"],
        }
        # A rule naming its fields, and a required_when field.
        answer = client.post(f"{base}/lead", json={**lead, "status": "disqualified"})
        assert answer.status_code == 422
        problems = {(p["field"], p["code"]) for p in answer.json()["errors"]}
        assert problems == {("phone", "rule"), ("email", "rule"), ("disqualify_reason", "required")}
        created = client.post(f"{base}/lead", json={**lead, "phone": "13800138000"})
        assert created.status_code == 201, created.text
        body = created.json()
        assert body["follow_up_on"] == "2026-12-01"  # the expression default: three days from TODAY()
        assert body["score"] == 65 and body["qualified"] is True  # 30 for the budget, 35 for 7 visits
        # The same company and contact, written differently: a possible duplicate.
        again = client.post(
            f"{base}/lead", json={**lead, "company": "上海华信精密制造有限公司 ", "email": "a@b.cn"}
        )
        assert again.status_code == 409
        assert again.json()["errors"][0]["code"] == "duplicate"
        assert again.json()["errors"][0]["candidates"] == [body["id"]]
        # A formula reading child rows; a where= filter.
        quote = client.post(
            f"{base}/quote",
            json={
                "account": account["id"],
                "lines": [
                    {
                        "product": "Platform licence",
                        "quantity": 3,
                        "unit_price": "960.00",
                        "discount_pct": "0.35",
                    },
                    {"product": "Training", "quantity": 1, "unit_price": "3000.00"},
                ],
            },
        )
        assert quote.status_code == 201, quote.text
        assert [line["amount"] for line in quote.json()["lines"]] == ["1872.00", "3000.00"]
        assert quote.json()["subtotal"] == "4872.00" and quote.json()["grand_total"] == "5505.36"
        found = client.get(
            f"{base}/lead", params={"where": "budget > 100000 and source in ['seo', 'webinar']"}
        )
        assert [item["id"] for item in found.json()["items"]] == [body["id"]]
        wrong = client.get(f"{base}/lead", params={"where": "budget > 'x'"})
        assert wrong.status_code == 422
        assert [(p["field"], p["code"]) for p in wrong.json()["errors"]] == [("query.where", "expression")]
        # The settings form holds one record; changing it recomputes the formulas reading it.
        settings = client.get(f"{base}/scoring_settings").json()["items"][0]
        assert client.post(f"{base}/scoring_settings", json={}).json()["errors"][0]["code"] == "single"
        client.patch(f"{base}/scoring_settings/{settings['id']}", json={"mql_threshold": 70})
        assert client.get(f"{base}/lead/{body['id']}").json()["qualified"] is False
        # Saved anyway, found again, merged into the first.
        copy = {**lead, "company": "上海华信精密制造有限公司", "email": "a@b.cn"}
        second = client.post(f"{base}/lead", params={"allow_duplicate": "true"}, json=copy).json()
        found = client.get(f"{base}/lead/{body['id']}/duplicates").json()["items"]
        assert [item["id"] for item in found] == [second["id"]]
        merged = client.post(
            f"{base}/lead/{body['id']}/merge",
            json={"merge": [second["id"]], "values": {"email": second["id"]}},
        )
        assert merged.status_code == 200 and merged.json()["email"] == "a@b.cn"
        assert [item["id"] for item in client.get(f"{base}/lead").json()["items"]] == [body["id"]]
        gone = client.get(f"{base}/lead", params={"merged_into": body["id"]}).json()["items"]
        assert [(item["id"], item["merged_into"]["id"]) for item in gone] == [(second["id"], body["id"])]
    finally:
        runtime.engine.dispose()
