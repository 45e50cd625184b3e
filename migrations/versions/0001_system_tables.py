"""System tables: users, apps, definition versions, counters, files.

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "formloom_users",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("username", sa.String(150), nullable=False),
        sa.Column("display_name", sa.String(200), nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_formloom_users"),
        sa.UniqueConstraint("username", name="uq_formloom_users_username"),
    )
    op.create_table(
        "formloom_apps",
        sa.Column("key", sa.String(40), nullable=False),
        sa.Column("label", JSON, nullable=False),
        sa.Column("version", sa.String(40), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("updated_at", WHEN, nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_formloom_apps"),
    )
    op.create_table(
        "formloom_definition_versions",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("app", sa.String(40), nullable=False),
        sa.Column("version", sa.String(40), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("definition", JSON, nullable=False),
        sa.Column("plan", JSON, nullable=True),
        sa.Column("author", sa.String(150), nullable=True),
        sa.Column("published_at", WHEN, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_formloom_definition_versions"),
    )
    op.create_index(
        "ix_formloom_definition_versions_app", "formloom_definition_versions", ["app"]
    )
    op.create_table(
        "formloom_counters",
        sa.Column("app", sa.String(40), nullable=False),
        sa.Column("form", sa.String(40), nullable=False),
        sa.Column("field", sa.String(40), nullable=False),
        sa.Column("period", sa.String(60), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("app", "form", "field", "period", name="pk_formloom_counters"),
    )
    op.create_table(
        "formloom_files",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("content_type", sa.String(255), nullable=False),
        sa.Column("checksum", sa.String(64), nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("created_by", ID, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_formloom_files"),
        sa.ForeignKeyConstraint(
            ["created_by"], ["formloom_users.id"], name="fk_formloom_files_created_by"
        ),
    )
    op.create_index("ix_formloom_files_checksum", "formloom_files", ["checksum"])


def downgrade() -> None:
    op.drop_table("formloom_files")
    op.drop_table("formloom_counters")
    op.drop_table("formloom_definition_versions")
    op.drop_table("formloom_apps")
    op.drop_table("formloom_users")
