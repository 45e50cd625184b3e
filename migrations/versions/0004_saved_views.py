"""Saved list views: each user's named filters, sorts and columns of a form's list.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "formloom_saved_views",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("user_id", ID, nullable=False),
        sa.Column("app", sa.String(40), nullable=False),
        sa.Column("form", sa.String(40), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("query", sa.Text(), nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_formloom_saved_views"),
        sa.ForeignKeyConstraint(["user_id"], ["formloom_users.id"], ondelete="CASCADE",
                                name="fk_formloom_saved_views_user_id"),
    )
    op.create_index(
        "uq_formloom_saved_views_name", "formloom_saved_views", ["user_id", "app", "form", "name"], unique=True
    )


def downgrade() -> None:
    op.drop_table("formloom_saved_views")
