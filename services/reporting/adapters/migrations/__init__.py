"""Alembic migrations of the reporting service's SQL tables (the run log)."""

from __future__ import annotations

from pathlib import Path

#: Directory holding env.py and versions/ (the Alembic script_location).
MIGRATIONS_DIR = Path(__file__).resolve().parent
#: Alembic's version table, apart from other services' in a shared database.
VERSION_TABLE = "reporting_alembic_version"
