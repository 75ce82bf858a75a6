"""Alembic environment of the reporting store (see libs.sqlstore.migrations)."""

from __future__ import annotations

from libs.sqlstore import run_alembic_env
from services.reporting.adapters.migrations import VERSION_TABLE
from services.reporting.adapters.tables import metadata

run_alembic_env(metadata, VERSION_TABLE, "SEGMENTS_REPORTING_DATABASE_URL")
