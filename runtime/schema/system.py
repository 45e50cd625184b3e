"""Formloom's own tables. Alembic revisions in `migrations/` create them; this is their shape."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
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
    Column("name", String(255), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("content_type", String(255), nullable=False),
    Column("checksum", String(64), nullable=False, index=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("created_by", ForeignKey("formloom_users.id"), nullable=True),
)
