"""Wiring of the evaluator service: stores, domain and gRPC servicer."""

from __future__ import annotations

import sys
from datetime import timedelta

import grpc

from libs.clickhouse import ClickHouse, open_clickhouse
from libs.common.config import Config
from libs.common.errors import DomainError
from segments.v1 import evaluator_service_pb2_grpc as pb_grpc
from services.evaluator.adapters.definition_client import GrpcSegmentSource
from services.evaluator.adapters.definition_watch import LiveSegmentWatch
from services.evaluator.adapters.live_store import LiveStore
from services.evaluator.adapters.schema import migrate
from services.evaluator.application import Evaluator
from services.evaluator.domain.clock import Clock, system_clock
from services.evaluator.grpc_api import EvaluatorServicer
from services.evaluator.live.engine import LiveEngine, LiveSettings
from services.evaluator.live.workers import LiveWorkers

SERVICE_NAME = "segments.v1.SegmentEvaluatorService"
SWITCH_INTERVAL_SECONDS = 0.001


class EvaluatorService:
    name = SERVICE_NAME

    def __init__(
        self, config: Config, database: str | None = None, clock: Clock = system_clock
    ) -> None:
        self._config = config
        self._database = database
        self._clock = clock
        self._ch: ClickHouse | None = None
        self._segments = GrpcSegmentSource(config.peer_address("definition"))
        self._live_store = LiveStore(config.service_database_url("evaluator"))
        self._watch: LiveSegmentWatch | None = None
        self.workers: LiveWorkers | None = None
        self.evaluator: Evaluator | None = None

    async def start(self) -> None:
        # Ingest overlaps Python work (validating and encoding a batch) with engine statements
        # run in worker threads. A worker whose statement has finished waits for the GIL for up
        # to the switch interval (5 ms by default) while that work runs, several times a batch;
        # 1 ms keeps those waits short (measured: about 10-15% more events/s).
        sys.setswitchinterval(min(sys.getswitchinterval(), SWITCH_INTERVAL_SECONDS))
        self._ch = await open_clickhouse(self._config, self._database)
        await migrate(self._ch)
        self.evaluator = Evaluator(
            self._ch,
            self._segments,
            snapshots_kept=self._config.snapshots_kept,
            cached_members=self._config.membership_cache_members,
            snapshot_check_ttl=self._config.snapshot_check_seconds,
        )
        await self._live_store.open()
        settings = LiveSettings(
            max_event_age=timedelta(seconds=self._config.live_max_event_age_seconds),
            retention=timedelta(days=self._config.live_retention_days),
        )
        live = LiveEngine(
            self._live_store, self._ch, self._segments, self.evaluator.profiles, settings,
            self._clock,
        )  # fmt: skip
        self.evaluator.live = live
        # the watch connects once the port is open (in `serve all` the definition service
        # is this very process); until the first listing arrives ingest waits for it
        self._watch = LiveSegmentWatch(self._config.peer_address("definition"), live.apply)
        self._watch.start()
        self.workers = LiveWorkers(live)
        self.workers.start()

    @property
    def config(self) -> Config:
        return self._config

    def register(self, server: grpc.aio.Server) -> None:
        if self.evaluator is None:
            raise RuntimeError("start() the evaluator service before registering it")
        pb_grpc.add_SegmentEvaluatorServiceServicer_to_server(
            EvaluatorServicer(self.evaluator), server
        )

    async def health_problem(self) -> str | None:
        """What keeps the service from serving (ClickHouse or its live store cannot be
        reached), or None."""
        if self._ch is None:
            return "ClickHouse is not open"
        try:
            await self._ch.query("SELECT 1")
        except DomainError as exc:
            return exc.message
        return await self._live_store.database.problem()

    async def drain(self) -> None:
        """Ends the calls that never end by themselves: this process stops following the
        live-segment feed, and its StreamLiveEntries subscribers are let go (they resume from
        their last cursor)."""
        if self._watch is not None:
            await self._watch.stop()
        if self.evaluator is not None and self.evaluator.live is not None:
            self.evaluator.live.broadcast.close()

    async def stop(self) -> None:
        if self.workers is not None:
            await self.workers.stop()
        if self._watch is not None:
            await self._watch.stop()
        await self._live_store.close()
        await self._segments.close()
        if self._ch is not None:
            await self._ch.close()
            self._ch = None


def build_service(config: Config, database: str | None = None) -> EvaluatorService:
    return EvaluatorService(config, database)
