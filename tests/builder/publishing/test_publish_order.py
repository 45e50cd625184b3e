"""Forms may link to each other in any shape: a publish creates the tables, then the foreign keys.

Two forms linking to each other, a form linking to itself, a ring of three and child rows
linking back to their parent form have no order in which each table could be created after
the tables it links to. So every table is created first, and the foreign keys of links are
added after, as steps of their own (on SQLite, which cannot add a constraint to a table, new
tables declare them in CREATE TABLE). The keys must then hold as defined: `restrict`,
`set_null`, and the child rows' cascade. No library warning reaches the user on the way.
"""

from __future__ import annotations

import gc
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, Table, func, inspect, select, text
from sqlalchemy.exc import IntegrityError

from builder.cli import main
from builder.publishing.publish import publish
from runtime.boot import start
from runtime.db import make_engine
from runtime.loading.loader import load_pack
from runtime.schema.migrate import upgrade_system_tables
from runtime.schema.tables import AppTables, build_tables
from runtime.schema.types import utcnow
from tests.support import SALES, write_pack

REQUEST = """\
form: purchase_request
label: Purchase request
title_field: title
fields:
  - {key: title, type: text, required: true}
  - {key: purchase_order, type: link, to: purchase_order, on_delete: set_null}
  - {key: previous, type: link, to: purchase_request, on_delete: set_null}
  - {key: lines, type: table, form: request_line}
"""

ORDER = """\
form: purchase_order
label: Purchase order
title_field: number
fields:
  - {key: number, type: text, required: true}
  - {key: request, type: link, to: purchase_request}
"""

LINE = """\
form: request_line
label: Request line
child: true
fields:
  - {key: item, type: text}
  - {key: request, type: link, to: purchase_request, on_delete: set_null}
"""


def ring(name: str, to: str, on_delete: str) -> str:
    return f"""\
form: {name}
label: {name}
fields:
  - {{key: name, type: text}}
  - {{key: next, type: link, to: {to}, on_delete: {on_delete}}}
"""


FORMS_V1 = {
    "purchase_request": REQUEST,
    "purchase_order": ORDER,
    "request_line": LINE,
    "ring_a": ring("ring_a", "ring_b", "restrict"),
    "ring_b": ring("ring_b", "ring_c", "restrict"),
    "ring_c": ring("ring_c", "ring_a", "set_null"),
}

# The second version adds a new pair of forms linking to each other, and a link to one of
# them from a table that already exists.
FORMS_V2 = {
    **FORMS_V1,
    "purchase_order": ORDER + "  - {key: invoice, type: link, to: invoice, on_delete: set_null}\n",
    "invoice": """\
form: invoice
label: Invoice
fields:
  - {key: number, type: text}
  - {key: payment, type: link, to: payment, on_delete: set_null}
""",
    "payment": """\
form: payment
label: Payment
fields:
  - {key: amount, type: integer}
  - {key: invoice, type: link, to: invoice}
""",
}

KEYS_V1 = {
    ("t__purchase_request", "purchase_order"): ("t__purchase_order", "SET NULL"),
    ("t__purchase_request", "previous"): ("t__purchase_request", "SET NULL"),
    ("t__purchase_order", "request"): ("t__purchase_request", "RESTRICT"),
    ("t__purchase_request__lines", "parent_id"): ("t__purchase_request", "CASCADE"),
    ("t__purchase_request__lines", "request"): ("t__purchase_request", "SET NULL"),
    ("t__ring_a", "next"): ("t__ring_b", "RESTRICT"),
    ("t__ring_b", "next"): ("t__ring_c", "RESTRICT"),
    ("t__ring_c", "next"): ("t__ring_a", "SET NULL"),
}
KEYS_V2 = {
    **KEYS_V1,
    ("t__purchase_order", "invoice"): ("t__invoice", "SET NULL"),
    ("t__invoice", "payment"): ("t__payment", "SET NULL"),
    ("t__payment", "invoice"): ("t__invoice", "RESTRICT"),
}
LINKS_V1 = {key for key, (_, ondelete) in KEYS_V1.items() if ondelete != "CASCADE"}
STEP = re.compile(r"^\s*\d+\. \[(\S+)\] (.*)$")


@contextmanager
def no_warnings() -> Iterator[None]:
    """Fail when anything inside the block warns (SQLAlchemy's "Cannot correctly sort
    tables", a connection left open, …): a warning would be printed to the user."""
    gc.collect()  # what earlier tests left behind warns when it is collected, not here
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
        gc.collect()
    assert [f"{w.category.__name__}: {w.message}" for w in caught] == []


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """Run a formloom command without warnings; its output (it must succeed)."""
    with no_warnings():
        code = main(list(argv))
    out, err = capsys.readouterr()
    assert code == 0, out + err
    assert err == ""
    return out


def steps(out: str) -> list[tuple[str, str]]:
    """`(table, words)` of each step of a printed plan."""
    return [(m.group(1), m.group(2)) for line in out.splitlines() if (m := STEP.match(line))]


def link_keys(engine: Engine) -> dict[tuple[str, str], tuple[str, str]]:
    """The foreign keys between the app's tables, as the database has them."""
    found = inspect(engine)
    keys: dict[tuple[str, str], tuple[str, str]] = {}
    for table in found.get_table_names():
        if not table.startswith("t__"):
            continue
        for key in found.get_foreign_keys(table):
            if key["referred_table"].startswith("t__"):
                [column] = key["constrained_columns"]
                ondelete = (key.get("options", {}).get("ondelete") or "").upper()
                keys[(table, column)] = (key["referred_table"], ondelete)
    return keys


def no_broken_keys(engine: Engine) -> None:
    """Every key points at a record (SQLite's own check; PostgreSQL checks as it goes)."""
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            assert conn.execute(text("PRAGMA foreign_key_check")).fetchall() == []


def add(conn: Any, table: Table, **values: Any) -> int:
    """Insert a record straight into a form table (no records service: the keys alone decide)."""
    now = utcnow()
    result = conn.execute(table.insert().values(created_at=now, updated_at=now, version=1, **values))
    return int(result.inserted_primary_key[0])


def refused(engine: Engine, statement: Any) -> None:
    """The database refuses the statement (a foreign key)."""
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(statement)


def value(engine: Engine, table: Table, column: str, record: int) -> Any:
    with engine.connect() as conn:
        return conn.scalar(select(table.c[column]).where(table.c.id == record))


def check_v1_keys(engine: Engine, tables: AppTables) -> None:
    """Write through the keys of version 1 and see each do as defined."""
    request_t, order_t = tables.of("purchase_request").table, tables.of("purchase_order").table
    lines_t = tables.of("purchase_request").children["lines"].table
    a_t, b_t, c_t = (tables.of(f"ring_{n}").table for n in "abc")
    with engine.begin() as conn:
        request = add(conn, request_t, title="R1")
        later = add(conn, request_t, title="R2", previous=request)
        order = add(conn, order_t, number="PO1", request=request)
        conn.execute(request_t.update().where(request_t.c.id == request).values(purchase_order=order))
        conn.execute(lines_t.insert().values(parent_id=later, position=0, item="x", request=request))
        a = add(conn, a_t, name="a")
        b = add(conn, b_t, name="b")
        c = add(conn, c_t, name="c", next=a)
        conn.execute(a_t.update().where(a_t.c.id == a).values(next=b))
        conn.execute(b_t.update().where(b_t.c.id == b).values(next=c))
    no_broken_keys(engine)
    refused(engine, order_t.update().where(order_t.c.id == order).values(request=10_000))  # no such record
    refused(engine, request_t.delete().where(request_t.c.id == request))  # the order links to it: restrict
    with engine.begin() as conn:
        conn.execute(order_t.delete().where(order_t.c.id == order))
    assert value(engine, request_t, "purchase_order", request) is None  # set_null
    with engine.begin() as conn:
        conn.execute(request_t.delete().where(request_t.c.id == request))
    assert value(engine, request_t, "previous", later) is None  # set_null, on the form itself
    with engine.connect() as conn:
        assert conn.scalar(select(lines_t.c.request).where(lines_t.c.parent_id == later)) is None
    with engine.begin() as conn:
        conn.execute(request_t.delete().where(request_t.c.id == later))
        assert conn.scalar(select(func.count()).select_from(lines_t)) == 0  # its rows go with it: cascade
    refused(engine, b_t.delete().where(b_t.c.id == b))  # a links to b: restrict
    refused(engine, c_t.delete().where(c_t.c.id == c))  # b links to c: restrict
    with engine.begin() as conn:
        conn.execute(a_t.delete().where(a_t.c.id == a))
    assert value(engine, c_t, "next", c) is None  # c → a: set_null; b and c stay, linked


def check_v2_keys(engine: Engine, tables: AppTables) -> None:
    """The keys version 2 adds, on the new pair and on the table that existed."""
    order_t, invoice_t, payment_t = (tables.of(k).table for k in ("purchase_order", "invoice", "payment"))
    with engine.begin() as conn:
        invoice = add(conn, invoice_t, number="INV1")
        payment = add(conn, payment_t, amount=100, invoice=invoice)
        conn.execute(invoice_t.update().where(invoice_t.c.id == invoice).values(payment=payment))
        order = add(conn, order_t, number="PO2", invoice=invoice)
    no_broken_keys(engine)
    refused(engine, order_t.update().where(order_t.c.id == order).values(invoice=10_000))
    refused(engine, invoice_t.delete().where(invoice_t.c.id == invoice))  # the payment links to it: restrict
    with engine.begin() as conn:
        conn.execute(payment_t.delete().where(payment_t.c.id == payment))
    assert value(engine, invoice_t, "payment", invoice) is None
    with engine.begin() as conn:
        conn.execute(invoice_t.delete().where(invoice_t.c.id == invoice))
    assert value(engine, order_t, "invoice", order) is None


def test_first_then_incremental_publish_of_linked_forms(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    v1 = write_pack(tmp_path / "v1", FORMS_V1)
    backups = str(tmp_path / "backups")
    pg = db_url.startswith("postgresql")

    plan = run(capsys, "plan", str(v1), "--db", db_url)
    listed = steps(plan)
    created = [
        i for i, (_, words) in enumerate(listed) if words.startswith(("create table", "create child table"))
    ]
    keyed = [i for i, (_, words) in enumerate(listed) if words.startswith("add foreign key")]
    assert len(created) == 6  # five forms, and the child rows of one table field
    if pg:  # the tables first, then one step per link
        assert created == list(range(6)) and keyed == list(range(6, 13)) and len(listed) == 13
        assert {
            (table, words.split()[4].rstrip(":")) for table, words in (listed[i] for i in keyed)
        } == LINKS_V1
        assert (
            "[t__purchase_request] add foreign key on purchase_order: it references t__purchase_order, "
            "on delete set null" in plan
        )
        assert "[t__ring_a] add foreign key on next: it references t__ring_b, on delete restrict" in plan
        assert (
            "ALTER TABLE t__purchase_order ADD CONSTRAINT fk_t__purchase_order_request "
            "FOREIGN KEY(request) REFERENCES t__purchase_request (id) ON DELETE RESTRICT;" in plan
        )
        creates = plan[: plan.index("add foreign key")]
        assert "REFERENCES t__purchase_order" not in creates and "REFERENCES t__ring" not in creates
        assert "REFERENCES t__purchase_request (id) ON DELETE CASCADE" in creates  # the child's parent
    else:  # SQLite declares the keys in CREATE TABLE: it resolves them lazily
        assert keyed == [] and len(listed) == 6
        assert "FOREIGN KEY(purchase_order) REFERENCES t__purchase_order (id) ON DELETE SET NULL" in plan

    out = run(capsys, "publish", str(v1), "--db", db_url, "--author", "dev", "--backups", backups)
    assert "published t 1.0.0 as version #1" in out
    engine = make_engine(db_url)
    try:
        assert link_keys(engine) == KEYS_V1
        no_broken_keys(engine)
        check_v1_keys(engine, build_tables(load_pack(v1)))

        v2 = write_pack(tmp_path / "v2", FORMS_V2)
        plan = run(capsys, "plan", str(v2), "--db", db_url)
        listed = steps(plan)
        words = [w for _, w in listed]
        assert words[:2] == [
            "create table t__invoice for form invoice",
            "create table t__payment for form payment",
        ]
        assert words[2].startswith("add column invoice")
        keys = [(table, w) for table, w in listed if w.startswith("add foreign key")]
        order_key = (
            "t__purchase_order",
            "add foreign key on invoice: it references t__invoice, on delete set null",
        )
        if pg:
            assert keys == [
                ("t__invoice", "add foreign key on payment: it references t__payment, on delete set null"),
                ("t__payment", "add foreign key on invoice: it references t__invoice, on delete restrict"),
                order_key,
            ]
        else:  # the existing table is copied with its new key (Alembic's batch mode)
            assert keys == [order_key]
        assert listed[-1] == order_key

        out = run(capsys, "publish", str(v2), "--db", db_url, "--author", "dev", "--backups", backups)
        assert "published t 1.0.0 as version #2" in out
        assert link_keys(engine) == KEYS_V2
        no_broken_keys(engine)
        tables = build_tables(load_pack(v2))
        check_v2_keys(engine, tables)
        with engine.connect() as conn:  # the rows of version 1 kept their links
            ring_b = tables.of("ring_b").table
            assert [link is not None for link in conn.execute(select(ring_b.c.next)).scalars()] == [True]
    finally:
        engine.dispose()


def test_serve_on_an_empty_database_creates_the_same_keys(db_url: str, tmp_path: Path) -> None:
    pack = write_pack(tmp_path / "pack", FORMS_V2)
    app = load_pack(pack)
    with no_warnings():
        assert len(build_tables(app).metadata.sorted_tables) > len(FORMS_V2)  # SQLAlchemy sorts them quietly
        runtime = start([pack], db_url, tmp_path / "files")
        try:
            assert link_keys(runtime.engine) == KEYS_V2
            no_broken_keys(runtime.engine)
            tables = build_tables(app)
            check_v1_keys(runtime.engine, tables)
            check_v2_keys(runtime.engine, tables)
            service = runtime.service  # and the records service writes both ways round
            request = service.create("t", "purchase_request", {"title": "R3"})
            order = service.create("t", "purchase_order", {"number": "PO3", "request": request["id"]})
            linked = service.update("t", "purchase_request", request["id"], {"purchase_order": order["id"]})
            assert linked["purchase_order"] == {"id": order["id"], "display": "PO3"}
        finally:
            runtime.engine.dispose()


def test_the_sales_pack_publishes_on_an_empty_database(db_url: str, tmp_path: Path) -> None:
    engine = make_engine(db_url)
    try:
        upgrade_system_tables(engine)
        app = load_pack(SALES)
        names = [f.form for f in app.top_forms()]
        contract = app.form("contract")
        assert contract is not None and names.index("contract") < names.index("quote")
        assert any(link.to == "quote" for link in contract.link_fields())  # a link to a form defined later
        with no_warnings():
            publish(engine, app, backups=tmp_path / "backups")
        found = inspect(engine)
        assert {f"sales__{name}" for name in names} <= set(found.get_table_names())
        keys = {
            (k["constrained_columns"][0], k["referred_table"])
            for k in found.get_foreign_keys("sales__contract")
        }
        assert ("quote", "sales__quote") in keys
        no_broken_keys(engine)
    finally:
        engine.dispose()
