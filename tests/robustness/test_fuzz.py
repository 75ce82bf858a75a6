"""The fuzz suite: every RPC of the four services, driven with generated, mutated and random
requests (tests/support/fuzz/). No call may end INTERNAL or UNKNOWN, every error status
carries an ErrorInfo, and the server stays healthy and answers the next call. The long run
is `python -m tools.fuzz` (docs/robustness.md)."""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator

import grpc
import pytest
from google.protobuf.descriptor import MethodDescriptor
from grpc_health.v1 import health_pb2, health_pb2_grpc

from libs.clickhouse.chdb_adapter import ChdbEngine
from libs.common.server import RunningServer
from segments.v1 import definition_service_pb2 as dpb
from segments.v1 import definition_service_pb2_grpc as dpb_grpc
from services.cli import build_services
from tests.support import fuzz
from tests.support.auth import authorized_channel

from .conftest import stack_config

#: Generated, templated and byte-string requests per method (about 2,300 calls in all), sent
#: a few at a time.
VALID_PER_METHOD = 20
TEMPLATE_PER_METHOD = 10
BYTES_PER_METHOD = 10
PARALLEL = 4
METHODS = fuzz.all_methods()


@pytest.fixture(scope="module")
async def fuzzed(
    tmp_path_factory: pytest.TempPathFactory, chdb_engine: ChdbEngine
) -> AsyncIterator[grpc.aio.Channel]:
    config = stack_config(tmp_path_factory.mktemp("fuzz"), chdb_engine)
    server = RunningServer(build_services("all", config), config)
    await server.start()
    try:
        async with authorized_channel(server.address) as channel:
            await fuzz.seed_project(channel)
            yield channel
    finally:
        await server.stop()


async def alive(channel: grpc.aio.Channel) -> None:
    """The server still answers: health SERVING, and a plain read."""
    health = health_pb2_grpc.HealthStub(channel)
    reply = await health.Check(health_pb2.HealthCheckRequest(service=""), timeout=10)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
    definitions = dpb_grpc.SegmentDefinitionServiceStub(channel)
    await definitions.GetProject(dpb.GetProjectRequest(name=f"projects/{fuzz.PROJECT}"), timeout=10)


@pytest.mark.parametrize(
    "method", METHODS, ids=[f"{m.containing_service.name}.{m.name}" for m in METHODS]
)
async def test_every_answer_is_precise(fuzzed: grpc.aio.Channel, method: MethodDescriptor) -> None:
    seed = zlib.crc32(fuzz.method_path(method).encode())
    cases = [
        *fuzz.draw(fuzz.valid_cases(method), VALID_PER_METHOD, seed),
        *fuzz.exact_cases(method),
        *fuzz.draw(fuzz.template_cases(method), TEMPLATE_PER_METHOD, seed + 2),
        *fuzz.nested_cases(method),
        *fuzz.draw(fuzz.byte_cases(method), BYTES_PER_METHOD, seed + 1),
    ]
    sent, findings = await fuzz.run_cases(
        fuzzed, method, cases, alive=lambda: alive(fuzzed), every=20, parallel=PARALLEL
    )
    assert sent == len(cases)
    if "Delete" in method.name:
        await fuzz.seed_project(fuzzed)  # what it deleted is back for the next method
    assert not findings, "\n".join(str(f) for f in findings)
