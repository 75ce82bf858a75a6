"""Wiring of the export service: the job store, the export directory, the peers (evaluator
for members, definition service for segments), the worker and the gRPC servicer. The worker
starts with the service and stops with it (its running jobs go back to PENDING)."""

from __future__ import annotations

import asyncio

import grpc

from libs.common.config import Config
from segments.v1 import export_service_pb2_grpc as pb_grpc
from services.export.adapters.definition_client import GrpcSegmentCatalog
from services.export.adapters.evaluator_client import CHUNK_ROWS, GrpcMembershipSource
from services.export.adapters.export_dir import ExportDirectory
from services.export.adapters.job_store import JobStore
from services.export.application.context import Deps, ExportSettings
from services.export.application.worker import Worker
from services.export.grpc_api import ExportServicer

SERVICE_NAME = "segments.v1.SegmentExportService"


def settings_from(config: Config) -> ExportSettings:
    return ExportSettings(
        workers=config.export_workers,
        max_running_per_project=config.export_max_running_per_project,
        max_unfinished_per_principal=config.export_max_unfinished_per_principal,
        lease_seconds=config.export_lease_seconds,
        file_ttl_seconds=config.export_file_ttl_seconds,
        stream_wait_seconds=config.export_stream_wait_seconds,
    )


class ExportService:
    """SegmentExportService over its job store (PostgreSQL or the embedded SQLite file)."""

    name = SERVICE_NAME

    def __init__(
        self,
        config: Config,
        *,
        settings: ExportSettings | None = None,
        chunk_rows: int = CHUNK_ROWS,
    ) -> None:
        self.store = JobStore(config.service_database_url("export"))
        self.members = GrpcMembershipSource(config.peer_address("evaluator"), chunk_rows)
        self.segments = GrpcSegmentCatalog(config.peer_address("definition"))
        self.files = ExportDirectory(config.export_dir)
        self.deps = Deps(
            store=self.store,
            source=self.members,
            catalog=self.segments,
            files=self.files,
            settings=settings or settings_from(config),
        )
        self.worker = Worker(self.deps)

    def register(self, server: grpc.aio.Server) -> None:
        pb_grpc.add_SegmentExportServiceServicer_to_server(ExportServicer(self.deps), server)

    async def start(self) -> None:
        await self.store.open()
        await self.worker.start()

    async def health_problem(self) -> str | None:
        """What keeps the service from serving (its job store cannot be reached), or None."""
        return await self.store.database.problem()

    async def stop(self) -> None:
        await self.worker.stop()
        streams = list(self.deps.runs.streams)
        if streams:  # STREAM runs whose readers went away record it before the store closes
            await asyncio.wait(streams, timeout=self.deps.settings.lease_seconds)
        await self.members.close()
        await self.segments.close()
        await self.store.close()


def build_service(config: Config) -> ExportService:
    return ExportService(config)
