"""Fixtures of the reporting tests: definition + evaluator on chDB, and a reporting process
on a SQLite run log (tests of several processes add their own)."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import pytest

from libs.clickhouse.chdb_adapter import ChdbEngine
from libs.common.config import Config
from libs.common.peers import configure_peers
from services.evaluator.domain.clock import ManualClock
from tests.evaluator.conftest import chdb_engine, chdb_http  # noqa: F401 - fixtures
from tests.evaluator.grpc_stack import Stack, running_stack
from tests.support.auth import ADMIN_KEY
from tests.support.chdb_http import ChdbHttpServer

from .stack import Reporting, running_reporting

#: where the clock stands unless a test moves it
NOW = datetime(2026, 3, 20, 12, tzinfo=UTC)


@dataclass
class Suite:
    base: Stack
    reporting: Reporting
    clock: ManualClock
    store_url: str


@pytest.fixture(scope="module")
async def suite(
    tmp_path_factory: pytest.TempPathFactory,
    chdb_engine: ChdbEngine,  # noqa: F811
    chdb_http: ChdbHttpServer,  # noqa: F811
) -> AsyncIterator[Suite]:
    data_dir = tmp_path_factory.mktemp("reporting")
    clock = ManualClock(NOW)
    url = f"sqlite+aiosqlite:///{data_dir / 'reporting.sqlite3'}"
    async with (
        running_stack("chdb", data_dir, chdb_engine, chdb_http, clock=clock) as base,
        running_reporting(base, url, clock) as reporting,
    ):
        yield Suite(base, reporting, clock, url)


@pytest.fixture(autouse=True)
def service_key() -> None:
    """Peer calls outside a caller's call carry the service key (a process-wide setting that
    another module's server may have reset)."""
    configure_peers(replace(Config(), service_key=ADMIN_KEY))


@pytest.fixture
def s(suite: Suite) -> Suite:
    """The suite with its clock at NOW and no failures scripted."""
    suite.clock.set(NOW)
    suite.reporting.source.failures.clear()
    return suite


def new_project_id() -> str:
    return f"r{secrets.token_hex(6)}"
