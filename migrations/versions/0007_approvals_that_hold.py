"""Approvals that hold: released approvals, nudges, task kinds and notifications rendered when read.

- `formloom_process_instances.released_at`: an approved approval guards its material
  fields until the record is released (a transition into a `released_in` state, or the
  approval starting again); `nudged_at` rate-limits the submitter's nudges.
- `formloom_tasks.kind`: `approve` (a decision), `cc` (a read-only copy) or `consult`
  (an approver added before oneself, whose decision comes first).
- `formloom_notifications.template`, `params` and `task_id`: the message's template and
  values, rendered in the reader's language when read, and the task it is about (read
  once the task is done).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
WHEN = sa.DateTime(timezone=True)
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("formloom_process_instances") as batch:
        batch.add_column(sa.Column("released_at", WHEN, nullable=True))
        batch.add_column(sa.Column("nudged_at", WHEN, nullable=True))
    with op.batch_alter_table("formloom_tasks") as batch:
        batch.add_column(sa.Column("kind", sa.String(20), nullable=False, server_default="approve"))
    with op.batch_alter_table("formloom_notifications") as batch:
        batch.add_column(sa.Column("template", JSON, nullable=True))
        batch.add_column(sa.Column("params", JSON, nullable=True))
        batch.add_column(sa.Column("task_id", ID, nullable=True))
    op.create_index("ix_formloom_notifications_task_id", "formloom_notifications", ["task_id"])


def downgrade() -> None:
    op.drop_index("ix_formloom_notifications_task_id", "formloom_notifications")
    with op.batch_alter_table("formloom_notifications") as batch:
        batch.drop_column("task_id")
        batch.drop_column("params")
        batch.drop_column("template")
    with op.batch_alter_table("formloom_tasks") as batch:
        batch.drop_column("kind")
    with op.batch_alter_table("formloom_process_instances") as batch:
        batch.drop_column("nudged_at")
        batch.drop_column("released_at")
