"""Derived values must not reveal hidden ones (issue 14, item 3).

The loader refuses a formula or expression default shown to a role while it reads a
field hidden from that role (directly, in child rows, through a link or a settings
form), unless the field says `reveals_hidden: true`; the sales pack's margin is hidden
from reps, whose line costs are hidden.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from runtime.boot import Runtime, start
from runtime.loading.loader import load_pack
from runtime.loading.problems import DefinitionError
from runtime.seed import demo_file, seed_demo, seed_users
from tests.support import SALES, user_token, write_files, write_pack

APP = """\
app: t
label: Test
version: '1'
roles:
  - {key: rep}
  - {key: boss}
"""
PRODUCT = """\
form: product
label: Product
fields:
  - {key: name, type: text}
  - {key: cost, type: money, hidden_for: [rep]}
permissions:
  - {roles: [rep, boss], can: [read]}
"""
SECRET = """\
form: secret
label: Secret
fields:
  - {key: code, type: text}
permissions:
  - {roles: [boss], can: [read]}
"""
LINE = """\
form: line
label: Line
child: true
fields:
  - {key: price, type: money}
  - {key: cost, type: money, hidden_for: [rep]}
"""


def quote(*fields: str) -> str:
    """A quote form whose rep-readable fields include `fields` (YAML flow mappings)."""
    listed = "\n".join(f"  - {f}" for f in fields)
    return f"""\
form: quote
label: Quote
fields:
  - {{key: price, type: money}}
  - {{key: cost, type: money, hidden_for: [rep]}}
  - {{key: product, type: link, to: product}}
  - {{key: secret, type: link, to: secret}}
  - {{key: lines, type: table, form: line}}
{listed}
permissions:
  - {{roles: [rep, boss], can: [read]}}
"""


def problems(tmp_path: Path, *fields: str) -> list[str]:
    pack = write_pack(
        tmp_path / "pack", {"product": PRODUCT, "secret": SECRET, "line": LINE, "quote": quote(*fields)}
    )
    write_files(pack, {"app.yaml": APP})
    try:
        load_pack(pack)
    except DefinitionError as exc:
        return [str(p) for p in exc.problems]
    return []


HINT = "hide '{0}' from 'rep' too, or mark it reveals_hidden: true"


@pytest.mark.parametrize(
    ("field", "source"),
    [
        ('{key: margin, type: money, formula: "price - cost"}', "'cost'"),
        ('{key: margin, type: money, formula: "SUM(lines.price) - SUM(lines.cost)"}', "'lines.cost'"),
        ('{key: margin, type: money, formula: "price - product.cost"}', "'product.cost'"),
        ('{key: margin, type: text, formula: "secret.code"}', "'secret.code'"),
        ('{key: margin, type: money, default: "=cost * 2"}', "'cost'"),
    ],
)
def test_a_formula_shown_to_a_role_may_not_read_what_is_hidden_from_it(
    tmp_path: Path, field: str, source: str
) -> None:
    found = problems(tmp_path, field)
    assert len(found) == 1
    location, _, message = found[0].partition(": ")
    assert location.startswith("forms/quote.yaml:9:")  # the formula or default of the field
    assert message == (
        f"'margin' is shown to role 'rep' but is computed from {source}, which is hidden from 'rep'; "
        + HINT.format("margin")
    )


def test_a_formula_hidden_from_the_role_or_marked_on_purpose_is_accepted(tmp_path: Path) -> None:
    assert problems(tmp_path, '{key: margin, type: money, formula: "price - cost", hidden_for: [rep]}') == []
    assert (
        problems(tmp_path, '{key: margin, type: money, formula: "price - cost", reveals_hidden: true}') == []
    )
    assert problems(tmp_path, '{key: total, type: money, formula: "price + SUM(lines.price)"}') == []


@pytest.fixture
def sales(db_url: str, tmp_path: Path) -> Iterator[Runtime]:
    runtime = start([SALES], db_url, tmp_path / "files")
    users, data = demo_file(SALES, "users.yaml"), demo_file(SALES)
    assert users is not None and data is not None
    seed_users(runtime.service, users)
    seed_demo(runtime.service, "sales", data)
    yield runtime
    runtime.engine.dispose()


def test_a_sales_rep_cannot_derive_a_quotes_cost(sales: Runtime) -> None:
    token = user_token(sales.engine, "li.rep", ("sales_rep",))
    rep = TestClient(sales.api, headers={"Authorization": f"Bearer {token}"})
    quotes = rep.get("/api/v1/sales/quote").json()["items"]
    assert quotes, "the demo data gives the rep a quote"
    assert all("margin_pct" not in q for q in quotes)
    assert all("line_cost" not in line for q in quotes for line in q["lines"])
    for where in ["margin_pct > 0", "SUM(lines.line_cost) > 0"]:
        answer = rep.get("/api/v1/sales/quote", params={"where": where})
        assert answer.status_code == 422
        assert answer.json()["errors"][0]["code"] == "unknown_field"
