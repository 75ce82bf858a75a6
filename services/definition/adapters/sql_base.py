"""Shared plumbing of the SQL transaction classes."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection


class SqlBase:
    """A connection inside an open transaction, and the dialect it speaks."""

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn
        self.dialect = conn.dialect.name

    def insert_ignoring_conflicts(self, table: sa.Table, rows: list[dict[str, Any]]) -> Any:
        """INSERT ... ON CONFLICT DO NOTHING on either backend."""
        if self.dialect == "postgresql":
            return postgresql.insert(table).values(rows).on_conflict_do_nothing()
        return sqlite.insert(table).values(rows).on_conflict_do_nothing()
