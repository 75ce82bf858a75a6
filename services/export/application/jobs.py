"""CreateExportJob, GetExportJob, ListExportJobs and CancelExportJob."""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from libs.common.errors import FieldViolation, InvalidArgument, NotFound, ResourceExhausted
from libs.common.metrics import EXPORT_JOBS
from libs.common.page_tokens import Cursor, decode_page_token, encode_page_token, fingerprint
from libs.model.names import parse_project
from services.export.application.context import Deps
from services.export.domain.columns import check_fields
from services.export.domain.jobs import (
    Destination,
    ExportJob,
    JobState,
    cancelled,
    check_cancellable,
    output_path,
    parse_job_name,
    parse_segment,
)
from services.export.domain.ports import JobTransaction, RequestIdTaken

MAX_PAGE_SIZE = 100
MAX_REQUEST_ID = 128
#: an as_of this far ahead of the clock is still "now" (clocks of two machines differ)
CLOCK_SKEW = timedelta(seconds=5)
#: how long CancelExportJob waits for a job running elsewhere to stop
CANCEL_WAIT_SECONDS = 3.0


@dataclass(frozen=True)
class NewJob:
    parent: str
    segment: str
    fields: tuple[str, ...]
    destination: Destination
    byte_order_mark: bool
    as_of: datetime | None
    creator: str
    request_id: str = ""


def _check_request_id(request_id: str) -> None:
    if len(request_id) > MAX_REQUEST_ID or any(ord(c) < 33 for c in request_id):
        raise InvalidArgument.field(
            "request_id", f"at most {MAX_REQUEST_ID} printable characters without spaces"
        )


async def _load(tx: JobTransaction, name: str, *, lock: bool = False) -> ExportJob:
    project, job_id = parse_job_name(name)
    job = await tx.get(project, job_id, lock=lock)
    if job is None:
        raise NotFound(f"export job {name} not found", reason="EXPORT_JOB_NOT_FOUND")
    return job


async def create_job(deps: Deps, new: NewJob) -> ExportJob:
    """Records a PENDING job and returns it; a retry with the same request id returns the job
    created first. The segment must exist."""
    project = parse_project(new.parent)
    segment = parse_segment(new.segment, project, "export_job.segment")
    fields = check_fields(new.fields, "export_job.fields")
    _check_request_id(new.request_id)
    now = deps.clock()
    if new.as_of is not None and new.as_of > now + CLOCK_SKEW:
        raise InvalidArgument.field("export_job.as_of", "must not be in the future")
    job = ExportJob(
        project=project,
        job_id=secrets.token_hex(8),
        segment=segment,
        fields=fields,
        destination=new.destination,
        byte_order_mark=new.byte_order_mark,
        as_of=new.as_of or now,
        creator=new.creator,
        create_time=now,
        update_time=now,
        request_id=new.request_id,
    )
    if new.request_id:
        async with deps.store.transaction() as tx:
            stored = await tx.by_request_id(project, new.request_id)
        if stored is not None:
            return _same_request(stored, job, new.as_of)
    await deps.catalog.check_exists(segment)
    try:
        created = await _insert(deps, job)
    except RequestIdTaken:
        # a concurrent call with the same request id committed first: its job is the answer
        async with deps.store.transaction() as tx:
            stored = await tx.by_request_id(project, new.request_id)
        assert stored is not None
        return _same_request(stored, job, new.as_of)
    EXPORT_JOBS.labels("pending").inc()
    deps.runs.wake.set()
    return created


def _same_request(stored: ExportJob, asked: ExportJob, as_of: datetime | None) -> ExportJob:
    """The job an earlier call with the request id created, when it asked for the same export
    (AIP-155); an id reused for another export is INVALID_ARGUMENT."""
    same = (stored.segment, stored.fields, stored.destination, stored.byte_order_mark) == (
        asked.segment,
        asked.fields,
        asked.destination,
        asked.byte_order_mark,
    )
    if not same or (as_of is not None and as_of != stored.as_of):
        raise InvalidArgument(
            "request_id: was already used for another export (a retry must repeat the request "
            "exactly, another request needs a new id)",
            violations=[
                FieldViolation("request_id", "was already used for an export with other fields")
            ],
            reason="REQUEST_ID_REUSED",
        )
    return stored


async def _insert(deps: Deps, job: ExportJob) -> ExportJob:
    """Inserts `job` unless its project's queue or its creator's is full (checked holding the
    claim lock, so that concurrent creates cannot both pass)."""
    settings = deps.settings
    retry = settings.retry_seconds
    async with deps.store.transaction() as tx:
        await tx.lock_claims()
        limit = settings.max_unfinished_per_project
        if await tx.unfinished_count(job.project) >= limit:
            raise ResourceExhausted(
                f"projects/{job.project} already has {limit} pending or running export jobs; "
                "wait for some to finish or cancel some",
                reason="EXPORT_QUEUE_FULL",
                metadata={"limit": str(limit)},
                retry_after_seconds=retry,
            )
        limit = settings.max_unfinished_per_principal
        if job.creator and await tx.unfinished_of(job.creator) >= limit:
            raise ResourceExhausted(
                f"{job.creator} already has {limit} pending or running export jobs; wait for "
                "one to finish or cancel one",
                reason="EXPORT_PRINCIPAL_LIMIT",
                metadata={"limit": str(limit)},
                retry_after_seconds=retry,
            )
        await tx.insert(job)
    return job


async def get_job(deps: Deps, name: str) -> ExportJob:
    async with deps.store.transaction() as tx:
        return await _load(tx, name)


async def list_jobs(
    deps: Deps, parent: str, page_size: int, page_token: str
) -> tuple[list[ExportJob], str]:
    """A page of the project's jobs, newest first, and the next page's token ("" at the end)."""
    project = parse_project(parent)
    if page_size < 0:
        raise InvalidArgument.field("page_size", "must not be negative")
    size = min(page_size or MAX_PAGE_SIZE, MAX_PAGE_SIZE)
    bound_to = fingerprint("export_jobs", project)
    after: tuple[datetime, str] | None = None
    if page_token:
        cursor = decode_page_token(page_token, bound_to)
        if not isinstance(cursor.key, datetime):
            raise InvalidArgument.field("page_token", "not a page token issued by this service")
        after = (cursor.key, cursor.last_id)
    async with deps.store.transaction() as tx:
        found = await tx.page(project, size + 1, after)
    page = found[:size]
    if len(found) <= size:
        return page, ""
    return page, encode_page_token(bound_to, Cursor(page[-1].create_time, page[-1].job_id))


async def cancel_job(deps: Deps, name: str) -> ExportJob:
    """A pending job, or a running one whose worker is gone, is CANCELLED at once. A running
    job is asked to stop (its worker sees the request within a heartbeat, or at once when it
    runs in this process), and the answer waits for it to record CANCELLED."""
    now = deps.clock()
    async with deps.store.transaction() as tx:
        job = await _load(tx, name, lock=True)
        check_cancellable(job)
        if job.state is JobState.PENDING or not job.lease_live(now):
            job = replace(cancelled(job, now), lease_owner="", lease_expires=None)
            await tx.update(job)
            stopped = True
        else:
            job = replace(job, cancel_requested=True, update_time=now)
            await tx.update(job)
            stopped = False
    if stopped:
        if job.destination is Destination.FILE:
            await deps.files.delete_partial(output_path(job.project, job.job_id))
        return job
    deps.runs.stop(job.name)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + CANCEL_WAIT_SECONDS
    while job.state is JobState.RUNNING and loop.time() < deadline:
        await asyncio.sleep(0.05)
        job = await get_job(deps, name)
    return job
