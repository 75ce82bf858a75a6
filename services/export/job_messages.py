"""Export messages to use-case inputs and export jobs to messages: the one place the export
service converts between protobuf and its domain."""

from __future__ import annotations

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2

from libs.common.errors import ERROR_DOMAIN, InvalidArgument
from libs.model.definition_proto import datetime_to_timestamp, instant_from_proto
from segments.v1 import export_service_pb2 as pb
from services.export.application.jobs import NewJob
from services.export.domain.jobs import Destination, ExportJob, JobError, JobState

_DESTINATIONS = {
    pb.EXPORT_DESTINATION_UNSPECIFIED: Destination.FILE,
    pb.EXPORT_DESTINATION_FILE: Destination.FILE,
    pb.EXPORT_DESTINATION_STREAM: Destination.STREAM,
}
_DESTINATION_VALUES = {
    Destination.FILE: pb.EXPORT_DESTINATION_FILE,
    Destination.STREAM: pb.EXPORT_DESTINATION_STREAM,
}
_STATES = {
    JobState.PENDING: pb.EXPORT_JOB_STATE_PENDING,
    JobState.RUNNING: pb.EXPORT_JOB_STATE_RUNNING,
    JobState.SUCCEEDED: pb.EXPORT_JOB_STATE_SUCCEEDED,
    JobState.FAILED: pb.EXPORT_JOB_STATE_FAILED,
    JobState.CANCELLED: pb.EXPORT_JOB_STATE_CANCELLED,
}


def new_job(request: pb.CreateExportJobRequest, creator: str) -> NewJob:
    if not request.HasField("export_job"):
        raise InvalidArgument.field("export_job", "is required")
    job = request.export_job
    destination = _DESTINATIONS.get(job.destination)
    if destination is None:
        raise InvalidArgument.field("export_job.destination", "must be FILE or STREAM")
    return NewJob(
        parent=request.parent,
        segment=job.segment,
        fields=tuple(job.fields),
        destination=destination,
        byte_order_mark=job.byte_order_mark,
        as_of=instant_from_proto(job.as_of, "export_job.as_of") if job.HasField("as_of") else None,
        creator=creator,
        request_id=request.request_id,
    )


def _status(error: JobError) -> status_pb2.Status:
    code = grpc.StatusCode.__members__.get(error.code, grpc.StatusCode.INTERNAL)
    status = status_pb2.Status(code=code.value[0], message=error.message)
    info = any_pb2.Any()
    info.Pack(error_details_pb2.ErrorInfo(reason=error.reason, domain=ERROR_DOMAIN))
    status.details.append(info)
    return status


def job_to_proto(job: ExportJob) -> pb.ExportJob:
    out = pb.ExportJob(
        name=job.name,
        segment=job.segment,
        fields=job.fields,
        destination=_DESTINATION_VALUES[job.destination],
        state=_STATES[job.state],
        exported_count=job.exported_count,
        total_count=job.total_count,
        blocked_skipped_count=job.blocked_skipped_count,
        output_path=job.output_path,
        create_time=datetime_to_timestamp(job.create_time),
        update_time=datetime_to_timestamp(job.update_time),
        creator=job.creator,
        as_of=datetime_to_timestamp(job.as_of),
        byte_order_mark=job.byte_order_mark,
        expired=job.expired,
    )
    if job.error is not None:
        out.error.CopyFrom(_status(job.error))
    if job.expire_time is not None:
        out.expire_time.CopyFrom(datetime_to_timestamp(job.expire_time))
    return out
