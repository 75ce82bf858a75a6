"""A running definition + evaluator + reporting suite for reporting tests over real gRPC.

The definition and evaluator servers come from `tests.evaluator.grpc_stack.running_stack`;
reporting processes run beside them on the same ClickHouse database (their figures beside the
events), a run log (SQLite in tmp, or a fresh PostgreSQL database) and a `ManualClock`. Their
evaluator calls go through `CountingSource`, which counts ComputeSegmentFigures calls and
can make chosen segments fail a number of times (a peer's answer, not a store).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import grpc

from libs.common.errors import DomainError, Unavailable
from libs.common.server import RunningServer
from libs.model.definition_proto import date_to_proto
from segments.v1 import reporting_service_pb2 as pb
from segments.v1 import reporting_service_pb2_grpc as pb_grpc
from services.evaluator.domain.clock import ManualClock
from services.reporting.adapters.evaluator_client import GrpcFigureSource
from services.reporting.application.context import ReportingSettings
from services.reporting.domain.ports import ComputedFigures
from services.reporting.domain.retry import RetryPolicy
from services.reporting.service import ReportingService
from tests.evaluator.grpc_stack import TIMEOUT, Stack
from tests.support.auth import ADMIN_KEY, authorized_channel

FAST = ReportingSettings(
    batch_segments=20,
    lease_seconds=2.0,
    heartbeat_seconds=0.1,
    retry=RetryPolicy(attempts=3, base=timedelta(seconds=0.05), cap=timedelta(seconds=0.2)),
    poll_seconds=0.1,
    scheduler=False,
    backfill_days=2,
)


@dataclass
class CountingSource(GrpcFigureSource):
    """The evaluator client, counting calls; `failures[segment]` more calls fail for that
    segment (-1: every call)."""

    address: str = ""
    calls: int = 0
    segments_asked: list[str] = field(default_factory=list)
    failures: dict[str, int] = field(default_factory=dict)
    delay: float = 0.0  # seconds each call waits before asking the evaluator
    hang_after: int = 0  # calls after this many never answer (0: none hang)
    #: ComputeDailyFigures calls after this many never answer (0: none hang)
    hang_days_after: int = 0
    #: (segment, first day) of each ComputeDailyFigures call
    days_asked: list[tuple[str, date]] = field(default_factory=list)

    def __post_init__(self) -> None:
        GrpcFigureSource.__init__(self, self.address)

    async def compute(
        self,
        project: str,
        segments: Sequence[str],
        as_of: datetime,
        entered_since: datetime,
        sample_size: int,
    ) -> list[ComputedFigures | DomainError]:
        self.calls += 1
        self.segments_asked += segments
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.hang_after and self.calls > self.hang_after:
            await asyncio.Event().wait()
        results = await super().compute(project, segments, as_of, entered_since, sample_size)
        self._fail(segments, results)
        return results

    async def compute_days(
        self, segment: str, first_day: date, day_count: int, sample_size: int
    ) -> list[ComputedFigures]:
        self.calls += 1
        self.segments_asked.append(segment)
        self.days_asked.append((segment, first_day))
        if self.hang_days_after and len(self.days_asked) > self.hang_days_after:
            await asyncio.Event().wait()
        results: list[ComputedFigures | DomainError] = list(
            await super().compute_days(segment, first_day, day_count, sample_size)
        )
        self._fail([segment], results)
        if isinstance(results[0], DomainError):
            raise results[0]
        return [r for r in results if isinstance(r, ComputedFigures)]

    def _fail(self, segments: Sequence[str], results: list[ComputedFigures | DomainError]) -> None:
        for i, segment in enumerate(segments):
            left = self.failures.get(segment, 0)
            if left:
                self.failures[segment] = left - 1 if left > 0 else left
                results[i] = Unavailable(f"evaluator: {segment} could not be computed")


@dataclass
class Reporting:
    service: ReportingService
    server: RunningServer
    channel: grpc.aio.Channel
    stub: pb_grpc.SegmentReportingServiceAsyncStub
    source: CountingSource


@asynccontextmanager
async def running_reporting(
    base: Stack,
    store_url: str,
    clock: ManualClock,
    settings: ReportingSettings = FAST,
) -> AsyncIterator[Reporting]:
    """A reporting server beside `base`, on `base`'s ClickHouse database."""
    evaluator = base.evaluator_service
    assert evaluator is not None
    config = replace(
        evaluator.config,
        service_database_urls={"reporting": store_url},
        definition_address=base.definition_server.address,
        evaluator_address=base.evaluator_server.address,
        service_key=ADMIN_KEY,
    )
    service = ReportingService(config, settings=settings, clock=clock)
    source = CountingSource(address=base.evaluator_server.address)
    service.source = source
    server = RunningServer([service], config, port=0)
    await server.start()
    channel = authorized_channel(server.address)
    try:
        yield Reporting(
            service, server, channel, pb_grpc.SegmentReportingServiceStub(channel), source
        )
    finally:
        await channel.close(None)
        await server.stop()


def at(day: date, hour: int = 12, minute: int = 0, zone: str = "UTC") -> datetime:
    """An instant on `day` at local `hour:minute` in `zone`, as UTC."""
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=ZoneInfo(zone)).astimezone(
        UTC
    )


async def run_day(r: Reporting, project: str, day: date) -> pb.DailyRun:
    return await r.stub.RunDailyJob(
        pb.RunDailyJobRequest(parent=f"projects/{project}", date=date_to_proto(day)),
        timeout=TIMEOUT,
    )


async def trend(r: Reporting, segment: str, start: date, end: date) -> list[pb.TrendPoint]:
    reply = await r.stub.GetSegmentTrend(
        pb.GetSegmentTrendRequest(
            segment=segment, start_date=date_to_proto(start), end_date=date_to_proto(end)
        ),
        timeout=TIMEOUT,
    )
    return list(reply.points)
