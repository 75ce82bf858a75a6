"""gRPC servicer of SegmentExportService: converts messages (job_messages) and calls the use
cases; domain errors become statuses in the shared interceptor."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc

from libs.common.context import caller_email
from segments.v1 import export_service_pb2 as pb
from segments.v1 import export_service_pb2_grpc as pb_grpc
from services.export.application import jobs
from services.export.application.context import Deps
from services.export.application.streaming import stream_job
from services.export.job_messages import job_to_proto, new_job

Ctx = grpc.aio.ServicerContext[Any, Any]


class ExportServicer(pb_grpc.SegmentExportServiceServicer):
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    async def CreateExportJob(
        self, request: pb.CreateExportJobRequest, context: Ctx
    ) -> pb.ExportJob:
        job = await jobs.create_job(self.deps, new_job(request, caller_email()))
        return job_to_proto(job)

    async def GetExportJob(self, request: pb.GetExportJobRequest, context: Ctx) -> pb.ExportJob:
        return job_to_proto(await jobs.get_job(self.deps, request.name))

    async def ListExportJobs(
        self, request: pb.ListExportJobsRequest, context: Ctx
    ) -> pb.ListExportJobsResponse:
        page, token = await jobs.list_jobs(
            self.deps, request.parent, request.page_size, request.page_token
        )
        return pb.ListExportJobsResponse(
            export_jobs=[job_to_proto(j) for j in page], next_page_token=token
        )

    async def CancelExportJob(
        self, request: pb.CancelExportJobRequest, context: Ctx
    ) -> pb.ExportJob:
        return job_to_proto(await jobs.cancel_job(self.deps, request.name))

    async def StreamExportJob(
        self, request: pb.StreamExportJobRequest, context: Ctx
    ) -> AsyncIterator[pb.StreamExportJobResponse]:
        async for data in stream_job(self.deps, request.name):
            yield pb.StreamExportJobResponse(data=data)
