"""Identity: departments, passwords and roles of users, API tokens, sessions, login failures, audit.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "formloom_departments",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(60), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("parent_id", ID, nullable=True),
        sa.Column("manager_id", ID, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_formloom_departments"),
        sa.UniqueConstraint("key", name="uq_formloom_departments_key"),
        sa.ForeignKeyConstraint(["parent_id"], ["formloom_departments.id"], ondelete="RESTRICT",
                                name="fk_formloom_departments_parent_id"),
        sa.ForeignKeyConstraint(["manager_id"], ["formloom_users.id"], ondelete="SET NULL",
                                name="fk_formloom_departments_manager_id"),
    )
    with op.batch_alter_table("formloom_users") as batch:
        batch.add_column(sa.Column("password_hash", sa.String(255), nullable=True))
        batch.add_column(sa.Column("department_id", ID, nullable=True))
        batch.add_column(sa.Column("email", sa.String(254), nullable=True))
        batch.add_column(sa.Column("language", sa.String(8), nullable=False, server_default="zh"))
        batch.add_column(sa.Column("active", sa.Boolean(), nullable=False, server_default=sa.true()))
        batch.create_foreign_key("fk_formloom_users_department_id", "formloom_departments",
                                 ["department_id"], ["id"], ondelete="SET NULL")
    op.create_table(
        "formloom_user_roles",
        sa.Column("user_id", ID, nullable=False),
        sa.Column("role", sa.String(60), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "role", name="pk_formloom_user_roles"),
        sa.ForeignKeyConstraint(["user_id"], ["formloom_users.id"], ondelete="CASCADE",
                                name="fk_formloom_user_roles_user_id"),
    )
    op.create_table(
        "formloom_tokens",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("user_id", ID, nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("expires_at", WHEN, nullable=True),
        sa.Column("revoked_at", WHEN, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_formloom_tokens"),
        sa.UniqueConstraint("token_hash", name="uq_formloom_tokens_token_hash"),
        sa.ForeignKeyConstraint(["user_id"], ["formloom_users.id"], ondelete="CASCADE",
                                name="fk_formloom_tokens_user_id"),
    )
    op.create_index("ix_formloom_tokens_user_id", "formloom_tokens", ["user_id"])
    op.create_table(
        "formloom_sessions",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("user_id", ID, nullable=False),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("expires_at", WHEN, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_formloom_sessions"),
        sa.ForeignKeyConstraint(["user_id"], ["formloom_users.id"], ondelete="CASCADE",
                                name="fk_formloom_sessions_user_id"),
    )
    op.create_index("ix_formloom_sessions_user_id", "formloom_sessions", ["user_id"])
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
    op.create_table(
        "formloom_audit",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("app", sa.String(40), nullable=False),
        sa.Column("form", sa.String(40), nullable=False),
        sa.Column("record_id", sa.BigInteger(), nullable=False),
        sa.Column("action", sa.String(20), nullable=False),
        sa.Column("channel", sa.String(20), nullable=False),
        sa.Column("user_id", ID, nullable=True),
        sa.Column("at", WHEN, nullable=False),
        sa.Column("changes", JSON, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_formloom_audit"),
    )
    op.create_index("ix_formloom_audit_record", "formloom_audit", ["app", "form", "record_id"])


def downgrade() -> None:
    op.drop_table("formloom_audit")
    op.drop_table("formloom_login_failures")
    op.drop_table("formloom_sessions")
    op.drop_table("formloom_tokens")
    op.drop_table("formloom_user_roles")
    with op.batch_alter_table("formloom_users") as batch:
        batch.drop_constraint("fk_formloom_users_department_id", type_="foreignkey")
        for column in ("active", "language", "email", "department_id", "password_hash"):
            batch.drop_column(column)
    op.drop_table("formloom_departments")
