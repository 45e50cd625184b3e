"""The request id (X-Request-ID) of the request that caused a history entry or queued a job.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("formloom_audit") as batch:
        batch.add_column(sa.Column("request_id", sa.String(64), nullable=True))
    with op.batch_alter_table("formloom_jobs") as batch:
        batch.add_column(sa.Column("request_id", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("formloom_jobs") as batch:
        batch.drop_column("request_id")
    with op.batch_alter_table("formloom_audit") as batch:
        batch.drop_column("request_id")
