"""Alembic migrations of the definition store (shipped as a package in the wheel)."""

from __future__ import annotations

from pathlib import Path

#: Directory holding env.py and versions/ (the Alembic script_location).
MIGRATIONS_DIR = Path(__file__).resolve().parent
#: Alembic's version table, named so it cannot clash with another tool in the same database.
VERSION_TABLE = "definition_alembic_version"
