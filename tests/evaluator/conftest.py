"""Fixtures for evaluator tests: a migrated ClickHouse database per test, on the embedded chDB
engine and on clickhouse-connect over HTTP (chDB served through ClickHouse's HTTP interface)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from libs.clickhouse.chdb_adapter import ChdbClickHouse, ChdbEngine
from libs.clickhouse.http_adapter import HttpClickHouse
from libs.clickhouse.port import ClickHouse
from services.evaluator.adapters.schema import migrate
from tests.support.chdb_http import ChdbHttpServer

TEST_MEMORY_BYTES = 2 * 1024**3


@pytest.fixture(scope="session")
def chdb_engine(tmp_path_factory: pytest.TempPathFactory) -> ChdbEngine:
    return ChdbEngine.for_path(Path(tmp_path_factory.mktemp("chdb")))


@pytest.fixture(scope="session")
def chdb_http(chdb_engine: ChdbEngine) -> Iterator[ChdbHttpServer]:
    server = ChdbHttpServer(chdb_engine).start()
    yield server
    server.stop()


async def open_executor(
    kind: str, engine: ChdbEngine, http: ChdbHttpServer, database: str
) -> ClickHouse:
    if kind == "chdb":
        return await ChdbClickHouse.open(engine.path, database, TEST_MEMORY_BYTES)
    return await HttpClickHouse.open(http.url, database, TEST_MEMORY_BYTES)


@pytest.fixture(params=["chdb", "http"])
async def ch(
    request: pytest.FixtureRequest, chdb_engine: ChdbEngine, chdb_http: ChdbHttpServer
) -> AsyncIterator[ClickHouse]:
    """A connected executor on a fresh, migrated database."""
    database = f"t_{uuid.uuid4().hex[:16]}"
    executor = await open_executor(str(request.param), chdb_engine, chdb_http, database)
    await migrate(executor)
    yield executor
    await executor.close()
