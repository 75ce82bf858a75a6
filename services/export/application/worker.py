"""The worker of an export process: claims FILE jobs (with a lease) and runs them, takes over
jobs whose worker went away, deletes expired files and ends the STREAM jobs nobody read.

Claims are serialised over every process sharing the store (`JobTransaction.lock_claims`),
so the running-job limits hold however many processes share the work, and a job is claimed
by one worker at a time: a claim is a RUNNING state with this worker's lease, renewed by the
run's heartbeat; only a lease that ran out lets another worker take the job.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import replace
from datetime import timedelta

from libs.common.errors import DomainError
from libs.common.logging import get_logger
from libs.common.metrics import EXPORT_JOBS
from services.export.application.context import Deps
from services.export.application.running import JobRun, Stop
from services.export.domain.jobs import (
    STREAM_LOST,
    STREAM_NOT_READ,
    WORKER_LOST,
    Destination,
    ExportJob,
    JobState,
    after_lost_worker,
    cancelled,
    may_start,
    output_path,
)
from services.export.domain.ports import JobTransaction

_log = get_logger("segments.export")
#: jobs looked at per claim
CLAIM_WINDOW = 50


def _lapsed_end(job: ExportJob, now_job: ExportJob) -> ExportJob | None:
    """A RUNNING job whose lease ran out, as it ends without running again (None: it runs
    again as a new attempt)."""
    if job.cancel_requested:
        return cancelled(now_job, now_job.update_time)
    if job.destination is Destination.STREAM:
        return replace(now_job, state=JobState.FAILED, error=STREAM_LOST)
    if after_lost_worker(job) is JobState.FAILED:
        return replace(now_job, state=JobState.FAILED, error=WORKER_LOST)
    return None


async def claim(deps: Deps, tx: JobTransaction, job: ExportJob) -> ExportJob:
    """`job` RUNNING under this worker's lease, as a new attempt (inside `tx`, which holds
    the claim lock)."""
    now = deps.clock()
    claimed = replace(
        job,
        state=JobState.RUNNING,
        attempts=job.attempts + 1,
        lease_owner=deps.owner,
        lease_expires=now + timedelta(seconds=deps.settings.lease_seconds),
        not_before=None,
        update_time=now,
    )
    await tx.update(claimed)
    return claimed


async def claim_next(deps: Deps) -> tuple[ExportJob | None, list[ExportJob]]:
    """The oldest FILE job that may start now, claimed; and the jobs whose worker went away
    that were ended instead of run again (their partial files are to be removed)."""
    now = deps.clock()
    ended: list[ExportJob] = []
    async with deps.store.transaction() as tx:
        await tx.lock_claims()
        running = await tx.running(now)
        for job in await tx.claimable(now, CLAIM_WINDOW):
            if job.state is JobState.RUNNING:
                end = _lapsed_end(job, replace(job, lease_owner="", lease_expires=None,
                                               update_time=now))  # fmt: skip
                if end is not None:
                    await tx.update(end)
                    ended.append(end)
                    continue
            if may_start(job, running, deps.settings.max_running_per_project):
                return await claim(deps, tx, job), ended
    return None, ended


async def expire_files(deps: Deps) -> int:
    """Deletes the files whose time ran out and records it on their jobs; returns how many."""
    now = deps.clock()
    async with deps.store.transaction() as tx:
        due = await tx.expiring(now, 100)
    for job in due:
        await deps.files.delete(job.output_path)
        async with deps.store.transaction() as tx:
            current = await tx.get(job.project, job.job_id, lock=True)
            if current is not None and not current.expired:
                await tx.update(replace(current, expired=True, update_time=deps.clock()))
    return len(due)


async def end_unread_streams(deps: Deps) -> int:
    """Fails the STREAM jobs that nobody streamed within `stream_wait_seconds` of their
    creation; returns how many (a reader claiming one meanwhile wins: claims are serialised)."""
    now = deps.clock()
    before = now - timedelta(seconds=deps.settings.stream_wait_seconds)
    ended = 0
    async with deps.store.transaction() as tx:
        await tx.lock_claims()
        for job in await tx.unread_streams(before, 100):
            await tx.update(replace(job, state=JobState.FAILED, error=STREAM_NOT_READ,
                                    update_time=now))  # fmt: skip
            ended += 1
    EXPORT_JOBS.labels("failed").inc(ended)
    return ended


class Worker:
    """`settings.workers` job slots and a janitor, from `start()` until `stop()`."""

    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self._tasks: list[asyncio.Task[None]] = []
        self._runs: set[JobRun] = set()
        self._stopping = False

    async def start(self) -> None:
        workers = self.deps.settings.workers
        self._tasks = [asyncio.create_task(self._slot()) for _ in range(workers)]
        if workers:
            self._tasks.append(asyncio.create_task(self._janitor()))

    async def stop(self) -> None:
        """Running jobs stop and go back to PENDING for the next worker; partial files are
        removed."""
        self._stopping = True
        for run in list(self._runs):
            run.stop(Stop.SHUTDOWN)
        self.deps.runs.wake.set()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    async def _idle(self) -> None:
        wake = self.deps.runs.wake
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), self.deps.settings.poll_seconds)
        wake.clear()

    async def _slot(self) -> None:
        while not self._stopping:
            try:
                job, ended = await claim_next(self.deps)
                for gone in ended:
                    await self.deps.files.delete_partial(output_path(gone.project, gone.job_id))
            except DomainError as exc:  # the store is away: look again later
                _log.warning("export_claim_failed", error=exc.message)
                job = None
            if job is None:
                await self._idle()
                continue
            await self._run(job)

    async def _run(self, job: ExportJob) -> None:
        path = output_path(job.project, job.job_id)
        run = JobRun(self.deps, job, lambda: self.deps.files.create(path, job.attempts))
        self._runs.add(run)
        if self._stopping:
            run.stop(Stop.SHUTDOWN)
        try:
            await run.run()
        except DomainError as exc:  # the outcome could not be recorded: the lease will run out
            _log.warning("export_job_not_recorded", job=job.name, error=exc.message)
        finally:
            self._runs.discard(run)

    async def _janitor(self) -> None:
        while not self._stopping:
            try:
                await expire_files(self.deps)
                await end_unread_streams(self.deps)
            except (DomainError, OSError) as exc:
                _log.warning("export_expiry_failed", error=str(exc))
            for _ in range(10):  # about every 10 polls, but stop promptly
                if self._stopping:
                    return
                await asyncio.sleep(self.deps.settings.poll_seconds)
