"""A first publish creates tables in link order: a form may link to a form defined after it."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import inspect

from builder.publishing.publish import publish
from runtime.db import make_engine
from runtime.loading.loader import load_pack
from runtime.schema.migrate import upgrade_system_tables
from tests.support import SALES


def test_the_sales_pack_publishes_on_an_empty_database(db_url: str, tmp_path: Path) -> None:
    engine = make_engine(db_url)
    upgrade_system_tables(engine)
    app = load_pack(SALES)
    names = [f.form for f in app.top_forms()]
    contract = app.form("contract")
    assert contract is not None and names.index("contract") < names.index("quote")
    assert any(link.to == "quote" for link in contract.link_fields())  # a link to a form defined later
    publish(engine, app, backups=tmp_path / "backups")
    tables = set(inspect(engine).get_table_names())
    assert {f"sales__{name}" for name in names} <= tables
    engine.dispose()
