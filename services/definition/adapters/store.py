"""The SQL definition store: engine, migrations and transactions, on PostgreSQL (asyncpg) or
an embedded SQLite file (aiosqlite) that behaves the same.

SQLite specifics: foreign keys are switched on, the journal is WAL, and every transaction
starts with BEGIN IMMEDIATE so that concurrent writers queue (busy timeout) instead of
failing on a lock upgrade; one writer at a time gives the same outcomes as PostgreSQL's row
locks and unique indexes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from libs.common.errors import Aborted, Unavailable
from services.definition.adapters.migrations import MIGRATIONS_DIR
from services.definition.adapters.sql_listing import ListingSql
from services.definition.adapters.sql_segments import SegmentSql

#: PostgreSQL SQLSTATEs meaning "a concurrent transaction won; retry": serialization
#: failure and deadlock.
_RETRYABLE_SQLSTATES = frozenset({"40001", "40P01"})


class SqlTransaction(SegmentSql, ListingSql):
    """Every store operation, inside one database transaction (see domain.ports)."""


def _sqlite_setup(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def _upgrade(connection: Connection) -> None:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, "head")


class SqlStore:
    """Opens the database named by an SQLAlchemy async URL and hands out transactions."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._engine: AsyncEngine | None = None

    @property
    def engine(self) -> AsyncEngine:
        if self._engine is None:
            raise RuntimeError("the definition store is not open")
        return self._engine

    async def open(self) -> None:
        """Creates the engine and migrates the schema to the latest revision."""
        url = make_url(self.url)
        if url.get_backend_name() == "sqlite":
            if url.database and url.database != ":memory:":
                Path(url.database).parent.mkdir(parents=True, exist_ok=True)
            engine = create_async_engine(url, connect_args={"timeout": 30})
            _sqlite_setup(engine)
        else:
            engine = create_async_engine(url, pool_size=10, max_overflow=10, pool_pre_ping=True)
        try:
            async with engine.begin() as conn:
                await conn.run_sync(_upgrade)
        except BaseException:
            await engine.dispose()
            raise
        self._engine = engine

    async def close(self) -> None:
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[SqlTransaction]:
        """One transaction: committed when the block ends, rolled back on any exception."""
        try:
            async with self.engine.begin() as conn:
                yield SqlTransaction(conn)
        except OperationalError as exc:
            if "locked" in str(exc.orig) or "busy" in str(exc.orig):
                raise Aborted("the store is busy with a concurrent change; retry") from exc
            raise Unavailable("the definition store cannot be reached") from exc
        except DBAPIError as exc:
            if getattr(exc.orig, "sqlstate", None) in _RETRYABLE_SQLSTATES:
                raise Aborted("a concurrent change conflicted with this one; retry") from exc
            raise
