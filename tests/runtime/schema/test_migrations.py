"""The Alembic revisions create exactly the system tables `runtime/schema/system.py` describes."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from runtime.db import make_engine
from runtime.schema.migrate import upgrade_system_tables
from runtime.schema.system import ALEMBIC_VERSION_TABLE, system_metadata


def test_the_revisions_and_the_table_definitions_agree(db_url: str) -> None:
    engine = make_engine(db_url)
    upgrade_system_tables(engine)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        differences = [
            d
            for d in compare_metadata(context, system_metadata)
            if not (d[0] == "remove_table" and d[1].name == ALEMBIC_VERSION_TABLE)
        ]
    engine.dispose()
    assert differences == []
