"""The working calendar in SQL: each app's working days, numbered, for the working-day functions.

`formloom_workdays` holds one row per working day of an app's calendar from 1970 to 2100,
numbered in order, so that `WORKDAYS_BETWEEN` and `ADD_WORKDAYS` compile to SQL
(a difference of numbers, a lookup by number). `formloom_calendars` remembers which
calendar the rows were made from; they are made again when it changes.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "formloom_workdays",
        sa.Column("app", sa.String(40), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("app", "day", name="pk_formloom_workdays"),
    )
    op.create_index("ix_formloom_workdays_app_n", "formloom_workdays", ["app", "n"], unique=True)
    op.create_table(
        "formloom_calendars",
        sa.Column("app", sa.String(40), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("app", name="pk_formloom_calendars"),
    )


def downgrade() -> None:
    op.drop_table("formloom_calendars")
    op.drop_index("ix_formloom_workdays_app_n", "formloom_workdays")
    op.drop_table("formloom_workdays")
