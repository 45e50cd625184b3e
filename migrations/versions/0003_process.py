"""The process engine: workflow and approval instances, approval tasks, jobs, notifications.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "formloom_process_instances",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("app", sa.String(40), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("definition", sa.String(40), nullable=False),
        sa.Column("definition_version", ID, nullable=True),
        sa.Column("form", sa.String(40), nullable=False),
        sa.Column("record_id", sa.BigInteger(), nullable=False),
        sa.Column("state", sa.String(60), nullable=False),
        sa.Column("step", sa.Integer(), nullable=True),
        sa.Column("round", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("submitted_by", ID, nullable=True),
        sa.Column("entered_at", WHEN, nullable=False),
        sa.Column("started_at", WHEN, nullable=False),
        sa.Column("ended_at", WHEN, nullable=True),
        sa.Column("version", sa.Integer(), nullable=False, server_default="1"),
        sa.PrimaryKeyConstraint("id", name="pk_formloom_process_instances"),
        sa.ForeignKeyConstraint(["definition_version"], ["formloom_definition_versions.id"],
                                ondelete="SET NULL", name="fk_formloom_process_instances_definition_version"),
        sa.ForeignKeyConstraint(["submitted_by"], ["formloom_users.id"], ondelete="SET NULL",
                                name="fk_formloom_process_instances_submitted_by"),
    )
    op.create_index("ix_formloom_process_instances_record", "formloom_process_instances",
                    ["app", "form", "record_id", "kind"])
    op.create_table(
        "formloom_tasks",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("instance_id", ID, nullable=False),
        sa.Column("app", sa.String(40), nullable=False),
        sa.Column("form", sa.String(40), nullable=False),
        sa.Column("record_id", sa.BigInteger(), nullable=False),
        sa.Column("step", sa.String(40), nullable=False),
        sa.Column("step_index", sa.Integer(), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("assignee_id", ID, nullable=False),
        sa.Column("on_behalf_of", ID, nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("decided_at", WHEN, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_formloom_tasks"),
        sa.ForeignKeyConstraint(["instance_id"], ["formloom_process_instances.id"], ondelete="CASCADE",
                                name="fk_formloom_tasks_instance_id"),
        sa.ForeignKeyConstraint(["assignee_id"], ["formloom_users.id"], ondelete="CASCADE",
                                name="fk_formloom_tasks_assignee_id"),
        sa.ForeignKeyConstraint(["on_behalf_of"], ["formloom_users.id"], ondelete="SET NULL",
                                name="fk_formloom_tasks_on_behalf_of"),
    )
    op.create_index("ix_formloom_tasks_assignee", "formloom_tasks", ["assignee_id", "status"])
    op.create_index("ix_formloom_tasks_instance", "formloom_tasks", ["instance_id", "round"])
    op.create_table(
        "formloom_jobs",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("app", sa.String(40), nullable=True),
        sa.Column("form", sa.String(40), nullable=True),
        sa.Column("record_id", sa.BigInteger(), nullable=True),
        sa.Column("instance_id", ID, nullable=True),
        sa.Column("payload", JSON, nullable=False),
        sa.Column("due_at", WHEN, nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("max_attempts", sa.Integer(), nullable=False, server_default="5"),
        sa.Column("lease_owner", sa.String(80), nullable=True),
        sa.Column("lease_expires_at", WHEN, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("finished_at", WHEN, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_formloom_jobs"),
        sa.UniqueConstraint("key", name="uq_formloom_jobs_key"),
    )
    op.create_index("ix_formloom_jobs_due", "formloom_jobs", ["status", "due_at"])
    op.create_index("ix_formloom_jobs_instance_id", "formloom_jobs", ["instance_id"])
    op.create_table(
        "formloom_notifications",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("user_id", ID, nullable=False),
        sa.Column("app", sa.String(40), nullable=True),
        sa.Column("form", sa.String(40), nullable=True),
        sa.Column("record_id", sa.BigInteger(), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("key", sa.String(240), nullable=True),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("read_at", WHEN, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_formloom_notifications"),
        sa.UniqueConstraint("key", name="uq_formloom_notifications_key"),
        sa.ForeignKeyConstraint(["user_id"], ["formloom_users.id"], ondelete="CASCADE",
                                name="fk_formloom_notifications_user_id"),
    )
    op.create_index("ix_formloom_notifications_user", "formloom_notifications", ["user_id", "read_at"])


def downgrade() -> None:
    op.drop_table("formloom_notifications")
    op.drop_table("formloom_jobs")
    op.drop_table("formloom_tasks")
    op.drop_table("formloom_process_instances")
