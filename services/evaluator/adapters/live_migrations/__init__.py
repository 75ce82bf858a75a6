"""Alembic migrations of the evaluator's SQL tables (live state)."""

from __future__ import annotations

from pathlib import Path

#: Directory holding env.py and versions/ (the Alembic script_location).
MIGRATIONS_DIR = Path(__file__).resolve().parent
#: Alembic's version table of the evaluator's tables.
VERSION_TABLE = "evaluator_alembic_version"
