"""Running one claimed job: members from the evaluator, CSV into a sink, progress and lease
kept fresh by a heartbeat, and the outcome recorded.

The producer reads the segment's members (one evaluation, as of the job's `as_of`) and writes
the header and each chunk's rows. Beside it, the heartbeat records the counts and renews the
lease every `heartbeat_seconds`; it stops the producer when the job was cancelled or when
another worker took the job over (this one was presumed gone). The outcome is recorded in one
transaction holding the job's row, which also decides the races: a cancel that arrived while
the file was being finished wins, and a worker that lost its lease records nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import timedelta

from libs.common.errors import Aborted, DomainError
from libs.common.interceptors import status_code_for
from libs.common.logging import get_logger
from libs.common.metrics import EXPORT_JOBS, EXPORT_JOBS_RUNNING, EXPORT_ROWS_WRITTEN
from services.export.application.context import Deps
from services.export.domain.csv_cells import encode_chunk, header_row
from services.export.domain.jobs import (
    READER_GONE,
    Destination,
    ExportJob,
    JobError,
    JobState,
    cancelled,
    output_path,
    retry_or_fail,
)
from services.export.domain.ports import Sink

_log = get_logger("segments.export")

#: attempts at recording a run's end when the store is busy with a concurrent change
SETTLE_ATTEMPTS = 3
#: failures worth another attempt: a peer or the export directory unavailable, or the
#: evaluator busy with this principal's other expensive calls
RETRYABLE = frozenset({("UNAVAILABLE", ""), ("RESOURCE_EXHAUSTED", "TOO_MANY_CONCURRENT_CALLS")})


def retryable(error: JobError) -> bool:
    return (error.code, "") in RETRYABLE or (error.code, error.reason) in RETRYABLE


class Stop(enum.Enum):
    """Why a run was stopped before its end."""

    CANCEL = "cancel"  # CancelExportJob
    LEASE_LOST = "lease_lost"  # another worker took the job over
    SHUTDOWN = "shutdown"  # this process is stopping: the job waits for the next worker
    READER_GONE = "reader_gone"  # the reader of a STREAM job went away


Outcome = Stop | JobError | None  # None: the CSV is whole


def job_error(exc: DomainError) -> JobError:
    return JobError(status_code_for(exc).name, exc.reason, exc.message)


def directory_error(exc: OSError) -> JobError:
    return JobError(
        "UNAVAILABLE",
        "EXPORT_DIRECTORY_FAILED",
        f"writing the export file failed: {exc.strerror or exc}",
    )


class JobRun:
    """One attempt at a job this process holds the lease of."""

    def __init__(
        self, deps: Deps, job: ExportJob, open_sink: Callable[[], Awaitable[Sink]]
    ) -> None:
        self.deps = deps
        self.job = job
        self._open_sink = open_sink
        self._sink: Sink | None = None
        self.exported = 0
        self.blocked = 0
        self.total = 0
        self.stopped: Stop | None = None
        self._producer: asyncio.Task[None] | None = None
        self._committed = False  # the sink was committed (a file: renamed into place)

    def stop(self, why: Stop) -> None:
        """Ends the run early (the first reason given is the one recorded)."""
        if self.stopped is None:
            self.stopped = why
        if self._producer is not None:
            self._producer.cancel()

    async def _open(self) -> Sink:
        opening = asyncio.ensure_future(self._open_sink())
        try:
            return await asyncio.shield(opening)
        except asyncio.CancelledError:
            # stopped while the sink was being made (in a worker thread): keep it, so that
            # what it made is discarded with the run
            with contextlib.suppress(Exception):
                self._sink = await opening
            raise

    async def _produce(self) -> None:
        job = self.job
        self._sink = await self._open()
        async with self.deps.source.members(job.segment, job.as_of, job.fields) as table:
            self.total = table.total_count
            await self._sink.write(header_row(job.fields, job.byte_order_mark).encode())
            async for chunk in table.chunks:
                encoded = encode_chunk(chunk)
                if encoded.data:
                    await self._sink.write(encoded.data)
                EXPORT_ROWS_WRITTEN.inc(encoded.exported)
                self.exported += encoded.exported
                self.blocked += encoded.blocked

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self.deps.settings.heartbeat_seconds)
            try:
                verdict = await self._beat()
            except DomainError as exc:  # the store is away: try again at the next beat
                _log.warning("export_heartbeat_failed", job=self.job.name, error=exc.message)
                continue
            if verdict is not None:
                self.stop(verdict)
                return

    async def _beat(self) -> Stop | None:
        deps, job = self.deps, self.job
        now = deps.clock()
        async with deps.store.transaction() as tx:
            current = await tx.get(job.project, job.job_id, lock=True)
            if current is None or not self._holds(current):
                return Stop.LEASE_LOST
            await tx.update(
                replace(
                    current,
                    exported_count=self.exported,
                    blocked_skipped_count=self.blocked,
                    total_count=self.total,
                    lease_expires=now + timedelta(seconds=deps.settings.lease_seconds),
                    update_time=now,
                )
            )
        return Stop.CANCEL if current.cancel_requested else None

    def _holds(self, current: ExportJob) -> bool:
        """This run still holds the job: the claim it began with (a later claim of the job,
        even by this process after the lease ran out, counts one more attempt)."""
        return (
            current.state is JobState.RUNNING
            and current.lease_owner == self.deps.owner
            and current.attempts == self.job.attempts
        )

    async def _outcome(self) -> Outcome:
        if self._producer is None:  # stopped before it began
            return self.stopped
        try:
            await self._producer
        except asyncio.CancelledError:
            if self.stopped is None:  # the run itself was cancelled: the job waits for a worker
                self.stopped = Stop.SHUTDOWN
            return self.stopped
        except DomainError as exc:
            return job_error(exc)
        except OSError as exc:
            return directory_error(exc)
        except Exception as exc:  # a bug: logged whole, recorded without detail
            _log.error("export_job_crashed", job=self.job.name, exc_info=exc)
            return JobError("INTERNAL", "INTERNAL", "internal error; quote the job name")
        return self.stopped

    async def run(self) -> ExportJob:
        """Runs the job to its end and returns it as recorded (unchanged if the lease was lost)."""
        runs = self.deps.runs
        runs.tasks[self.job.name] = lambda: self.stop(Stop.CANCEL)
        EXPORT_JOBS.labels("running").inc()
        EXPORT_JOBS_RUNNING.inc()
        if self.stopped is None:
            self._producer = asyncio.create_task(self._produce())
        heart = asyncio.create_task(self._heartbeat())
        try:
            outcome = await self._outcome()
        finally:
            heart.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heart
            runs.tasks.pop(self.job.name, None)
            EXPORT_JOBS_RUNNING.dec()
        return await asyncio.shield(self._settle(outcome))

    def _ended(self, current: ExportJob, outcome: Outcome) -> ExportJob:
        """The job as it ends after `outcome` (the sink not committed)."""
        deps, now = self.deps, self.deps.clock()
        counts = replace(
            current,
            exported_count=self.exported,
            blocked_skipped_count=self.blocked,
            total_count=self.total,
            lease_owner="",
            lease_expires=None,
            update_time=now,
        )
        if current.cancel_requested or outcome is Stop.CANCEL:
            return cancelled(counts, now)
        if outcome is Stop.SHUTDOWN:
            # not the job's fault: this attempt does not count
            return replace(counts, state=JobState.PENDING, attempts=max(current.attempts - 1, 0))
        if outcome is Stop.READER_GONE:
            return replace(counts, state=JobState.FAILED, error=READER_GONE)
        assert isinstance(outcome, JobError)
        state = JobState.FAILED
        if retryable(outcome) and current.destination is Destination.FILE:
            state = retry_or_fail(current)
        retry_at = now + timedelta(seconds=deps.settings.retry_seconds)
        return replace(
            counts,
            state=state,
            error=outcome,
            not_before=retry_at if state is JobState.PENDING else None,
        )

    async def _settle(self, outcome: Outcome) -> ExportJob:
        """Records how the run ended (retried when the store was busy with a concurrent
        change); what was written is discarded unless it was committed."""
        final = self.job
        try:
            if outcome is not None:
                # what was written will not be committed: gone before the end is recorded, so
                # that whoever sees the job ended (a cancel waiting for it) sees no partial file
                await self._discard()
            if outcome is not Stop.LEASE_LOST:
                for attempt in range(1, SETTLE_ATTEMPTS + 1):
                    try:
                        final = await self._record(outcome)
                        break
                    except Aborted:
                        if attempt == SETTLE_ATTEMPTS:
                            raise
                        await asyncio.sleep(0.1 * attempt)
        finally:
            await self._discard()
        if final.state is not JobState.RUNNING:
            EXPORT_JOBS.labels(final.state.value.lower()).inc()
        _log.info("export_job_ended", job=self.job.name, state=final.state.value,
                  exported=self.exported, blocked=self.blocked)  # fmt: skip
        return final

    async def _discard(self) -> None:
        """Drops what was written unless it was committed (once)."""
        sink, self._sink = self._sink, None
        if sink is not None and not self._committed:
            with contextlib.suppress(OSError):
                await sink.discard()

    async def _still_ours(self) -> bool:
        job = self.job
        async with self.deps.store.transaction() as tx:
            current = await tx.get(job.project, job.job_id)
        return current is not None and self._holds(current) and not current.cancel_requested

    async def _record(self, outcome: Outcome) -> ExportJob:
        """When the CSV is whole, the sink is committed first (a file renamed into place),
        outside any transaction; then the end is recorded holding the job's row. A cancel
        that arrived meanwhile still wins: the file is deleted. Whatever is not kept is gone
        before the end is recorded."""
        job = self.job
        if outcome is None and not self._committed:
            if await self._still_ours():
                try:
                    if self._sink is not None:
                        await self._sink.commit()
                    self._committed = True
                except OSError as exc:
                    outcome = directory_error(exc)
            if not self._committed:  # cancelled, taken over, or the commit failed
                await self._discard()
        async with self.deps.store.transaction() as tx:
            current = await tx.get(job.project, job.job_id, lock=True)
            if current is None or not self._holds(current):
                # another worker took the job over: record nothing (a whole file of the same
                # rows may stay; that worker's own file replaces it)
                return job
            if outcome is None and self._committed and not current.cancel_requested:
                final = self._succeeded(current)
            else:
                final = self._ended(current, outcome if outcome is not None else Stop.CANCEL)
                if self._committed and job.destination is Destination.FILE:
                    # a cancel that came as the file was renamed into place: deleted before
                    # CANCELLED is recorded (a rare race; the row is held over one unlink)
                    with contextlib.suppress(OSError):
                        await self.deps.files.delete(output_path(job.project, job.job_id))
            await tx.update(final)
        return final

    def _succeeded(self, current: ExportJob) -> ExportJob:
        now = self.deps.clock()
        file = current.destination is Destination.FILE
        ttl = timedelta(seconds=self.deps.settings.file_ttl_seconds)
        return replace(
            current,
            state=JobState.SUCCEEDED,
            exported_count=self.exported,
            blocked_skipped_count=self.blocked,
            # what was gone through: the count taken at the start, unless data changed since
            total_count=self.exported + self.blocked,
            output_path=output_path(current.project, current.job_id) if file else "",
            expire_time=now + ttl if file else None,
            error=None,  # an earlier attempt's error is history now
            lease_owner="",
            lease_expires=None,
            update_time=now,
        )
