"""Alembic environment of the definition store.

The service runs migrations in-process (`services.definition.adapters.store`): it passes an
open connection in `config.attributes["connection"]`. Run from the command line, the URL
comes from `sqlalchemy.url` or SEGMENTS_DATABASE_URL and an async engine is used.
"""

from __future__ import annotations

import asyncio
import os

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from services.definition.adapters.migrations import VERSION_TABLE
from services.definition.adapters.tables import metadata

config = context.config


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table=VERSION_TABLE,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_async(url: str) -> None:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_run)
    finally:
        await engine.dispose()


def _main() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = config.get_main_option("sqlalchemy.url") or os.environ.get("SEGMENTS_DATABASE_URL")
    if not url:
        raise RuntimeError("set sqlalchemy.url or SEGMENTS_DATABASE_URL")
    asyncio.run(_run_async(url))


if context.is_offline_mode():
    raise RuntimeError("offline (SQL script) mode is not supported; run against a database")
_main()
