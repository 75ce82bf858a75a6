"""PostgreSQL restarted while calls run: calls fail fast with UNAVAILABLE and a retry delay,
health says NOT_SERVING, and both recover without restarting the server (issue 13). The
cluster is the test's own (tests/support/pg_cluster.py), never the shared one."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from libs.common.config import Config
from libs.common.server import RunningServer
from libs.common.status import call_status
from segments.v1 import definition_service_pb2 as dpb
from segments.v1 import definition_service_pb2_grpc as dpb_grpc
from services.definition.service import DefinitionService
from tests.support import pg_cluster
from tests.support.auth import ADMIN_KEY, authorized_channel, create_project

pytestmark = pytest.mark.skipif(not pg_cluster.available(), reason="no PostgreSQL binaries")

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


@pytest.fixture
async def cluster() -> AsyncIterator[pg_cluster.ThrowawayCluster]:
    made = await asyncio.to_thread(pg_cluster.ThrowawayCluster)
    try:
        await asyncio.to_thread(made.start)
        yield made
    finally:
        await asyncio.to_thread(made.remove)


def _retry_delay(exc: grpc.aio.AioRpcError) -> float | None:
    status = call_status(exc)
    for detail in status.details if status is not None else ():
        info = error_details_pb2.RetryInfo()
        if detail.Unpack(info):
            return info.retry_delay.ToTimedelta().total_seconds()
    return None


async def _list(stub: dpb_grpc.SegmentDefinitionServiceAsyncStub) -> str:
    """ListSegments of the test's project: "OK", or the code it failed with (checked)."""
    try:
        await stub.ListSegments(dpb.ListSegmentsRequest(parent="projects/restart"), timeout=20)
    except grpc.aio.AioRpcError as exc:
        if exc.code() is grpc.StatusCode.UNAVAILABLE:
            assert _retry_delay(exc) is not None, exc.details()
        return exc.code().name
    return "OK"


async def _health(channel: grpc.aio.Channel, wanted: int) -> None:
    watch = health_pb2_grpc.HealthStub(channel).Watch(
        health_pb2.HealthCheckRequest(service=DefinitionService.name), timeout=30
    )
    try:
        while (await watch.read()).status != wanted:
            pass
    finally:
        watch.cancel()


async def test_postgres_restarted_while_calls_run(
    cluster: pg_cluster.ThrowawayCluster, tmp_path: Path
) -> None:
    config = replace(
        Config(), data_dir=tmp_path, database_url=cluster.url(), shutdown_grace_seconds=1.0
    )
    service = DefinitionService(cluster.url(), bootstrap_admin_key=ADMIN_KEY)
    server = RunningServer([service], config, host="127.0.0.1", port=0, health_interval=0.1)
    await server.start()
    try:
        async with authorized_channel(server.address) as channel:
            await create_project(channel, "restart")
            stub: dpb_grpc.SegmentDefinitionServiceAsyncStub = (
                dpb_grpc.SegmentDefinitionServiceStub(channel)
            )
            assert await _list(stub) == "OK"
            seen: Counter[str] = Counter()
            stopping = asyncio.create_task(asyncio.to_thread(cluster.stop))
            while not stopping.done():  # calls keep running while the server goes down
                seen.update(await asyncio.gather(*(_list(stub) for _ in range(4))))
            await stopping
            assert await _list(stub) == "UNAVAILABLE"
            await _health(channel, NOT_SERVING)
            assert set(seen) <= {"OK", "UNAVAILABLE"}, seen

            await asyncio.to_thread(cluster.start)
            await _health(channel, SERVING)
            outcomes = [await _list(stub) for _ in range(3)]
            assert outcomes[-1] == "OK", outcomes
            assert set(outcomes) <= {"OK", "UNAVAILABLE"}, outcomes
    finally:
        await server.stop()
