"""Formulas, expression defaults, rules and required_when, applied on every write."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from runtime.boot import start
from tests.support import write_pack

FIXED_NOW = dt.datetime(2026, 11, 28, 20, 0, tzinfo=dt.UTC)  # already 29 Nov in Shanghai

CUSTOMER = """\
form: customer
label: Customer
title_field: name
fields:
  - {key: name, type: text, required: true}
  - {key: tier, type: select, options: [gold, silver]}
"""
LINE = """\
form: line
label: Line
child: true
fields:
  - {key: quantity, type: decimal, precision: 12, scale: 2, required: true}
  - {key: price, type: money, required: true}
  - {key: discount, type: percent, default: 0}
  - {key: total, type: money, formula: "quantity * price * (1 - discount)"}
"""
QUOTE = """\
form: quote
label: Quote
fields:
  - {key: customer, type: link, to: customer, on_delete: set_null}
  - {key: lines, type: table, form: line}
  - {key: subtotal, type: money, formula: "SUM(lines.total)"}
  - {key: tax, type: money, formula: "ROUND(subtotal * 0.13, 2)"}
  - {key: grand_total, type: money, formula: "subtotal + tax"}
  - {key: largest_discount, type: percent, formula: "COALESCE(MAX(lines.discount), 0)"}
  - {key: line_count, type: integer, formula: "COUNT(lines)"}
  - {key: gold, type: boolean, formula: "customer.tier == 'gold'"}
  - {key: valid_until, type: date, default: "=ADD_DAYS(TODAY(), 30)"}
  - {key: status, type: select, options: [draft, lost], default: draft}
  - {key: loss_reason, type: text, required_when: "status == 'lost'"}
rules:
  - check: "grand_total < 1000000"
    message: {en: Quotes above a million need a contract, zh: 超过一百万需要合同}
  - check: "line_count > 0 or status == 'draft'"
    message: A sent quote needs lines
    fields: [lines]
"""


@pytest.fixture
def service(db_url: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    pack = write_pack(tmp_path / "pack", {"customer": CUSTOMER, "line": LINE, "quote": QUOTE})
    (tmp_path / "pack" / "app.yaml").write_text(
        "app: t\nlabel: T\nversion: '1'\ntimezone: Asia/Shanghai\n", encoding="utf-8"
    )
    runtime = start([pack], db_url, tmp_path / "files", clock=lambda: FIXED_NOW)
    yield runtime.service
    runtime.engine.dispose()


def test_formulas_fill_child_rows_then_the_parent(service) -> None:  # type: ignore[no-untyped-def]
    gold = service.create("t", "customer", {"name": "Acme", "tier": "gold"})
    quote = service.create(
        "t",
        "quote",
        {
            "customer": gold["id"],
            "lines": [
                {"quantity": 2, "price": "100.00", "discount": "0.1"},
                {"quantity": "1.5", "price": 10},
            ],
        },
    )
    assert [line["total"] for line in quote["lines"]] == ["180.00", "15.00"]
    assert (quote["subtotal"], quote["tax"], quote["grand_total"]) == ("195.00", "25.35", "220.35")
    assert quote["largest_discount"] == "0.100000"
    assert quote["line_count"] == 2
    assert quote["gold"] is True
    assert quote["valid_until"] == "2026-12-29"  # TODAY() in the app's time zone, plus 30 days


def test_formulas_follow_updates_of_kept_rows(service) -> None:  # type: ignore[no-untyped-def]
    quote = service.create("t", "quote", {"lines": [{"quantity": 1, "price": 100}]})
    row = quote["lines"][0]
    changed = service.update("t", "quote", quote["id"], {"lines": [{"id": row["id"], "quantity": 3}]})
    assert changed["lines"][0]["total"] == "300.00"
    assert changed["grand_total"] == "339.00"
    untouched = service.update("t", "quote", quote["id"], {"status": "draft"})
    assert untouched["grand_total"] == "339.00"


def test_formula_fields_cannot_be_written(service) -> None:  # type: ignore[no-untyped-def]
    from runtime.records.errors import InvalidRecord

    with pytest.raises(InvalidRecord) as caught:
        service.create("t", "quote", {"subtotal": 5})
    assert [(p.field, p.code) for p in caught.value.problems] == [("subtotal", "read_only")]


def test_rules_and_required_when_answer_every_failure(service) -> None:  # type: ignore[no-untyped-def]
    from runtime.records.errors import InvalidRecord

    with pytest.raises(InvalidRecord) as caught:
        service.create("t", "quote", {"status": "lost", "lines": [{"quantity": 10000, "price": 100}]})
    found = {(p.field, p.code, p.message) for p in caught.value.problems}
    assert found == {
        ("loss_reason", "required", "is required here"),
        ("grand_total", "rule", "Quotes above a million need a contract"),
    }
    with pytest.raises(InvalidRecord) as caught:
        service.create("t", "quote", {"status": "lost", "loss_reason": "price"})
    assert [(p.field, p.code) for p in caught.value.problems] == [("lines", "rule")]
    assert (
        service.create(
            "t", "quote", {"status": "lost", "loss_reason": "price", "lines": [{"quantity": 1, "price": 1}]}
        )["status"]
        == "lost"
    )


def test_linked_values_are_read_in_one_query_per_link(service) -> None:  # type: ignore[no-untyped-def]
    from tests.support import count_queries

    silver = service.create("t", "customer", {"name": "B", "tier": "silver"})
    rows = [{"customer": silver["id"], "lines": [{"quantity": 1, "price": 1}]} for _ in range(20)]
    with count_queries(service.engine) as small:
        service.create_many("t", "quote", rows[:2])
    with count_queries(service.engine) as large:
        created = service.create_many("t", "quote", rows)
    assert all(q["gold"] is False for q in created)
    reads = [s for s in large if s.lstrip().upper().startswith("SELECT")]
    small_reads = [s for s in small if s.lstrip().upper().startswith("SELECT")]
    assert len(reads) == len(small_reads)
