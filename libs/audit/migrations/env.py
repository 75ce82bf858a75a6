"""Alembic environment of the audit store (see libs.sqlstore.migrations)."""

from __future__ import annotations

from libs.audit.migrations import VERSION_TABLE
from libs.audit.tables import metadata
from libs.sqlstore import run_alembic_env

run_alembic_env(metadata, VERSION_TABLE, "SEGMENTS_AUDIT_DATABASE_URL")
