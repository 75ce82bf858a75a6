"""Fixtures of the live-segment tests: the definition and evaluator services over gRPC, the
evaluator's live tables on SQLite (a file in tmp) and on PostgreSQL (a fresh database per
test), its live engine on a clock the test moves."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest

from libs.clickhouse.chdb_adapter import ChdbEngine
from services.evaluator.domain.clock import ManualClock
from tests.support.chdb_http import ChdbHttpServer

from ..grpc_stack import running_stack
from .helpers import Live

PG_ADMIN_DSN = os.environ.get("SEGMENTS_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432")
T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


async def fresh_postgres() -> tuple[str, str]:
    """(SQLAlchemy URL, database name) of a new, empty PostgreSQL database."""
    database = f"segments_live_{secrets.token_hex(6)}"
    admin = await asyncpg.connect(f"{PG_ADMIN_DSN}/postgres")
    try:
        await admin.execute(f'CREATE DATABASE "{database}"')
    finally:
        await admin.close()
    return f"postgresql+asyncpg://{PG_ADMIN_DSN.split('://', 1)[1]}/{database}", database


async def drop_postgres(database: str) -> None:
    admin = await asyncpg.connect(f"{PG_ADMIN_DSN}/postgres")
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture(params=["sqlite", "postgres"])
async def sql_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """The URL of the evaluator's live tables, on each backend."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'evaluator.sqlite3'}"
        return
    url, database = await fresh_postgres()
    try:
        yield url
    finally:
        await drop_postgres(database)


@pytest.fixture
async def live(
    sql_url: str, tmp_path: Path, chdb_engine: ChdbEngine, chdb_http: ChdbHttpServer
) -> AsyncIterator[Live]:
    clock = ManualClock(T0)
    async with running_stack(
        "chdb", tmp_path, chdb_engine, chdb_http, evaluator_url=sql_url, clock=clock
    ) as stack:
        yield Live(stack, clock, f"p{secrets.token_hex(5)}")
