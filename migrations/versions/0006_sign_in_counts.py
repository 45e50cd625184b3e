"""Sign-in throttling counts attempts per (scope, user name, address, window) with one row each.

The rows are bumped atomically (`INSERT … ON CONFLICT DO UPDATE … RETURNING`), so
parallel attempts cannot pass a limit; they replace the list of failures, which was
counted with a SELECT that parallel attempts all passed at once.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "formloom_sign_in_counts",
        sa.Column("scope", sa.String(10), nullable=False),
        sa.Column("username", sa.String(150), nullable=False),
        sa.Column("address", sa.String(64), nullable=False),
        sa.Column("window_start", WHEN, nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "scope", "username", "address", "window_start", name="pk_formloom_sign_in_counts"
        ),
    )
    op.create_index("ix_formloom_sign_in_counts_window_start", "formloom_sign_in_counts", ["window_start"])
    op.drop_table("formloom_login_failures")


def downgrade() -> None:
    op.create_table(
        "formloom_login_failures",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("username", sa.String(150), nullable=False),
        sa.Column("address", sa.String(64), nullable=False),
        sa.Column("at", WHEN, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_formloom_login_failures"),
    )
    op.create_index("ix_formloom_login_failures_username", "formloom_login_failures", ["username"])
    op.create_index("ix_formloom_login_failures_address", "formloom_login_failures", ["address"])
    op.drop_index("ix_formloom_sign_in_counts_window_start", "formloom_sign_in_counts")
    op.drop_table("formloom_sign_in_counts")
