"""`/healthz` and `/readyz`: probes for a load balancer or an orchestrator, without sign-in.

`/healthz` answers 200 while the process can answer at all. `/readyz` answers 200 only
when this server can do its work: the database answers, its system tables are at the
newest migration, and every app this server serves is the version published in the
database (a server that has not yet followed a publish is not ready). Neither reveals
data: the answer names the checks and whether each passed, nothing more.
"""

from __future__ import annotations

from collections.abc import Callable

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

from runtime.schema import published
from runtime.schema.migrate import alembic_config
from runtime.schema.system import ALEMBIC_VERSION_TABLE

Check = tuple[str, bool]


def readiness(engine: Engine, served_hashes: Callable[[], dict[str, str]]) -> list[Check]:
    """Each readiness check and whether it passed, in order; later checks need the earlier."""
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
            context = MigrationContext.configure(conn, opts={"version_table": ALEMBIC_VERSION_TABLE})
            applied = set(context.get_current_heads())
            current = published.current_hashes(conn)
    except SQLAlchemyError:
        return [("database", False)]
    heads = set(ScriptDirectory.from_config(alembic_config(engine)).get_heads())
    served = served_hashes()
    in_step = all(current.get(app) == digest for app, digest in served.items())
    return [("database", True), ("migrations", applied == heads), ("published", in_step)]
