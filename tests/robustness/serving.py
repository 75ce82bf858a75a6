"""All four services in one process (`segments serve all`) on SQLite or PostgreSQL, for the
tests of precise answers to odd requests: a project, stubs of the definition service and the
evaluator, and helpers to assert on a call's status."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.rpc.error_details_pb2 import ErrorInfo

from libs.clickhouse.chdb_adapter import ChdbEngine
from libs.common.config import Config
from libs.common.server import RunningServer
from libs.common.status import call_status, field_violations
from segments.v1 import definition_model_pb2 as dm
from segments.v1 import definition_service_pb2 as dpb
from segments.v1 import definition_service_pb2_grpc as dpb_grpc
from segments.v1 import evaluator_service_pb2_grpc as epb_grpc
from segments.v1 import segment_pb2
from services.cli import all_in_one_config, build_services
from tests.support.auth import ADMIN_KEY, authorized_channel, create_project
from tests.support.postgres import temporary_database

PROJECT = "precise"


@dataclass
class Served:
    backend: str
    server: RunningServer
    channel: grpc.aio.Channel
    definitions: dpb_grpc.SegmentDefinitionServiceAsyncStub
    evaluator: epb_grpc.SegmentEvaluatorServiceAsyncStub

    @property
    def parent(self) -> str:
        return f"projects/{PROJECT}"

    async def create(self, segment_id: str, definition: dm.Definition, **fields: Any) -> str:
        """Creates a segment of the project; its resource name."""
        created = await self.definitions.CreateSegment(
            dpb.CreateSegmentRequest(
                parent=self.parent,
                segment_id=segment_id,
                segment=segment_pb2.Segment(
                    display_name=fields.pop("display_name", segment_id),
                    definition=definition,
                    **fields,
                ),
            )
        )
        return str(created.name)


@asynccontextmanager
async def serve_all(backend: str, directory: Path, **settings: Any) -> AsyncIterator[Served]:
    """`segments serve all` with its definition store on `backend` ("sqlite", "postgres")."""
    engine = ChdbEngine.for_path(directory.parent / "chdb")
    (directory / "chdb").symlink_to(engine.path, target_is_directory=True)
    async with AsyncExitStack() as stack:
        if backend == "sqlite":
            url = f"sqlite+aiosqlite:///{directory / 'definitions.sqlite3'}"
        else:
            url = await stack.enter_async_context(temporary_database())
        config = all_in_one_config(
            replace(
                Config(),
                data_dir=directory,
                database_url=url,
                clickhouse_database=f"pr_{uuid.uuid4().hex[:12]}",
                bootstrap_admin_key=ADMIN_KEY,
                service_key=ADMIN_KEY,
                shutdown_grace_seconds=1.0,
                **settings,
            ),
            "127.0.0.1",
            0,
        )
        server = RunningServer(build_services("all", config), config)
        await server.start()
        stack.push_async_callback(server.stop)
        channel = authorized_channel(server.address)
        stack.push_async_callback(channel.close, None)
        await create_project(channel, PROJECT)
        yield Served(
            backend,
            server,
            channel,
            dpb_grpc.SegmentDefinitionServiceStub(channel),
            epb_grpc.SegmentEvaluatorServiceStub(channel),
        )


@pytest.fixture(scope="module")
async def served(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Served]:
    """One server on SQLite for the module."""
    async with serve_all("sqlite", tmp_path_factory.mktemp("precise")) as s:
        yield s


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
async def served_both(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Served]:
    """One server per definition-store backend for the module."""
    backend = str(request.param)
    async with serve_all(backend, tmp_path_factory.mktemp(f"precise-{backend}")) as s:
        yield s


async def refused(call: Awaitable[Any], code: grpc.StatusCode) -> grpc.aio.AioRpcError:
    """Awaits `call`, which must fail with `code` and carry an ErrorInfo; the error."""
    try:
        await call
    except grpc.aio.AioRpcError as exc:
        assert exc.code() == code, (exc.code(), exc.details())
        status = call_status(exc)
        assert status is not None
        assert any(d.Unpack(ErrorInfo()) for d in status.details), status
        return exc
    raise AssertionError(f"the call succeeded; expected {code}")


async def invalid_fields(call: Awaitable[Any]) -> dict[str, str]:
    """Awaits `call`, which must fail with INVALID_ARGUMENT; its field violations."""
    exc = await refused(call, grpc.StatusCode.INVALID_ARGUMENT)
    return {v.field: v.description for v in field_violations(exc)}


def did(event_name: str, window: dm.TimeWindow | None = None) -> dm.Node:
    return dm.Node(
        did_event=dm.DidEventCondition(
            event=dm.EventSpec(event_name=event_name),
            window=window or dm.TimeWindow(all_time=dm.AllTime()),
        )
    )


def behaviour(root: dm.Node, *, include: tuple[str, ...] = ()) -> dm.Definition:
    return dm.Definition(
        past_behavior=dm.PastBehaviorQuery(root=root, included_segments=list(include))
    )
