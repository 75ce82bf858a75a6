"""Alembic migrations of the export store (shipped as a package in the wheel)."""

from __future__ import annotations

from pathlib import Path

#: Directory holding env.py and versions/ (the Alembic script_location).
MIGRATIONS_DIR = Path(__file__).resolve().parent
#: Alembic's version table, apart from other services' in a shared database.
VERSION_TABLE = "export_alembic_version"
