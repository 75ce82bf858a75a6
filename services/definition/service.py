"""Wiring of the definition service: the SQL store, the use cases and the gRPC servicer."""

from __future__ import annotations

import grpc

from libs.audit import AuditStore
from libs.common.access import AccessDecider
from libs.common.config import Config
from libs.common.service import Service
from segments.v1 import definition_service_pb2_grpc as pb_grpc
from services.definition.adapters.store import SqlStore
from services.definition.application.access import StoreAccessDecider, ensure_bootstrap_key
from services.definition.application.live_feed import ChangeSignal
from services.definition.grpc_api import DefinitionServicer

SERVICE_NAME = "segments.v1.SegmentDefinitionService"


class DefinitionService:
    """SegmentDefinitionService over PostgreSQL or the embedded SQLite file. It owns projects
    and API keys, so the server hosting it decides access from its store (`access_decider`)."""

    name = SERVICE_NAME

    def __init__(
        self,
        database_url: str,
        *,
        bootstrap_admin_key: str | None = None,
        auth_disabled: bool = False,
        audit_url: str | None = None,
    ) -> None:
        self.store = SqlStore(database_url)
        self.audit = AuditStore(audit_url) if audit_url else None
        self._bootstrap_admin_key = bootstrap_admin_key
        self._decider = StoreAccessDecider(self.store, auth_disabled=auth_disabled)
        self.live_changes = ChangeSignal()

    def access_decider(self) -> AccessDecider:
        return self._decider

    def register(self, server: grpc.aio.Server) -> None:
        pb_grpc.add_SegmentDefinitionServiceServicer_to_server(
            DefinitionServicer(self.store, self._decider, self.audit, self.live_changes), server
        )

    async def start(self) -> None:
        """Migrates the schema to the latest revision, opens the engine, and makes sure the
        bootstrap admin key exists when one is configured."""
        await self.store.open()
        if self.audit is not None:
            await self.audit.open()
        if self._bootstrap_admin_key:
            await ensure_bootstrap_key(self.store, self._bootstrap_admin_key)

    async def health_problem(self) -> str | None:
        """What keeps the service from serving (its store cannot be reached), or None."""
        return await self.store.database.problem()

    async def drain(self) -> None:
        """Ends the WatchLiveSegments feeds (their watchers resume from their sequence)."""
        self.live_changes.close()

    async def stop(self) -> None:
        if self.audit is not None:
            await self.audit.close()
        await self.store.close()


def build_service(config: Config) -> Service:
    return DefinitionService(
        config.effective_database_url,
        bootstrap_admin_key=config.bootstrap_admin_key,
        auth_disabled=config.auth_disabled,
        audit_url=config.service_database_url("audit"),
    )
