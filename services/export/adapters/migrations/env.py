"""Alembic environment of the export store (see libs.sqlstore.migrations)."""

from __future__ import annotations

from libs.sqlstore import run_alembic_env
from services.export.adapters.migrations import VERSION_TABLE
from services.export.adapters.tables import metadata

run_alembic_env(metadata, VERSION_TABLE, "SEGMENTS_EXPORT_DATABASE_URL")
