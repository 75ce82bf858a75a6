"""The body of every service's Alembic `env.py`.

A service runs its migrations in-process (`SqlDatabase.open`), passing an open connection in
`config.attributes["connection"]`. Run from the command line (`alembic -c ...`), the URL comes
from `sqlalchemy.url` or the environment variable the service names, and an async engine is
used.
"""

from __future__ import annotations

import asyncio
import os

import sqlalchemy as sa
from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine


def _run(connection: Connection, metadata: sa.MetaData, version_table: str) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table=version_table,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_async(url: str, metadata: sa.MetaData, version_table: str) -> None:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_run, metadata, version_table)
    finally:
        await engine.dispose()


def run_alembic_env(metadata: sa.MetaData, version_table: str, url_variable: str) -> None:
    """Runs the migrations of a service whose tables are `metadata`, recorded in
    `version_table` (named so that services sharing one database never clash)."""
    if context.is_offline_mode():
        raise RuntimeError("offline (SQL script) mode is not supported; run against a database")
    config = context.config
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection, metadata, version_table)
        return
    url = config.get_main_option("sqlalchemy.url") or os.environ.get(url_variable)
    if not url:
        raise RuntimeError(f"set sqlalchemy.url or {url_variable}")
    asyncio.run(_run_async(url, metadata, version_table))
