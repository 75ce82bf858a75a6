"""Wiring of the definition service: the SQL store, the use cases and the gRPC servicer."""

from __future__ import annotations

import grpc

from libs.common.config import Config
from libs.common.service import Service
from segments.v1 import definition_service_pb2_grpc as pb_grpc
from services.definition.adapters.store import SqlStore
from services.definition.grpc_api import DefinitionServicer

SERVICE_NAME = "segments.v1.SegmentDefinitionService"


class DefinitionService:
    """SegmentDefinitionService over PostgreSQL or the embedded SQLite file."""

    name = SERVICE_NAME

    def __init__(self, database_url: str) -> None:
        self.store = SqlStore(database_url)

    def register(self, server: grpc.aio.Server) -> None:
        pb_grpc.add_SegmentDefinitionServiceServicer_to_server(
            DefinitionServicer(self.store), server
        )

    async def start(self) -> None:
        """Migrates the schema to the latest revision, then opens the engine."""
        await self.store.open()

    async def stop(self) -> None:
        await self.store.close()


def build_service(config: Config) -> Service:
    return DefinitionService(config.effective_database_url)
