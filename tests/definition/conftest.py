"""Fixtures of the definition tests: the service in-process on an ephemeral port, over
SQLite (a file in tmp) and over PostgreSQL (a database of its own per test session)."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import replace
from pathlib import Path

import pytest

from libs.common.config import Config
from libs.common.server import RunningServer
from segments.v1 import definition_service_pb2_grpc as pb_grpc
from services.definition.service import DefinitionService
from tests.support.auth import ADMIN_KEY, authorized_channel, create_project, seed_people
from tests.support.postgres import temporary_database

from .helpers import Backend, Stub


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
async def backend(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Backend]:
    directory: Path = tmp_path_factory.mktemp(f"definition-{request.param}")
    async with AsyncExitStack() as stack:
        if request.param == "sqlite":
            url = f"sqlite+aiosqlite:///{directory / 'definitions.sqlite3'}"
        else:
            url = await stack.enter_async_context(temporary_database())
        # the audit records go to the same database (its own table)
        config = replace(Config(), data_dir=directory, database_url=url, shutdown_grace_seconds=1.0)
        service = DefinitionService(
            url, bootstrap_admin_key=ADMIN_KEY, audit_url=config.service_database_url("audit")
        )
        server = RunningServer([service], config, host="127.0.0.1", port=0)
        await server.start()
        await seed_people(service.store)
        channel = authorized_channel(server.address)
        try:
            yield Backend(
                str(request.param),
                service,
                pb_grpc.SegmentDefinitionServiceStub(channel),
                server.address,
                channel,
            )
        finally:
            await channel.close(None)
            await server.stop(grace=1.0)


@pytest.fixture
def stub(backend: Backend) -> Stub:
    return backend.stub


@pytest.fixture
async def project(backend: Backend) -> str:
    """A fresh project per test (created): tests never see each other's segments."""
    project_id = f"p{secrets.token_hex(6)}"
    await create_project(backend.channel, project_id)
    return project_id
