"""Fixtures of the export tests: the whole suite through gRPC, the export job store on SQLite
with the evaluator on chDB, and on PostgreSQL with the evaluator on clickhouse-connect over
HTTP (so every store runs for real)."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from libs.clickhouse.chdb_adapter import ChdbEngine
from libs.common.config import Config
from libs.common.peers import configure_peers
from tests.evaluator.conftest import chdb_engine, chdb_http  # noqa: F401 - fixtures
from tests.evaluator.grpc_stack import running_stack
from tests.support.auth import ADMIN_KEY
from tests.support.chdb_http import ChdbHttpServer

from .stack import ExportStack, job_store_url, new_project, running_export

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


@pytest.fixture(autouse=True)
def service_key() -> None:
    """The export workers' peer calls carry the service key: a process-wide setting that a
    server started by another module's tests (in the same test process) may have reset."""
    configure_peers(replace(Config(), service_key=ADMIN_KEY))


@pytest.fixture
async def project(stack: ExportStack) -> str:
    """A fresh project per test (created: nothing creates a project on use)."""
    project_id = f"x{secrets.token_hex(6)}"
    await new_project(stack, project_id)
    return project_id
