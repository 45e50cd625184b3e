"""Formloom's own tables. Alembic revisions in `migrations/` create them; this is their shape."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    true,
)

from runtime.schema.types import UTCDateTime, json_type

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s",
    "pk": "pk_%(table_name)s",
}
ALEMBIC_VERSION_TABLE = "formloom_alembic_version"

system_metadata = MetaData(naming_convention=NAMING)
ID = BigInteger().with_variant(Integer, "sqlite")

users = Table(
    "formloom_users",
    system_metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("username", String(150), nullable=False, unique=True),
    Column("display_name", String(200), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("password_hash", String(255), nullable=True),
    Column("department_id", ID, ForeignKey("formloom_departments.id", ondelete="SET NULL"), nullable=True),
    Column("email", String(254), nullable=True),
    Column("language", String(8), nullable=False, server_default="zh"),
    Column("active", Boolean, nullable=False, server_default=true()),
)

departments = Table(
    "formloom_departments",
    system_metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("key", String(60), nullable=False, unique=True),
    Column("name", String(200), nullable=False),
    Column("parent_id", ID, ForeignKey("formloom_departments.id", ondelete="RESTRICT"), nullable=True),
    Column(
        "manager_id", ID, ForeignKey("formloom_users.id", ondelete="SET NULL", use_alter=True), nullable=True
    ),
)

user_roles = Table(
    "formloom_user_roles",
    system_metadata,
    Column("user_id", ID, ForeignKey("formloom_users.id", ondelete="CASCADE"), primary_key=True),
    Column("role", String(60), primary_key=True),
)

tokens = Table(
    "formloom_tokens",
    system_metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("user_id", ID, ForeignKey("formloom_users.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("name", String(100), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=True),
    Column("revoked_at", UTCDateTime(), nullable=True),
)

sessions = Table(
    "formloom_sessions",
    system_metadata,
    Column("id", String(64), primary_key=True),  # SHA-256 of the cookie value
    Column("user_id", ID, ForeignKey("formloom_users.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("csrf_token", String(64), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
)

# Sign-in attempts counted per scope (pair, pair_hour, user, address) and window; see
# runtime/identity/throttle.py. `username` or `address` is '' where the scope has none.
sign_in_counts = Table(
    "formloom_sign_in_counts",
    system_metadata,
    Column("scope", String(10), primary_key=True),
    Column("username", String(150), primary_key=True),
    Column("address", String(64), primary_key=True),
    Column("window_start", UTCDateTime(), primary_key=True),
    Column("failures", Integer, nullable=False),
    Index("ix_formloom_sign_in_counts_window_start", "window_start"),
)

audit = Table(
    "formloom_audit",
    system_metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("app", String(40), nullable=False),
    Column("form", String(40), nullable=False),
    Column("record_id", BigInteger, nullable=False),
    Column("action", String(20), nullable=False),
    Column("channel", String(20), nullable=False),
    Column("user_id", ID, nullable=True),
    Column("at", UTCDateTime(), nullable=False),
    Column("changes", json_type(), nullable=False),
    Column("request_id", String(64), nullable=True),  # X-Request-ID of the change's request
    Index("ix_formloom_audit_record", "app", "form", "record_id"),
)

apps = Table(
    "formloom_apps",
    system_metadata,
    Column("key", String(40), primary_key=True),
    Column("label", json_type(), nullable=False),
    Column("version", String(40), nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
)

definition_versions = Table(
    "formloom_definition_versions",
    system_metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("app", String(40), nullable=False, index=True),
    Column("version", String(40), nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("definition", json_type(), nullable=False),
    Column("plan", json_type(), nullable=True),
    Column("author", String(150), nullable=True),
    Column("published_at", UTCDateTime(), nullable=False),
)

counters = Table(
    "formloom_counters",
    system_metadata,
    Column("app", String(40), primary_key=True),
    Column("form", String(40), primary_key=True),
    Column("field", String(40), primary_key=True),
    Column("period", String(60), primary_key=True),
    Column("value", BigInteger, nullable=False),
)

files = Table(
    "formloom_files",
    system_metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    # What the API names a file by: random, so files cannot be found by counting (the
    # integer id stays internal; attachment columns refer to it).
    Column("public_id", String(32), nullable=False, unique=True, index=True),
    Column("name", String(255), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("content_type", String(255), nullable=False),
    Column("checksum", String(64), nullable=False, index=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("created_by", ForeignKey("formloom_users.id"), nullable=True),
)


# -- the process engine ---------------------------------------------------------------

process_instances = Table(
    "formloom_process_instances",
    system_metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("app", String(40), nullable=False),
    Column("kind", String(20), nullable=False),  # workflow | approval
    Column("definition", String(40), nullable=False),
    Column(
        "definition_version",
        ID,
        ForeignKey("formloom_definition_versions.id", ondelete="SET NULL"),
        nullable=True,
    ),
    Column("form", String(40), nullable=False),
    Column("record_id", BigInteger, nullable=False),
    Column("state", String(60), nullable=False),
    Column("step", Integer, nullable=True),
    Column("round", Integer, nullable=False, server_default="0"),
    Column("submitted_by", ID, ForeignKey("formloom_users.id", ondelete="SET NULL"), nullable=True),
    Column("entered_at", UTCDateTime(), nullable=False),
    Column("started_at", UTCDateTime(), nullable=False),
    Column("ended_at", UTCDateTime(), nullable=True),
    Column("version", Integer, nullable=False, server_default="1"),
    # an approved approval guards its material fields until the record is released
    Column("released_at", UTCDateTime(), nullable=True),
    Column("nudged_at", UTCDateTime(), nullable=True),  # the submitter's last nudge
    Index("ix_formloom_process_instances_record", "app", "form", "record_id", "kind"),
)

tasks = Table(
    "formloom_tasks",
    system_metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column(
        "instance_id", ID, ForeignKey("formloom_process_instances.id", ondelete="CASCADE"), nullable=False
    ),
    Column("app", String(40), nullable=False),
    Column("form", String(40), nullable=False),
    Column("record_id", BigInteger, nullable=False),
    Column("step", String(40), nullable=False),
    Column("step_index", Integer, nullable=False),
    Column("round", Integer, nullable=False),
    Column("assignee_id", ID, ForeignKey("formloom_users.id", ondelete="CASCADE"), nullable=False),
    Column("on_behalf_of", ID, ForeignKey("formloom_users.id", ondelete="SET NULL"), nullable=True),
    Column("kind", String(20), nullable=False, server_default="approve"),  # approve | cc | consult
    Column("status", String(20), nullable=False),
    Column("comment", Text, nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("decided_at", UTCDateTime(), nullable=True),
    Index("ix_formloom_tasks_assignee", "assignee_id", "status"),
    Index("ix_formloom_tasks_instance", "instance_id", "round"),
)

jobs = Table(
    "formloom_jobs",
    system_metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("kind", String(20), nullable=False),
    Column("key", String(200), nullable=False, unique=True),
    Column("app", String(40), nullable=True),
    Column("form", String(40), nullable=True),
    Column("record_id", BigInteger, nullable=True),
    Column("instance_id", ID, nullable=True, index=True),
    Column("payload", json_type(), nullable=False),
    Column("due_at", UTCDateTime(), nullable=False),
    Column("status", String(12), nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("max_attempts", Integer, nullable=False, server_default="5"),
    Column("lease_owner", String(80), nullable=True),
    Column("lease_expires_at", UTCDateTime(), nullable=True),
    Column("last_error", Text, nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("finished_at", UTCDateTime(), nullable=True),
    Column("request_id", String(64), nullable=True),  # X-Request-ID of the request that queued it
    Index("ix_formloom_jobs_due", "status", "due_at"),
)

notifications = Table(
    "formloom_notifications",
    system_metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("user_id", ID, ForeignKey("formloom_users.id", ondelete="CASCADE"), nullable=False),
    Column("app", String(40), nullable=True),
    Column("form", String(40), nullable=True),
    Column("record_id", BigInteger, nullable=True),
    Column("message", Text, nullable=False),  # as rendered for the recipient when sent
    Column("template", json_type(), nullable=True),  # {zh, en}: rendered in the reader's language
    Column("params", json_type(), nullable=True),  # the values the template reads
    Column("task_id", ID, nullable=True, index=True),  # read once this task is done
    Column("key", String(240), nullable=True, unique=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("read_at", UTCDateTime(), nullable=True),
    Index("ix_formloom_notifications_user", "user_id", "read_at"),
)

saved_views = Table(
    "formloom_saved_views",
    system_metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("user_id", ID, ForeignKey("formloom_users.id", ondelete="CASCADE"), nullable=False),
    Column("app", String(40), nullable=False),
    Column("form", String(40), nullable=False),
    Column("name", String(100), nullable=False),
    Column("query", Text, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Index("uq_formloom_saved_views_name", "user_id", "app", "form", "name", unique=True),
)

# -- the working calendar ------------------------------------------------------------------

workdays = Table(
    "formloom_workdays",
    system_metadata,
    Column("app", String(40), primary_key=True),
    Column("day", Date, primary_key=True),
    Column("n", Integer, nullable=False),  # the working day's number, counted from CALENDAR_FIRST
    Index("ix_formloom_workdays_app_n", "app", "n", unique=True),
)

calendars = Table(
    "formloom_calendars",
    system_metadata,
    Column("app", String(40), primary_key=True),
    Column("digest", String(64), nullable=False),  # of the calendar `workdays` holds for the app
)

# -- a staging database's movable clock ----------------------------------------------------

clock = Table(
    "formloom_clock",
    system_metadata,
    # one row, present only in a database published with `--allow-clock`: then, and only
    # then, `formloom worker --at TIME` may run due work as of a later time (docs/processes.md)
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("allowed_at", UTCDateTime(), nullable=False),
    Column("allowed_by", String(150), nullable=True),
    Column("moved_to", UTCDateTime(), nullable=True),  # the latest time the worker was moved to
)
