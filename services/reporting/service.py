"""Wiring of the reporting service: the run log (SQL), the daily figures (ClickHouse, beside
the events), the peers (definition service, evaluator), the scheduler and the servicer."""

from __future__ import annotations

from datetime import timedelta

import grpc

from libs.clickhouse import ClickHouse, open_clickhouse
from libs.common.config import Config
from libs.common.errors import DomainError
from segments.v1 import reporting_service_pb2_grpc as pb_grpc
from services.reporting.adapters.definition_client import GrpcSegmentCatalog
from services.reporting.adapters.evaluator_client import GrpcFigureSource
from services.reporting.adapters.figure_store import FigureStore
from services.reporting.adapters.run_store import RunStore
from services.reporting.application.context import Clock, Deps, ReportingSettings, utc_now
from services.reporting.application.daily import DailyJob
from services.reporting.application.figure_cache import VersionedFigures
from services.reporting.application.reports import Reports
from services.reporting.application.scheduler import Scheduler
from services.reporting.domain.retry import RetryPolicy
from services.reporting.grpc_api import ReportingServicer

SERVICE_NAME = "segments.v1.SegmentReportingService"


def settings_from(config: Config) -> ReportingSettings:
    return ReportingSettings(
        lease_seconds=config.reporting_lease_seconds,
        heartbeat_seconds=max(0.05, config.reporting_lease_seconds / 4),
        retry=RetryPolicy(
            attempts=config.reporting_attempts,
            base=timedelta(seconds=config.reporting_retry_seconds),
            cap=timedelta(seconds=config.reporting_retry_max_seconds),
        ),
        schedule_delay=timedelta(seconds=config.reporting_delay_seconds),
        poll_seconds=config.reporting_poll_seconds,
        scheduler=config.reporting_scheduler,
        backfill_days=config.backfill_days,
    )


class ReportingService:
    name = SERVICE_NAME

    def __init__(
        self,
        config: Config,
        *,
        settings: ReportingSettings | None = None,
        clock: Clock = utc_now,
        database: str | None = None,
    ) -> None:
        self._config = config
        self._database = database
        self._ch: ClickHouse | None = None
        self.runs = RunStore(config.service_database_url("reporting"))
        self.catalog = GrpcSegmentCatalog(config.peer_address("definition"))
        self.source = GrpcFigureSource(config.peer_address("evaluator"))
        self.settings = settings or settings_from(config)
        self.clock = clock
        self.deps: Deps | None = None
        self.scheduler: Scheduler | None = None

    async def start(self) -> None:
        self._ch = await open_clickhouse(self._config, self._database)
        figures = FigureStore(self._ch)
        await figures.create_tables()
        await self.runs.open()
        self.deps = Deps(
            runs=self.runs,
            figures=VersionedFigures(figures, self.runs),
            source=self.source,
            catalog=self.catalog,
            settings=self.settings,
            clock=self.clock,
        )
        if self.settings.scheduler:
            self.scheduler = Scheduler(self.deps)
            self.scheduler.start()

    def register(self, server: grpc.aio.Server) -> None:
        if self.deps is None:
            raise RuntimeError("start() the reporting service before registering it")
        servicer = ReportingServicer(DailyJob(self.deps), Reports(self.deps))
        pb_grpc.add_SegmentReportingServiceServicer_to_server(servicer, server)

    async def health_problem(self) -> str | None:
        """What keeps the service from serving (ClickHouse or its run log cannot be reached),
        or None."""
        if self._ch is None:
            return "ClickHouse is not open"
        try:
            await self._ch.query("SELECT 1")
        except DomainError as exc:
            return exc.message
        return await self.runs.database.problem()

    async def stop(self) -> None:
        if self.scheduler is not None:
            await self.scheduler.stop()
            self.scheduler = None
        await self.source.close()
        await self.catalog.close()
        await self.runs.close()
        if self._ch is not None:
            await self._ch.close()
            self._ch = None


def build_service(config: Config) -> ReportingService:
    return ReportingService(config)
