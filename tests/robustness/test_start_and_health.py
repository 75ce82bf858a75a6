"""Starting next to another server or without a store, and health that follows the stores
(issue 13, defects 10 and 12)."""

from __future__ import annotations

import asyncio
import os
import sys
from dataclasses import replace
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from libs.clickhouse.chdb_adapter import ChdbEngine
from libs.common.config import Config
from libs.common.placeholder import PlaceholderService
from libs.common.server import RunningServer, ServerError
from services.cli import build_services
from services.definition.service import DefinitionService
from tests.support.auth import StaticDecider

from .conftest import AllServices

REPO = Path(__file__).resolve().parents[2]
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
#: Nothing listens on port 1 of the loopback address.
NOWHERE = "127.0.0.1:1"


async def health(channel: grpc.aio.Channel, service: str) -> int:
    stub = health_pb2_grpc.HealthStub(channel)
    response = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
    return int(response.status)


async def test_a_service_that_implements_nothing_is_not_serving(
    all_services: AllServices,
) -> None:
    channel = all_services.channel
    for service in all_services.server.services:
        expected = NOT_SERVING if isinstance(service, PlaceholderService) else SERVING
        assert await health(channel, service.name) == expected, service.name
    assert await health(channel, "") == SERVING


class Flaky:
    """A service whose store can be switched off and on."""

    name = "test.Flaky"

    def __init__(self) -> None:
        self.down = False

    def register(self, server: grpc.aio.Server) -> None:
        return None

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def health_problem(self) -> str | None:
        return "the flaky store cannot be reached" if self.down else None


async def _wait_for(channel: grpc.aio.Channel, service: str, status: int) -> None:
    watch = health_pb2_grpc.HealthStub(channel).Watch(
        health_pb2.HealthCheckRequest(service=service), timeout=10
    )
    try:
        while (await watch.read()).status != status:
            pass
    finally:
        watch.cancel()


async def test_health_follows_the_store(tmp_path: Path) -> None:
    flaky = Flaky()
    config = replace(Config(), data_dir=tmp_path, shutdown_grace_seconds=1.0)
    server = RunningServer(
        [flaky], config, host="127.0.0.1", port=0, access=StaticDecider(), health_interval=0.05
    )
    await server.start()
    try:
        async with grpc.aio.insecure_channel(server.address) as channel:
            assert await health(channel, flaky.name) == SERVING
            flaky.down = True
            await _wait_for(channel, flaky.name, NOT_SERVING)
            assert await health(channel, "") == NOT_SERVING
            flaky.down = False
            await _wait_for(channel, flaky.name, SERVING)
            assert await health(channel, "") == SERVING
    finally:
        await server.stop()


async def test_an_unreachable_database_stops_the_start_with_one_line(tmp_path: Path) -> None:
    url = f"postgresql+asyncpg://segments:secret@{NOWHERE}/segments"
    config = replace(Config(), data_dir=tmp_path, database_url=url)
    server = RunningServer(
        [DefinitionService(url)], config, host="127.0.0.1", port=0, access=StaticDecider()
    )
    with pytest.raises(ServerError) as caught:
        await server.start()
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("the definition service cannot start: the definition store")
    assert "SEGMENTS_DATABASE_URL" in message and "secret" not in message


async def _serve(which: str, env: dict[str, str]) -> tuple[int, str]:
    """Runs `segments serve <which>` until it exits (it is expected to refuse to start)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.cli",
        "serve",
        which,
        "--port",
        "0",
        cwd=REPO,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        out, _ = await asyncio.wait_for(process.communicate(), timeout=120)
    finally:
        if process.returncode is None:
            process.kill()
    assert process.returncode is not None
    return process.returncode, out.decode()


def _env(data_dir: Path, **values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEGMENTS_")}
    env["SEGMENTS_DATA_DIR"] = str(data_dir)
    env.update(values)
    return env


def _human_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("segments: ")]


async def test_a_second_server_on_the_same_data_directory(
    tmp_path: Path, chdb_engine: ChdbEngine
) -> None:
    # this process holds the embedded engine at chdb_engine.path; point another at it
    chdb_engine.ensure_database("robust_held")
    data_dir = tmp_path / "var"
    data_dir.mkdir()
    (data_dir / "chdb").symlink_to(chdb_engine.path, target_is_directory=True)
    code, output = await _serve("evaluator", _env(data_dir))
    assert code == 1, output
    assert "Traceback" not in output and "EmbeddedServer" not in output, output
    (line,) = _human_lines(output)
    assert "another segments server holds the data directory" in line
    assert "SEGMENTS_DATA_DIR" in line


async def test_an_unreachable_clickhouse_stops_the_start_with_one_line(tmp_path: Path) -> None:
    env = _env(tmp_path / "var", SEGMENTS_CLICKHOUSE_URL=f"http://{NOWHERE}")
    code, output = await _serve("evaluator", env)
    assert code == 1, output
    assert "Traceback" not in output, output
    (line,) = _human_lines(output)
    assert line.startswith("segments: the evaluator service cannot start: ClickHouse")
    assert "SEGMENTS_CLICKHOUSE_URL" in line


def test_services_offer_a_health_check(tmp_path: Path) -> None:
    config = replace(Config(), data_dir=tmp_path)
    for service in build_services("all", config):
        if not isinstance(service, PlaceholderService):
            assert callable(getattr(service, "health_problem", None)), service.name
