"""Fixtures of the live-segment tests: the definition and evaluator services over gRPC, the
evaluator's live tables on SQLite (a file in tmp) and on PostgreSQL (a fresh database per
test), its live engine on a clock the test moves."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from libs.clickhouse.chdb_adapter import ChdbEngine
from services.evaluator.domain.clock import ManualClock
from tests.support.chdb_http import ChdbHttpServer
from tests.support.postgres import temporary_database

from ..grpc_stack import new_project, running_stack
from .helpers import Live

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite-chdb", "postgres-http"])
def backends(request: pytest.FixtureRequest) -> tuple[str, str]:
    """The pairs the live tests run on: live tables on SQLite with the embedded engine, and on
    PostgreSQL with clickhouse-connect over HTTP (so the live queries run on both adapters)."""
    sql, clickhouse = str(request.param).split("-")
    return sql, clickhouse


@pytest.fixture
async def sql_url(backends: tuple[str, str], tmp_path: Path) -> AsyncIterator[str]:
    """The URL of the evaluator's live tables, on each backend."""
    if backends[0] == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'evaluator.sqlite3'}"
        return
    async with temporary_database() as url:
        yield url


@pytest.fixture
async def live(
    backends: tuple[str, str],
    sql_url: str,
    tmp_path: Path,
    chdb_engine: ChdbEngine,
    chdb_http: ChdbHttpServer,
) -> AsyncIterator[Live]:
    clock = ManualClock(T0)
    async with running_stack(
        backends[1], tmp_path, chdb_engine, chdb_http, evaluator_url=sql_url, clock=clock
    ) as stack:
        project = f"p{secrets.token_hex(5)}"
        await new_project(stack, project)
        yield Live(stack, clock, project)
