"""A running definition + evaluator pair for end-to-end tests over real gRPC, and builders.

Two in-process servers started with `libs.common.server.RunningServer` on port 0: the
definition service (SQLite in a temporary directory; admin key `tests.support.auth.ADMIN_KEY`)
and the evaluator, which resolves segments through the definition service's address and asks
it for every access decision. The stack's channels send the admin key; `new_project()` creates
a project (nothing else does).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.rpc.error_details_pb2 import ErrorInfo
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from libs.clickhouse.chdb_adapter import ChdbEngine
from libs.common.config import Config
from libs.common.errors import ERROR_DOMAIN
from libs.common.server import RunningServer
from libs.common.status import call_status, field_violations
from segments.v1 import definition_model_pb2 as dm
from segments.v1 import definition_service_pb2 as dpb
from segments.v1 import definition_service_pb2_grpc as dpb_grpc
from segments.v1 import evaluator_service_pb2 as pb
from segments.v1 import evaluator_service_pb2_grpc as pb_grpc
from segments.v1 import segment_pb2
from services.definition.service import DefinitionService
from services.evaluator.domain.clock import Clock, system_clock
from services.evaluator.service import EvaluatorService
from tests.support.auth import ADMIN_KEY, authorized_channel, create_project
from tests.support.chdb_http import ChdbHttpServer

from .support import stream

TIMEOUT = 30.0


@dataclass
class Stack:
    """The two running servers and a client stub for each."""

    definition_server: RunningServer
    evaluator_server: RunningServer
    definition_channel: grpc.aio.Channel
    evaluator_channel: grpc.aio.Channel
    definitions: dpb_grpc.SegmentDefinitionServiceAsyncStub
    evaluator: pb_grpc.SegmentEvaluatorServiceAsyncStub
    evaluator_service: EvaluatorService | None = None


def stack_fixture(label: str, **settings: Any) -> Any:
    """A module-scoped `stack` fixture: `running_stack` on chDB, then over HTTP (the module's
    tests run once on each), in a fresh directory named after `label`; `settings` as for
    `running_stack`. Use: `stack = stack_fixture("e2e")`."""

    @pytest.fixture(scope="module", params=["chdb", "http"], name="stack")
    async def fixture(
        request: pytest.FixtureRequest,
        tmp_path_factory: pytest.TempPathFactory,
        chdb_engine: ChdbEngine,
        chdb_http: ChdbHttpServer,
    ) -> AsyncIterator[Stack]:
        kind = str(request.param)
        data_dir = tmp_path_factory.mktemp(f"{label}_{kind}")
        async with running_stack(kind, data_dir, chdb_engine, chdb_http, **settings) as running:
            yield running

    return fixture


@asynccontextmanager
async def running_stack(
    kind: str,
    data_dir: Path,
    chdb_engine: ChdbEngine,
    chdb_http: ChdbHttpServer,
    *,
    evaluator_url: str | None = None,
    clock: Clock = system_clock,
    clickhouse_database: str | None = None,
    **settings: Any,
) -> AsyncIterator[Stack]:
    """Both servers on `kind` ("chdb": embedded, "http": clickhouse-connect over HTTP); the
    evaluator's SQL tables at `evaluator_url` (default: SQLite in `data_dir`), its live
    engine on `clock`; `settings` are further `Config` fields of both (for example
    `metrics_port=0`)."""
    # chDB opens one data path per process: point this config's chDB directory at the one
    # the worker already uses, and keep the data apart by database name.
    if not (data_dir / "chdb").exists():
        (data_dir / "chdb").symlink_to(chdb_engine.path, target_is_directory=True)
    config = Config(
        host="127.0.0.1",
        port=0,
        data_dir=data_dir,
        database_url=None,
        clickhouse_url=chdb_http.url if kind == "http" else None,
        clickhouse_database=clickhouse_database or f"e2e_{kind}_{uuid.uuid4().hex[:12]}",
        shutdown_grace_seconds=1.0,
        service_database_urls={"evaluator": evaluator_url} if evaluator_url else {},
        # the evaluator's background work (the live-segment feed, timers) calls the
        # definition service with this key
        service_key=ADMIN_KEY,
    )
    config = replace(config, **settings)
    definition_server = RunningServer(
        [
            DefinitionService(
                config.effective_database_url,
                bootstrap_admin_key=ADMIN_KEY,
                audit_url=config.service_database_url("audit"),
            )
        ],
        config,
        port=0,
    )
    await definition_server.start()
    try:
        evaluator_config = replace(config, definition_address=definition_server.address)
        evaluator_service = EvaluatorService(evaluator_config, clock=clock)
        evaluator_server = RunningServer([evaluator_service], evaluator_config, port=0)
        await evaluator_server.start()
        try:
            definition_channel = authorized_channel(definition_server.address)
            evaluator_channel = authorized_channel(evaluator_server.address)
            try:
                yield Stack(
                    definition_server,
                    evaluator_server,
                    definition_channel,
                    evaluator_channel,
                    dpb_grpc.SegmentDefinitionServiceStub(definition_channel),
                    pb_grpc.SegmentEvaluatorServiceStub(evaluator_channel),
                    evaluator_service,
                )
            finally:
                await definition_channel.close(None)
                await evaluator_channel.close(None)
        finally:
            await evaluator_server.stop()
    finally:
        await definition_server.stop()


async def new_project(s: Stack, project: str) -> None:
    """Creates `project` (an existing one is fine)."""
    await create_project(s.definition_channel, project)


# --- builders ---------------------------------------------------------------------------------


def did(event_name: str) -> dm.Node:
    return dm.Node(
        did_event=dm.DidEventCondition(
            event=dm.EventSpec(event_name=event_name), window=dm.TimeWindow(all_time=dm.AllTime())
        )
    )


def did_not(event_name: str) -> dm.Node:
    return dm.Node(
        did_not_event=dm.DidNotEventCondition(
            event=dm.EventSpec(event_name=event_name), window=dm.TimeWindow(all_time=dm.AllTime())
        )
    )


def past(root: dm.Node, include: Sequence[str] = (), exclude: Sequence[str] = ()) -> dm.Definition:
    return dm.Definition(
        past_behavior=dm.PastBehaviorQuery(
            root=root, included_segments=include, excluded_segments=exclude
        )
    )


async def create(s: Stack, project: str, segment_id: str, definition: dm.Definition) -> str:
    created = await s.definitions.CreateSegment(
        dpb.CreateSegmentRequest(
            parent=f"projects/{project}",
            segment_id=segment_id,
            segment=segment_pb2.Segment(display_name=segment_id.title(), definition=definition),
        ),
        timeout=TIMEOUT,
    )
    assert created.name == f"projects/{project}/segments/{segment_id}"
    return created.name


async def ingest(s: Stack, project: str, *batches: Sequence[pb.Event]) -> pb.IngestEventsResponse:
    requests = [pb.IngestEventsRequest(parent=f"projects/{project}", events=b) for b in batches]
    return await s.evaluator.IngestEvents(stream(requests), timeout=TIMEOUT)


async def count(s: Stack, segment: str) -> tuple[int, list[str]]:
    r = await s.evaluator.CountSegment(
        pb.CountSegmentRequest(segment=segment, sample_size=100), timeout=TIMEOUT
    )
    return r.user_count, list(r.sample_user_ids)


async def members(
    s: Stack, segment: str, ids: list[str], version: int = 0, realtime: bool = False
) -> tuple[list[bool], int]:
    r = await s.evaluator.CheckMembership(
        pb.CheckMembershipRequest(
            segment=segment, user_ids=ids, snapshot_version=version, realtime=realtime
        ),
        timeout=TIMEOUT,
    )
    return list(r.is_member), r.snapshot_version


@dataclass
class Rich:
    """A failed call's status code, message and decoded `google.rpc.Status` details."""

    code: grpc.StatusCode
    message: str
    info: ErrorInfo
    violations: list[tuple[str, str]]


def rich(exc: grpc.aio.AioRpcError) -> Rich:
    status = call_status(exc)
    assert status is not None, "no google.rpc.Status in the trailers"
    info = ErrorInfo()
    for detail in status.details:
        if detail.Unpack(info):  # False, and nothing read, for the other details
            break
    assert info.domain == ERROR_DOMAIN
    violations = [(v.field, v.description) for v in field_violations(exc)]
    return Rich(exc.code(), exc.details() or "", info, violations)


async def reflected(channel: grpc.aio.Channel) -> set[str]:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)

    async def requests() -> AsyncIterator[Any]:
        yield reflection_pb2.ServerReflectionRequest(list_services="")

    names: set[str] = set()
    async for response in stub.ServerReflectionInfo(requests(), timeout=TIMEOUT):
        names.update(s.name for s in response.list_services_response.service)
    return names
