"""A staging database's movable clock: `formloom publish --allow-clock` marks a database,
and only then does `formloom worker --at TIME` run due work as of a later time.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "formloom_clock",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("allowed_at", WHEN, nullable=False),
        sa.Column("allowed_by", sa.String(150), nullable=True),
        sa.Column("moved_to", WHEN, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_formloom_clock"),
    )


def downgrade() -> None:
    op.drop_table("formloom_clock")
