"""The SQL definition store: PostgreSQL (asyncpg) or an embedded SQLite file (aiosqlite) that
behaves the same (engine, migrations and error mapping: `libs.sqlstore`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncEngine

from libs.sqlstore import SqlDatabase
from services.definition.adapters.migrations import MIGRATIONS_DIR
from services.definition.adapters.sql_keys import KeySql
from services.definition.adapters.sql_listing import ListingSql
from services.definition.adapters.sql_live import LiveChangeSql
from services.definition.adapters.sql_projects import ProjectSql
from services.definition.adapters.sql_segments import SegmentSql


class SqlTransaction(ProjectSql, SegmentSql, ListingSql, KeySql, LiveChangeSql):
    """Every store operation, inside one database transaction (see domain.ports)."""


class SqlStore:
    """Opens the database named by an SQLAlchemy async URL and hands out transactions."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.database = SqlDatabase(url, MIGRATIONS_DIR, label="the definition store")

    @property
    def engine(self) -> AsyncEngine:
        return self.database.engine

    async def open(self) -> None:
        """Creates the engine and migrates the schema to the latest revision."""
        await self.database.open()

    async def close(self) -> None:
        await self.database.close()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[SqlTransaction]:
        """One transaction: committed when the block ends, rolled back on any exception."""
        async with self.database.begin() as conn:
            yield SqlTransaction(conn)
