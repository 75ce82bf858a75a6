"""Running the `segments` command as a subprocess against an in-process server hosting all four
services (as `segments serve all` does), on SQLite and the process's chDB engine."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from libs.clickhouse.chdb_adapter import ChdbEngine
from libs.common.config import Config
from libs.common.server import RunningServer
from services.cli import all_in_one_config, build_services
from tests.support.auth import ADMIN_KEY, authorized_channel, create_project

REPO = Path(__file__).resolve().parents[2]
TIMEOUT = 120.0


@asynccontextmanager
async def serve_all(
    data_dir: Path, chdb_engine: ChdbEngine, **settings: Any
) -> AsyncIterator[RunningServer]:
    """All four services on one free port, `ADMIN_KEY` their bootstrap admin key."""
    (data_dir / "chdb").symlink_to(chdb_engine.path, target_is_directory=True)
    config = Config(
        data_dir=data_dir,
        clickhouse_database=f"cli_{uuid.uuid4().hex[:12]}",
        shutdown_grace_seconds=1.0,
        bootstrap_admin_key=ADMIN_KEY,
    )
    config = all_in_one_config(replace(config, **settings), "127.0.0.1", 0)
    server = RunningServer(
        build_services("all", config), config, host=config.host, port=config.port
    )
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@asynccontextmanager
async def serve_project(
    data_dir: Path, chdb_engine: ChdbEngine, project: str
) -> AsyncIterator[RunningServer]:
    """`serve_all` with `project` created."""
    async with serve_all(data_dir, chdb_engine) as running:
        async with authorized_channel(running.address) as channel:
            await create_project(channel, project)
        yield running


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


class Cli:
    """`segments ...` against one server, with a key and a project unless told otherwise."""

    def __init__(self, address: str, project: str = "", key: str = ADMIN_KEY) -> None:
        self.address = address
        self.project = project
        self.key = key

    async def __call__(
        self,
        *args: str,
        stdin: str | None = None,
        key: str | None = None,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> Result:
        environment = {k: v for k, v in os.environ.items() if not k.startswith("SEGMENTS_")}
        environment.update(
            SEGMENTS_ADDRESS=self.address,
            SEGMENTS_API_KEY=self.key if key is None else key,
            PYTHONPATH=str(REPO),
            COLUMNS="200",
        )
        if self.project:
            environment["SEGMENTS_PROJECT"] = self.project
        environment.update(env or {})
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "services.cli",
            *args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=environment,
            cwd=cwd or REPO,
        )
        out, err = await asyncio.wait_for(
            process.communicate(stdin.encode() if stdin is not None else None), TIMEOUT
        )
        assert process.returncode is not None
        return Result(process.returncode, out.decode(), err.decode())
