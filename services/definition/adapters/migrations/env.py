"""Alembic environment of the definition store (see libs.sqlstore.migrations)."""

from __future__ import annotations

from libs.sqlstore import run_alembic_env
from services.definition.adapters.migrations import VERSION_TABLE
from services.definition.adapters.tables import metadata

run_alembic_env(metadata, VERSION_TABLE, "SEGMENTS_DATABASE_URL")
