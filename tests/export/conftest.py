"""Fixtures of the export tests: the whole suite through gRPC, the export job store on SQLite
with the evaluator on chDB, and on PostgreSQL with the evaluator on clickhouse-connect over
HTTP (so every store runs for real)."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import pytest

from libs.clickhouse.chdb_adapter import ChdbEngine
from tests.evaluator.conftest import chdb_engine, chdb_http  # noqa: F401 - fixtures
from tests.evaluator.grpc_stack import running_stack
from tests.support.chdb_http import ChdbHttpServer

from .stack import ExportStack, job_store_url, running_export

BACKENDS = [("sqlite", "chdb"), ("postgres", "http")]


@pytest.fixture(scope="module", params=BACKENDS, ids=["sqlite-chdb", "postgres-http"])
async def stack(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    chdb_engine: ChdbEngine,  # noqa: F811
    chdb_http: ChdbHttpServer,  # noqa: F811
) -> AsyncIterator[ExportStack]:
    store, clickhouse = request.param
    data_dir = tmp_path_factory.mktemp(f"export_{store}")
    async with (
        running_stack(clickhouse, data_dir, chdb_engine, chdb_http) as base,
        job_store_url(store, data_dir) as url,
        running_export(base, url, data_dir) as running,
    ):
        yield running


@pytest.fixture
def project() -> str:
    """A fresh project per test."""
    return f"x{secrets.token_hex(6)}"
