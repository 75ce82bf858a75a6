"""A PostgreSQL database of its own for a test session, on the shared server at 127.0.0.1:5432
(`SEGMENTS_TEST_PG_DSN` to point elsewhere), dropped afterwards."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

PG_ADMIN_DSN = os.environ.get("SEGMENTS_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432")


@asynccontextmanager
async def temporary_database() -> AsyncIterator[str]:
    """The SQLAlchemy async URL of a new database with a random name."""
    database = f"segments_test_{secrets.token_hex(6)}"
    admin = await asyncpg.connect(f"{PG_ADMIN_DSN}/postgres")
    try:
        await admin.execute(f'CREATE DATABASE "{database}"')
    finally:
        await admin.close()
    try:
        yield f"postgresql+asyncpg://{PG_ADMIN_DSN.split('://', 1)[1]}/{database}"
    finally:
        admin = await asyncpg.connect(f"{PG_ADMIN_DSN}/postgres")
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        finally:
            await admin.close()
