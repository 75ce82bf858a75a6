"""A running definition + evaluator + export suite for export tests over real gRPC, and helpers.

The definition and evaluator servers come from `tests.evaluator.grpc_stack.running_stack`;
the export service runs beside them on its own job store (SQLite in tmp, or a fresh
PostgreSQL database) and export directory, reaching the evaluator through a `SlowPeer`
(pass-through unless a test slows it down or takes it away).
"""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import grpc

from libs.common.config import Config
from libs.common.server import RunningServer
from segments.v1 import definition_model_pb2 as dm
from segments.v1 import evaluator_service_pb2 as epb
from segments.v1 import export_service_pb2 as pb
from segments.v1 import export_service_pb2_grpc as pb_grpc
from services.export.application.context import ExportSettings
from services.export.service import ExportService
from tests.evaluator.grpc_stack import TIMEOUT, Stack
from tests.support.auth import ADMIN_KEY, authorized_channel, create_project
from tests.support.postgres import temporary_database
from tests.support.slow_peer import SlowPeer

TABLE_METHOD = "/segments.v1.SegmentEvaluatorService/StreamAudienceTable"
FAST = ExportSettings(
    workers=2,
    max_running_per_project=2,
    lease_seconds=2.0,
    heartbeat_seconds=0.1,
    poll_seconds=0.1,
    retry_seconds=0.2,
    # every test acts as one principal on the module's store, where jobs of earlier tests
    # may stay unfinished (STREAM jobs never streamed): the per-principal test sets its own
    max_unfinished_per_principal=10_000,
)
FINISHED = (
    pb.EXPORT_JOB_STATE_SUCCEEDED,
    pb.EXPORT_JOB_STATE_FAILED,
    pb.EXPORT_JOB_STATE_CANCELLED,
)


@asynccontextmanager
async def job_store_url(kind: str, directory: Path) -> AsyncIterator[str]:
    """The URL of an empty export job store: a SQLite file, or a new PostgreSQL database
    (dropped at the end)."""
    if kind == "sqlite":
        yield f"sqlite+aiosqlite:///{directory / 'export.sqlite3'}"
        return
    async with temporary_database() as url:
        yield url


def own_store(s: ExportStack, directory: Path) -> AbstractAsyncContextManager[str]:
    """An empty job store of the same kind as `s`'s, for an export process of a test's own
    (the module's export service would run that process's jobs otherwise)."""
    return job_store_url("sqlite" if s.store_url.startswith("sqlite") else "postgres", directory)


@dataclass
class ExportStack:
    base: Stack
    peer: SlowPeer
    config: Config  # the export service's
    store_url: str
    export_dir: Path
    service: ExportService
    server: RunningServer
    channel: grpc.aio.Channel
    export: pb_grpc.SegmentExportServiceAsyncStub


@asynccontextmanager
async def running_export(
    base: Stack,
    store_url: str,
    data_dir: Path,
    settings: ExportSettings = FAST,
    chunk_rows: int = 7,
) -> AsyncIterator[ExportStack]:
    """An export server beside `base`, its evaluator calls through a SlowPeer."""
    peer = await SlowPeer(base.evaluator_server.address, TABLE_METHOD).start()
    config = replace(
        Config(),
        host="127.0.0.1",
        data_dir=data_dir,
        service_database_urls={"export": store_url},
        definition_address=base.definition_server.address,
        evaluator_address=peer.address,
        shutdown_grace_seconds=1.0,
        # the worker runs jobs outside any call: it acts as this service principal
        service_key=ADMIN_KEY,
    )
    service = ExportService(config, settings=settings, chunk_rows=chunk_rows)
    server = RunningServer([service], config, port=0)
    await server.start()
    channel = authorized_channel(server.address)
    try:
        yield ExportStack(
            base, peer, config, store_url, config.export_dir, service, server, channel,
            pb_grpc.SegmentExportServiceStub(channel),
        )  # fmt: skip
    finally:
        await channel.close(None)
        await server.stop()
        await peer.stop()


# --- helpers ----------------------------------------------------------------------------------


async def new_project(s: ExportStack, project: str) -> None:
    await create_project(s.base.definition_channel, project)


def value(v: str | float | bool) -> dm.Value:
    if isinstance(v, bool):
        return dm.Value(bool_value=v)
    if isinstance(v, str):
        return dm.Value(string_value=v)
    return dm.Value(number_value=float(v))


async def upsert(s: ExportStack, project: str, profiles: Sequence[epb.Profile]) -> None:
    reply = await s.base.evaluator.UpsertProfiles(
        epb.UpsertProfilesRequest(parent=f"projects/{project}", profiles=profiles),
        timeout=TIMEOUT,
    )
    assert not reply.errors, reply.errors


async def create_job(
    s: ExportStack,
    project: str,
    fields: Sequence[str],
    segment: str = "all-users",
    **job: Any,
) -> pb.ExportJob:
    request_id = job.pop("request_id", "")
    return await s.export.CreateExportJob(
        pb.CreateExportJobRequest(
            parent=f"projects/{project}",
            export_job=pb.ExportJob(
                segment=f"projects/{project}/segments/{segment}", fields=fields, **job
            ),
            request_id=request_id,
        ),
        timeout=TIMEOUT,
    )


async def wait_for(
    s: ExportStack, name: str, states: Sequence[int] = FINISHED, *, within: float = 30.0
) -> pb.ExportJob:
    """The job once its state is one of `states` (polling; fails after `within` seconds)."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        job = await s.export.GetExportJob(pb.GetExportJobRequest(name=name), timeout=TIMEOUT)
        if job.state in states:
            return job
        assert asyncio.get_running_loop().time() < deadline, f"still {job.state}: {job}"
        await asyncio.sleep(0.05)


def read_csv(data: bytes) -> list[list[str]]:
    """Rows of a CSV file as Python's csv module reads them (UTF-8, RFC 4180)."""
    text = data.decode("utf-8")
    return list(csv.reader(io.StringIO(text, newline="")))


async def stream_bytes(s: ExportStack, name: str) -> bytes:
    chunks = [
        c.data
        async for c in s.export.StreamExportJob(
            pb.StreamExportJobRequest(name=name), timeout=TIMEOUT
        )
    ]
    return b"".join(chunks)
