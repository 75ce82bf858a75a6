"""Graceful shutdown: NOT_SERVING first, in-flight calls finish, then services stop."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from libs.common.config import Config
from tests.support.auth import authorized_channel

from .conftest import FakeService, make_server, raw_method

NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
SERVING = health_pb2.HealthCheckResponse.SERVING


async def test_in_flight_call_finishes_after_health_flips(config: Config) -> None:
    entered = asyncio.Event()
    release = asyncio.Event()

    async def slow(request: bytes, context: Any) -> bytes:
        entered.set()
        await release.wait()
        service.events.append("slow call done")
        return b"finished"

    service = FakeService({"slow": grpc.unary_unary_rpc_method_handler(slow)})
    server = make_server([service], config)
    await server.start()
    async with authorized_channel(server.address) as channel:
        watch = health_pb2_grpc.HealthStub(channel).Watch(
            health_pb2.HealthCheckRequest(service=service.name), timeout=30
        )
        assert (await watch.read()).status == SERVING
        slow_method = raw_method(channel, "unary_unary", "slow")
        in_flight = asyncio.ensure_future(slow_method(b"", timeout=30))
        await entered.wait()

        stopping = asyncio.ensure_future(server.stop())
        assert (await watch.read()).status == NOT_SERVING
        watch.cancel()
        assert not in_flight.done()
        assert service.events == ["start"]  # not stopped while a call is in flight

        release.set()
        assert await in_flight == b"finished"
        await stopping
    assert service.events == ["start", "slow call done", "stop"]


async def test_new_calls_refused_after_stop(config: Config) -> None:
    service = FakeService({})
    server = make_server([service], config)
    await server.start()
    await server.stop()
    await server.stop()  # a second stop is harmless
    async with authorized_channel(server.address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            await stub.Check(health_pb2.HealthCheckRequest(), timeout=2)
        except grpc.aio.AioRpcError as exc:
            assert exc.code() in {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}
        else:
            raise AssertionError("a stopped server answered")
    assert service.events == ["start", "stop"]


async def test_grace_period_cancels_calls_that_never_end(config: Config) -> None:
    entered = asyncio.Event()

    async def forever(request: bytes, context: Any) -> bytes:
        entered.set()
        await asyncio.Event().wait()
        return b""

    service = FakeService({"forever": grpc.unary_unary_rpc_method_handler(forever)})
    server = make_server([service], config)
    await server.start()
    async with authorized_channel(server.address) as channel:
        call = raw_method(channel, "unary_unary", "forever")(b"", timeout=30)
        await entered.wait()
        await server.stop(grace=0.1)
        try:
            await call
        except grpc.aio.AioRpcError as exc:
            assert exc.code() in {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED}
        else:
            raise AssertionError("a cancelled call answered")
    assert service.events == ["start", "stop"]


async def test_service_stop_failure_does_not_block_the_others(config: Config) -> None:
    class Faulty(FakeService):
        name = "test.Faulty"

        async def stop(self) -> None:
            raise RuntimeError("close failed")

    good = FakeService({})
    server = make_server([good, Faulty({})], config)
    await server.start()
    await server.stop()
    assert good.events == ["start", "stop"]
