"""Helpers of the foundation tests: in-process servers on ephemeral ports, a fake service."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Collection, Mapping
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from libs.common.config import Config
from libs.common.rpc_roles import RPC_ROLES, Role
from libs.common.server import RunningServer
from libs.common.service import Service
from tests.support.auth import StaticDecider, authorized_channel


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return replace(Config(), data_dir=tmp_path, shutdown_grace_seconds=5.0)


#: Methods of the fake service, given a role so that the access check lets them through.
FAKE_METHODS = (
    "unary_unary",
    "unary_stream",
    "stream_unary",
    "stream_stream",
    "writer",
    "self_abort",
    "sleep",
    "slow",
    "forever",
    "blocking",
)
TEST_ROLES: Mapping[str, Role] = {
    **RPC_ROLES,
    **{f"/test.Fake/{m}": Role.VIEWER for m in FAKE_METHODS},
}


def make_server(
    services: list[Service], config: Config, expensive: Collection[str] = ()
) -> RunningServer:
    """A server on an ephemeral port whose access check admits `ADMIN_KEY` everywhere (no
    store: `StaticDecider`), knowing the fake service's methods; `expensive`: the methods
    limited per principal."""
    return RunningServer(
        services,
        config,
        host="127.0.0.1",
        port=0,
        access=StaticDecider(),
        roles=TEST_ROLES,
        expensive=expensive,
    )


@asynccontextmanager
async def running(
    services: list[Service], config: Config
) -> AsyncIterator[tuple[RunningServer, grpc.aio.Channel]]:
    """`make_server` started, and a channel that sends `ADMIN_KEY`."""
    server = make_server(services, config)
    await server.start()
    try:
        async with authorized_channel(server.address) as channel:
            yield server, channel
    finally:
        await server.stop()


async def health_status(channel: grpc.aio.Channel, service: str) -> int:
    stub = health_pb2_grpc.HealthStub(channel)
    response = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
    return int(response.status)


async def reflected_services(channel: grpc.aio.Channel) -> set[str]:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)

    async def requests() -> AsyncIterator[reflection_pb2.ServerReflectionRequest]:
        yield reflection_pb2.ServerReflectionRequest(list_services="")

    names: set[str] = set()
    async for response in stub.ServerReflectionInfo(requests(), timeout=10):
        names.update(s.name for s in response.list_services_response.service)
    return names


class FakeService:
    """A `Service` serving raw-bytes methods of "test.Fake" through a generic handler."""

    name = "test.Fake"

    def __init__(self, handlers: dict[str, grpc.RpcMethodHandler[Any, Any]]) -> None:
        self.handlers = handlers
        self.events: list[str] = []

    def register(self, server: grpc.aio.Server) -> None:
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(self.name, self.handlers),)
        )

    async def start(self) -> None:
        self.events.append("start")

    async def stop(self) -> None:
        self.events.append("stop")


def raw_method(channel: grpc.aio.Channel, kind: str, method: str) -> Callable[..., Any]:
    """A bytes-in, bytes-out multicallable of test.Fake/`method`."""
    path = f"/test.Fake/{method}"
    if kind == "unary_unary":
        return channel.unary_unary(path, _identity, _identity)
    if kind == "unary_stream":
        return channel.unary_stream(path, _identity, _identity)
    if kind == "stream_unary":
        return channel.stream_unary(path, _identity, _identity)
    return channel.stream_stream(path, _identity, _identity)


def _identity(data: bytes) -> bytes:
    return data
