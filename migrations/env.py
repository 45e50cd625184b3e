"""Alembic environment for Formloom's system tables.

Formloom runs these revisions itself at start (`runtime.schema.migrate`), passing the
open connection in `config.attributes["connection"]`. Only the system tables are
compared; form tables belong to the definition publisher.
"""

from alembic import context

from runtime.schema.system import ALEMBIC_VERSION_TABLE, system_metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=system_metadata,
    version_table=ALEMBIC_VERSION_TABLE,
    render_as_batch=True,
    include_name=lambda name, type_, _parent: type_ != "table" or name.startswith("formloom_"),
)
with context.begin_transaction():
    context.run_migrations()
