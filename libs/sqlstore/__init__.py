"""Transactional SQL stores of the services: PostgreSQL (asyncpg) or an embedded SQLite file
(aiosqlite) that behaves the same, each with its own Alembic migrations and version table.

`SqlDatabase` opens an SQLAlchemy async URL, migrates it to the latest revision and hands out
transactions with store failures mapped to domain errors. `run_alembic_env` is the body of
every service's migrations `env.py`.
"""

from libs.sqlstore.database import SqlDatabase, insert_ignoring_conflicts, sqlite_url
from libs.sqlstore.migrations import run_alembic_env
from libs.sqlstore.types import UtcDateTime

__all__ = [
    "SqlDatabase",
    "UtcDateTime",
    "insert_ignoring_conflicts",
    "run_alembic_env",
    "sqlite_url",
]
