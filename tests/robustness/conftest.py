"""All four services in one process (`segments serve all`), for the robustness tests: undecodable
requests, health, and the fuzz suite over every RPC.

The stack is started once per module; its ClickHouse database is its own, on the process's
embedded chDB engine.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from libs.clickhouse.chdb_adapter import ChdbEngine
from libs.common.config import Config
from libs.common.server import RunningServer
from services.cli import all_in_one_config, build_services
from tests.support.auth import ADMIN_KEY, authorized_channel, create_project

PROJECT = "fuzz"


@pytest.fixture(scope="session")
def chdb_engine(tmp_path_factory: pytest.TempPathFactory) -> ChdbEngine:
    return ChdbEngine.for_path(Path(tmp_path_factory.mktemp("chdb")))


def stack_config(data_dir: Path, chdb_engine: ChdbEngine, **settings: object) -> Config:
    """`serve all` on a free loopback port, data in `data_dir`, chDB shared with the process."""
    if not (data_dir / "chdb").exists():
        (data_dir / "chdb").symlink_to(chdb_engine.path, target_is_directory=True)
    config = Config(
        host="127.0.0.1",
        port=0,
        data_dir=data_dir,
        clickhouse_database=f"robust_{uuid.uuid4().hex[:12]}",
        shutdown_grace_seconds=1.0,
        bootstrap_admin_key=ADMIN_KEY,
        service_key=ADMIN_KEY,
        **settings,  # type: ignore[arg-type]
    )
    return all_in_one_config(config, None, 0)


@dataclass
class AllServices:
    server: RunningServer
    channel: grpc.aio.Channel
    config: Config


@pytest.fixture(scope="module")
async def all_services(
    tmp_path_factory: pytest.TempPathFactory, chdb_engine: ChdbEngine
) -> AsyncIterator[AllServices]:
    config = stack_config(tmp_path_factory.mktemp("all"), chdb_engine)
    server = RunningServer(build_services("all", config), config)
    await server.start()
    try:
        async with authorized_channel(server.address) as channel:
            await create_project(channel, PROJECT)
            yield AllServices(server, channel, config)
    finally:
        await server.stop()
