"""Every service answers health (SERVING, NOT_SERVING for one that implements nothing yet)
and lists itself through reflection."""

from __future__ import annotations

import pytest
from grpc_health.v1 import health_pb2

from libs.common.config import SERVICE_NAMES, Config
from libs.common.placeholder import PlaceholderService
from libs.common.server import HEALTH_SERVICE_NAME, REFLECTION_SERVICE_NAME, ServerError
from services.cli import build_services, default_port

from .conftest import FakeService, health_status, reflected_services, running

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


@pytest.mark.parametrize("which", ["all", *SERVICE_NAMES])
async def test_health_and_reflection(which: str, config: Config) -> None:
    services = build_services(which, config)
    names = {s.name for s in services}
    assert len(names) == (4 if which == "all" else 1)
    async with running(services, config) as (_, channel):
        for service in services:
            placeholder = isinstance(service, PlaceholderService)
            expected = NOT_SERVING if placeholder else SERVING
            assert await health_status(channel, service.name) == expected
        everything = all(isinstance(s, PlaceholderService) for s in services)
        assert await health_status(channel, "") == (NOT_SERVING if everything else SERVING)
        listed = await reflected_services(channel)
    assert listed == names | {HEALTH_SERVICE_NAME, REFLECTION_SERVICE_NAME}


async def test_unknown_service_health_is_not_found(config: Config) -> None:
    import grpc

    async with running(build_services("export", config), config) as (_, channel):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await health_status(channel, "segments.v1.NoSuchService")
    assert caught.value.code() is grpc.StatusCode.NOT_FOUND


def test_default_ports(config: Config) -> None:
    assert default_port("all", config) == config.port == 50051
    assert [default_port(n, config) for n in SERVICE_NAMES] == [50061, 50062, 50063, 50064]


async def test_port_in_use_stops_started_services(config: Config) -> None:
    first = FakeService({})
    async with running([first], config) as (server, _):
        second = FakeService({})
        from libs.common.server import RunningServer

        clash = RunningServer([second], config, host="127.0.0.1", port=server.port)
        with pytest.raises(ServerError, match="cannot listen"):
            await clash.start()
        assert second.events == ["start", "stop"]


async def test_duplicate_service_is_refused(config: Config) -> None:
    from libs.common.server import RunningServer

    with pytest.raises(ServerError, match="twice"):
        RunningServer([FakeService({}), FakeService({})], config)


async def test_failing_service_start_stops_the_others(config: Config) -> None:
    from libs.common.server import RunningServer

    class Broken(FakeService):
        name = "test.Broken"

        async def start(self) -> None:
            raise RuntimeError("store unreachable")

    good = FakeService({})
    server = RunningServer([good, Broken({})], config, host="127.0.0.1", port=0)
    with pytest.raises(RuntimeError, match="store unreachable"):
        await server.start()
    assert good.events == ["start", "stop"]


async def test_container_healthcheck(config: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    from services import healthcheck

    async with running(build_services("export", config), config) as (server, _):
        assert await asyncio.to_thread(healthcheck.check, server.address) is True
        name = "segments.v1.SegmentExportService"
        assert await asyncio.to_thread(healthcheck.main, [server.address, name]) == 0
        assert await asyncio.to_thread(healthcheck.check, server.address, "no.Such") is False
        monkeypatch.setenv("SEGMENTS_SERVICE", "export")
        monkeypatch.setenv("SEGMENTS_EXPORT_PORT", str(server.port))
        assert await asyncio.to_thread(healthcheck.main, []) == 0
        port = server.port
    assert await asyncio.to_thread(healthcheck.check, f"127.0.0.1:{port}", "", 0.5) is False


async def test_reflection_calls_log_at_debug(config: Config) -> None:
    import io
    import json

    from libs.common.logging import configure_logging

    for level, expected in (("INFO", 0), ("DEBUG", 1)):
        buffer = io.StringIO()
        configure_logging(level, stream=buffer)
        try:
            async with running([FakeService({})], config) as (_, channel):
                await reflected_services(channel)
                await health_status(channel, "")
        finally:
            configure_logging("INFO")
        calls = [
            line["method"]
            for line in map(json.loads, buffer.getvalue().splitlines())
            if line["event"] == "rpc"
        ]
        reflection = [m for m in calls if m.startswith("/grpc.reflection.")]
        assert len(reflection) == expected, calls
        assert "/grpc.health.v1.Health/Check" in calls
