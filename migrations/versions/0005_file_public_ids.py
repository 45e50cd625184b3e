"""Files get a random public id: the API names files by it, never by their sequential id.

Existing files get one each. The column is added with an empty default so SQLite can
add it as NOT NULL without rebuilding the table (other tables refer to it); PostgreSQL
drops that default again.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

import secrets

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "formloom_files", sa.Column("public_id", sa.String(32), nullable=False, server_default="")
    )
    conn = op.get_bind()
    files = sa.table("formloom_files", sa.column("id"), sa.column("public_id"))
    ids = list(conn.execute(sa.select(files.c.id)).scalars())
    if ids:
        fill = (
            sa.update(files)
            .where(files.c.id == sa.bindparam("file_id"))
            .values(public_id=sa.bindparam("new_id"))
        )
        conn.execute(fill, [{"file_id": i, "new_id": secrets.token_urlsafe(16)} for i in ids])
    if conn.dialect.name != "sqlite":
        op.alter_column("formloom_files", "public_id", server_default=None)
    op.create_index("ix_formloom_files_public_id", "formloom_files", ["public_id"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_formloom_files_public_id", table_name="formloom_files")
    with op.batch_alter_table("formloom_files") as batch:
        batch.drop_column("public_id")
