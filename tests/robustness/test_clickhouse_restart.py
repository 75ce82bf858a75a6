"""The ClickHouse server (the chDB-over-HTTP test server) killed and restarted while the
services run: calls answer UNAVAILABLE with a retry delay, health says NOT_SERVING, and both
recover without restarting the services (issue 13)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from libs.clickhouse.chdb_adapter import ChdbEngine
from libs.common.server import RunningServer
from libs.common.status import call_status
from segments.v1 import evaluator_service_pb2 as pb
from segments.v1 import evaluator_service_pb2_grpc as pb_grpc
from services.cli import build_services
from services.evaluator.service import SERVICE_NAME as EVALUATOR
from tests.support import fuzz
from tests.support.auth import authorized_channel
from tests.support.chdb_http import ChdbHttpServer

from .conftest import stack_config

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


async def _health(channel: grpc.aio.Channel, wanted: int) -> None:
    watch = health_pb2_grpc.HealthStub(channel).Watch(
        health_pb2.HealthCheckRequest(service=EVALUATOR), timeout=30
    )
    try:
        while (await watch.read()).status != wanted:
            pass
    finally:
        watch.cancel()


async def _count(stub: pb_grpc.SegmentEvaluatorServiceAsyncStub) -> str:
    segment = f"projects/{fuzz.PROJECT}/segments/buyers"
    try:
        await stub.CountSegment(pb.CountSegmentRequest(segment=segment), timeout=20)
    except grpc.aio.AioRpcError as exc:
        if exc.code() is grpc.StatusCode.UNAVAILABLE:
            status = call_status(exc)
            assert status is not None
            retry = error_details_pb2.RetryInfo()
            assert any(d.Unpack(retry) for d in status.details), exc.details()
        return exc.code().name
    return "OK"


async def test_clickhouse_restarted(tmp_path: Path, chdb_engine: ChdbEngine) -> None:
    http = ChdbHttpServer(chdb_engine).start()
    config = stack_config(tmp_path, chdb_engine, clickhouse_url=http.url)
    server = RunningServer(build_services("all", config), config, health_interval=0.1)
    await server.start()
    try:
        async with authorized_channel(server.address) as channel:
            await fuzz.seed_project(channel)
            stub: pb_grpc.SegmentEvaluatorServiceAsyncStub = pb_grpc.SegmentEvaluatorServiceStub(
                channel
            )
            assert await _count(stub) == "OK"
            await asyncio.to_thread(http.stop)
            assert await _count(stub) == "UNAVAILABLE"
            await _health(channel, NOT_SERVING)

            http = ChdbHttpServer(chdb_engine, http.port).start()
            await _health(channel, SERVING)
            assert await _count(stub) == "OK"
    finally:
        await server.stop()
        http.stop()


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("http_proxy", raising=False)
