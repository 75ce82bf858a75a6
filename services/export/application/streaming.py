"""StreamExportJob: a finished FILE job's file, or a STREAM job's rows as they are produced.

A STREAM job is run by the call that streams it: the call claims the job (the same limits
as the worker's claims), runs it into a bounded buffer that the call drains, and the run's
heartbeat keeps progress and the lease fresh like any other run. A STREAM job is streamed
once; a reader that goes away fails it (READER_GONE).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from libs.common.errors import (
    Aborted,
    DomainError,
    FailedPrecondition,
    Internal,
    ResourceExhausted,
)
from libs.common.status import PEER_CODES
from services.export.application.context import Deps
from services.export.application.jobs import get_job
from services.export.application.running import JobRun, Stop
from services.export.application.worker import claim
from services.export.domain.jobs import Destination, ExportJob, JobError, JobState, may_start

#: chunks produced ahead of the reader
BUFFERED_CHUNKS = 4
_END = b""


class StreamSink:
    """A `Sink` drained by the streaming call: `write` waits while BUFFERED_CHUNKS are unread."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[bytes] = asyncio.Queue()
        self._room = asyncio.Semaphore(BUFFERED_CHUNKS)

    async def write(self, data: bytes) -> None:
        if data:
            await self._room.acquire()
            self._queue.put_nowait(data)

    async def commit(self) -> None:
        self._queue.put_nowait(_END)

    async def discard(self) -> None:
        self._queue.put_nowait(_END)

    async def chunks(self) -> AsyncIterator[bytes]:
        while (data := await self._queue.get()) != _END:
            self._room.release()
            yield data


_ERRORS = {code.name: kind for code, kind in PEER_CODES.items()}


def _error(error: JobError | None) -> DomainError:
    """A failed job's recorded error, raised again to its reader."""
    if error is None:
        return Internal("the export failed")
    return _ERRORS.get(error.code, Internal)(error.message, reason=error.reason)


async def _claim_stream(deps: Deps, job: ExportJob) -> ExportJob:
    now = deps.clock()
    async with deps.store.transaction() as tx:
        await tx.lock_claims()
        current = await tx.get(job.project, job.job_id, lock=True)
        if current is None or current.state is not JobState.PENDING:
            state = current.state.value if current is not None else "gone"
            raise FailedPrecondition(
                f"{job.name} is {state}: a STREAM job's rows are streamed once, by the first "
                "call; create the job again to stream them again",
                reason="EXPORT_STREAM_TAKEN",
                metadata={"state": state},
            )
        running = await tx.running(now)
        limit = deps.settings.max_running_per_project
        if not may_start(current, running, limit):
            raise ResourceExhausted(
                f"projects/{job.project} is running {limit} export jobs, or one of "
                f"{job.segment}; retry when it has finished",
                reason="EXPORT_LIMIT_REACHED",
                metadata={"limit": str(limit)},
                retry_after_seconds=deps.settings.retry_seconds,
            )
        return await claim(deps, tx, current)


def _check_file(job: ExportJob) -> None:
    if job.state is not JobState.SUCCEEDED:
        raise FailedPrecondition(
            f"{job.name} is {job.state.value}: its file can be streamed once it has SUCCEEDED",
            reason="EXPORT_JOB_NOT_FINISHED",
            metadata={"state": job.state.value},
        )
    if job.expired:
        raise FailedPrecondition(
            f"the file of {job.name} expired and was deleted; create the job again",
            reason="EXPORT_FILE_EXPIRED",
        )


async def stream_job(deps: Deps, name: str) -> AsyncIterator[bytes]:
    """The CSV of a job, in chunks."""
    job = await get_job(deps, name)
    if job.destination is Destination.FILE:
        _check_file(job)
        async for data in deps.files.read(job.output_path):
            yield data
        return
    job = await _claim_stream(deps, job)
    sink = StreamSink()

    async def open_sink() -> StreamSink:
        return sink

    run = JobRun(deps, job, open_sink)
    task = asyncio.create_task(run.run())
    deps.runs.streams.add(task)
    task.add_done_callback(deps.runs.streams.discard)
    try:
        async for data in sink.chunks():
            yield data
        final = await asyncio.shield(task)
    finally:
        if not task.done():
            run.stop(Stop.READER_GONE)
    if final.state is JobState.CANCELLED:
        raise Aborted(f"{job.name} was cancelled", reason="EXPORT_JOB_CANCELLED")
    if final.state is JobState.RUNNING:  # another process took the job: this one was too slow
        raise Aborted(
            f"{job.name} was taken over; create the job again", reason="EXPORT_STREAM_LOST"
        )
    if final.state is JobState.PENDING:
        raise Aborted(
            f"the export service is stopping; stream {job.name} again",
            reason="EXPORT_SERVICE_STOPPING",
        )
    if final.state is not JobState.SUCCEEDED:
        raise _error(final.error)
