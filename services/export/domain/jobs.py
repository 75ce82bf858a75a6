"""Export jobs: the record, its states and the rules of moving between them.

    PENDING --claim--> RUNNING --finish--> SUCCEEDED
       |                 |  \\--error----> FAILED     (or back to PENDING: a retryable error
       |                 |                            with attempts left)
       |                 \\--cancel------> CANCELLED
       \\--cancel----------------------->  CANCELLED

A RUNNING job belongs to the worker holding its lease. A lease that ran out means the worker
stopped (killed, machine lost): the next claim takes the job over as a new attempt, or fails
it with WORKER_LOST once it has had MAX_ATTEMPTS attempts. Cancelling a finished job is
refused.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from libs.common.errors import FailedPrecondition, InvalidArgument
from libs.model.names import RESOURCE_ID

MAX_ATTEMPTS = 3
_ID = RESOURCE_ID


class JobState(enum.Enum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"

    @property
    def finished(self) -> bool:
        return self in (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED)


class Destination(enum.Enum):
    FILE = "FILE"  # a file in the export directory
    STREAM = "STREAM"  # rows streamed to the caller of StreamExportJob as they are produced


@dataclass(frozen=True)
class JobError:
    """Why a job failed: a gRPC status code name, an ErrorInfo reason and a message."""

    code: str
    reason: str
    message: str


WORKER_LOST = JobError(
    "ABORTED",
    "EXPORT_WORKER_LOST",
    f"the export stopped {MAX_ATTEMPTS} times before finishing (its worker went away each "
    "time); create the job again",
)
STREAM_LOST = JobError(
    "ABORTED",
    "EXPORT_STREAM_LOST",
    "the process streaming the job stopped before the end; a STREAM job is streamed once: "
    "create the job again",
)
STREAM_NOT_READ = JobError(
    "DEADLINE_EXCEEDED",
    "EXPORT_STREAM_NOT_READ",
    "nobody called StreamExportJob for this STREAM job in time; create the job again when "
    "ready to read it",
)
READER_GONE = JobError(
    "CANCELLED",
    "EXPORT_READER_GONE",
    "the caller of StreamExportJob stopped reading before the end; a STREAM job is streamed "
    "once: create the job again",
)


@dataclass(frozen=True)
class ExportJob:
    project: str
    job_id: str
    segment: str  # projects/{project}/segments/{segment}
    fields: tuple[str, ...]
    destination: Destination
    byte_order_mark: bool
    as_of: datetime  # the membership exported is the segment's as of this instant
    creator: str
    create_time: datetime
    update_time: datetime
    state: JobState = JobState.PENDING
    request_id: str = ""
    exported_count: int = 0
    total_count: int = 0
    blocked_skipped_count: int = 0
    output_path: str = ""  # FILE jobs: inside the export directory, set when it succeeds
    error: JobError | None = None
    attempts: int = 0
    cancel_requested: bool = False
    expire_time: datetime | None = None  # FILE jobs: when the file is deleted
    expired: bool = False  # the file was deleted
    lease_owner: str = ""  # the worker running it (RUNNING jobs)
    lease_expires: datetime | None = None  # the worker is presumed gone after this
    not_before: datetime | None = None  # a retried job waits until then

    def lease_live(self, now: datetime) -> bool:
        return (
            self.state is JobState.RUNNING
            and self.lease_expires is not None
            and self.lease_expires > now
        )

    @property
    def name(self) -> str:
        return job_name(self.project, self.job_id)


@dataclass(frozen=True)
class Progress:
    """Counts of a running job."""

    exported: int = 0
    blocked: int = 0
    total: int = 0


def job_name(project: str, job_id: str) -> str:
    return f"projects/{project}/exportJobs/{job_id}"


def parse_job_name(name: str, field: str = "name") -> tuple[str, str]:
    """`projects/{project}/exportJobs/{export_job}` -> (project, job id)."""
    parts = name.split("/")
    if (
        len(parts) != 4
        or parts[0] != "projects"
        or parts[2] != "exportJobs"
        or not _ID.fullmatch(parts[1])
        or not _ID.fullmatch(parts[3])
    ):
        raise InvalidArgument.field(
            field, f"must be projects/{{project}}/exportJobs/{{export_job}}, got {name!r}"
        )
    return parts[1], parts[3]


def parse_segment(name: str, project: str, field: str) -> str:
    """A segment of `project`: `projects/{project}/segments/{segment}`."""
    parts = name.split("/")
    if (
        len(parts) != 4
        or parts[0] != "projects"
        or parts[2] != "segments"
        or not all(_ID.fullmatch(p) for p in (parts[1], parts[3]))
    ):
        raise InvalidArgument.field(
            field, f"must be projects/{{project}}/segments/{{segment}}, got {name!r}"
        )
    if parts[1] != project:
        raise InvalidArgument.field(field, f"must be a segment of projects/{project}")
    return name


def output_path(project: str, job_id: str) -> str:
    """Where a FILE job's CSV lives, relative to the export directory: made only of the
    validated project and the generated job id."""
    if not (_ID.fullmatch(project) and _ID.fullmatch(job_id)):
        raise ValueError("unsafe output path")
    return f"{project}/{job_id}.csv"


def check_cancellable(job: ExportJob) -> None:
    if job.state.finished:
        raise FailedPrecondition(
            f"{job.name} has already finished ({job.state.value}); only a pending or running "
            "job can be cancelled",
            reason="EXPORT_JOB_FINISHED",
            metadata={"state": job.state.value},
        )


def cancelled(job: ExportJob, now: datetime) -> ExportJob:
    return replace(job, state=JobState.CANCELLED, cancel_requested=True, update_time=now)


def after_lost_worker(job: ExportJob) -> JobState:
    """The state a RUNNING job whose lease ran out goes to when the next worker looks at it:
    RUNNING again (a new attempt) while attempts remain, else FAILED (WORKER_LOST)."""
    return JobState.RUNNING if job.attempts < MAX_ATTEMPTS else JobState.FAILED


def retry_or_fail(job: ExportJob) -> JobState:
    """After a retryable failure (a peer or store unavailable): PENDING again while attempts
    remain, else FAILED."""
    return JobState.PENDING if job.attempts < MAX_ATTEMPTS else JobState.FAILED


def may_start(job: ExportJob, running: Sequence[ExportJob], max_per_project: int) -> bool:
    """The running-job limits: at most `max_per_project` RUNNING jobs of a project, and one of
    a segment. `running`: the RUNNING jobs with a live lease (over every process)."""
    mine = [r for r in running if r.project == job.project and r.job_id != job.job_id]
    return len(mine) < max_per_project and all(r.segment != job.segment for r in mine)
