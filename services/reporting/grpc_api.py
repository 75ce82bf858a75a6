"""gRPC servicer of SegmentReportingService: converts messages and calls the use cases
(DomainErrors map to statuses in the shared interceptor)."""

from __future__ import annotations

from typing import Any

import grpc

from libs.model.definition_proto import timestamp_to_datetime
from segments.v1 import evaluator_service_pb2 as epb
from segments.v1 import reporting_service_pb2 as pb
from segments.v1 import reporting_service_pb2_grpc as pb_grpc
from services.reporting.application.daily import DailyJob
from services.reporting.application.reports import Reports
from services.reporting.domain.days import yesterday
from services.reporting.domain.names import parse_project
from services.reporting.reporting_messages import (
    live_rate_to_pb,
    optional_date,
    reachability_to_pb,
    run_to_pb,
    trend_to_pb,
)

Ctx = grpc.aio.ServicerContext[Any, Any]


class ReportingServicer(pb_grpc.SegmentReportingServiceServicer):
    def __init__(self, job: DailyJob, reports: Reports) -> None:
        self.job = job
        self.reports = reports

    async def GetSegmentTrend(
        self, request: pb.GetSegmentTrendRequest, context: Ctx
    ) -> pb.GetSegmentTrendResponse:
        points = await self.reports.trend(
            request.segment,
            optional_date(request, "start_date"),
            optional_date(request, "end_date"),
        )
        return trend_to_pb(points)

    async def GetReachability(
        self, request: pb.GetReachabilityRequest, context: Ctx
    ) -> pb.Reachability:
        report = await self.reports.reachability(request.segment, optional_date(request, "date"))
        return reachability_to_pb(report)

    async def ListSampleUsers(
        self, request: pb.ListSampleUsersRequest, context: Ctx
    ) -> pb.ListSampleUsersResponse:
        profiles = await self.reports.sample_users(
            request.segment, optional_date(request, "date"), request.page_size
        )
        return pb.ListSampleUsersResponse(
            profiles=[p for p in profiles if isinstance(p, epb.Profile)]
        )

    async def GetLiveRate(
        self, request: pb.GetLiveRateRequest, context: Ctx
    ) -> pb.GetLiveRateResponse:
        start = (
            timestamp_to_datetime(request.start_time) if request.HasField("start_time") else None
        )
        end = timestamp_to_datetime(request.end_time) if request.HasField("end_time") else None
        return live_rate_to_pb(await self.reports.live_rate(request.segment, start, end))

    async def RunDailyJob(self, request: pb.RunDailyJobRequest, context: Ctx) -> pb.DailyRun:
        project = parse_project(request.parent)
        day = optional_date(request, "date")
        if day is None:
            zone = await self.job.deps.catalog.time_zone(project)
            day = yesterday(self.job.deps.clock(), zone)
        return run_to_pb(await self.job.run_day(project, day))

    async def GetDailyRun(self, request: pb.GetDailyRunRequest, context: Ctx) -> pb.DailyRun:
        return run_to_pb(await self.reports.get_run(request.name))

    async def ListDailyRuns(
        self, request: pb.ListDailyRunsRequest, context: Ctx
    ) -> pb.ListDailyRunsResponse:
        project = parse_project(request.parent)
        runs, token = await self.reports.list_runs(project, request.page_size, request.page_token)
        return pb.ListDailyRunsResponse(
            daily_runs=[run_to_pb(r) for r in runs], next_page_token=token
        )
