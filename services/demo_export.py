"""The demo's export step: the worked example's members to a CSV file in the export
directory, through the export service (create the job, wait for it to finish)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime

import grpc

from libs.model.definition_proto import datetime_to_timestamp
from segments.v1 import export_service_pb2 as pb
from segments.v1 import export_service_pb2_grpc as pb_grpc
from services.demo import PROJECT

SEGMENT = f"{PROJECT}/segments/ny-facebook-april-lapsed"
FIELDS = ["user_id", "display_name", "email", "phone", "city", "plan"]
_FINISHED = (
    pb.EXPORT_JOB_STATE_SUCCEEDED,
    pb.EXPORT_JOB_STATE_FAILED,
    pb.EXPORT_JOB_STATE_CANCELLED,
)


async def export_worked_example(
    channel: grpc.aio.Channel,
    metadata: tuple[tuple[str, str], ...],
    as_of: datetime,
    within: float = 60.0,
) -> str:
    """Exports the worked example as of the demo's instant; returns what happened."""
    stub = pb_grpc.SegmentExportServiceStub(channel)
    job = await stub.CreateExportJob(
        pb.CreateExportJobRequest(
            parent=PROJECT,
            export_job=pb.ExportJob(
                segment=SEGMENT, fields=FIELDS, as_of=datetime_to_timestamp(as_of)
            ),
            # the same job on every run of the demo
            request_id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"demo/export/{as_of.isoformat()}")),
        ),
        metadata=metadata,
    )
    deadline = asyncio.get_running_loop().time() + within
    while job.state not in _FINISHED and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.2)
        job = await stub.GetExportJob(pb.GetExportJobRequest(name=job.name), metadata=metadata)
    state = pb.ExportJobState.Name(job.state).removeprefix("EXPORT_JOB_STATE_").lower()
    if job.state != pb.EXPORT_JOB_STATE_SUCCEEDED:
        return f"{job.name} {state}: {job.error.message}"
    where = "expired" if job.expired else f"<export dir>/{job.output_path}"
    return (
        f"{job.exported_count} rows ({job.blocked_skipped_count} blocked left out) of "
        f"{SEGMENT} as of {as_of.isoformat()}: {where} ({job.name})"
    )
