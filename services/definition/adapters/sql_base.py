"""Shared plumbing of the SQL transaction classes."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from libs.sqlstore import insert_ignoring_conflicts


class SqlBase:
    """A connection inside an open transaction, and the dialect it speaks."""

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn
        self.dialect = conn.dialect.name

    def insert_ignoring_conflicts(self, table: sa.Table, rows: list[dict[str, Any]]) -> Any:
        """INSERT ... ON CONFLICT DO NOTHING on either backend."""
        return insert_ignoring_conflicts(self.dialect, table, rows)
