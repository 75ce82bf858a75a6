"""Alembic environment of the evaluator's SQL tables (see libs.sqlstore.migrations)."""

from __future__ import annotations

from libs.sqlstore import run_alembic_env
from services.evaluator.adapters.live_migrations import VERSION_TABLE
from services.evaluator.adapters.live_tables import metadata

run_alembic_env(metadata, VERSION_TABLE, "SEGMENTS_EVALUATOR_DATABASE_URL")
