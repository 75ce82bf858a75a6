"""Alembic migrations of the audit store."""

from __future__ import annotations

from pathlib import Path

MIGRATIONS_DIR = Path(__file__).resolve().parent
VERSION_TABLE = "audit_alembic_version"
