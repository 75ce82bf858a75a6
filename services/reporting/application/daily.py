"""The daily job: every segment's figures for one project's day, with the run log.

A run is claimed in one transaction of the run log (only one process holds a project's day
at a time: its lease, renewed while it works). The segments of that moment become the run's
parts; they are sent to the evaluator in batches (one ComputeSegmentFigures call each, as of
the day's last millisecond), and each batch's figures are written to ClickHouse before its
parts are marked done, so that a run resumed after a restart computes only what is left. A
segment that fails is retried with back-off; after the last attempt it is reported in the
run's failures, and the others complete. A caller that finds the day held by another process
waits for that run to end and answers with it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import replace
from datetime import date, timedelta

from libs.common import metrics
from libs.common.errors import Aborted, DomainError, FailedPrecondition
from libs.common.logging import get_logger
from services.reporting.application.context import Deps
from services.reporting.domain.days import day_as_of, day_bounds
from services.reporting.domain.figures import SAMPLE_SIZE, DayFigures, Source
from services.reporting.domain.ports import ComputedFigures, RunTransaction, SegmentInfo
from services.reporting.domain.runs import DailyRun, PartState, RunState, SegmentPart, outcome

_log = get_logger("segments.reporting")


class LeaseLost(Aborted):
    """Another process took the run over (this one stalled past its lease)."""


class DailyJob:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    async def run_day(self, project: str, day: date, *, rerun: bool = True) -> DailyRun:
        """Runs (or re-runs, or resumes) `day` of `project` and answers with the run once it
        ended; when another process holds the day, waits for its run instead. Without
        `rerun`, a day that already has an ended run is left as it is (the scheduler)."""
        deps = self.deps
        zone = await deps.catalog.time_zone(project)
        if day_bounds(day, zone)[1] > deps.clock():
            raise FailedPrecondition(
                f"{day.isoformat()} is not over yet in the project's time zone ({zone})",
                reason="DAY_NOT_OVER",
            )
        while True:
            segments = await deps.catalog.segments(project)
            claimed = await self._claim(project, day, segments, rerun)
            if isinstance(claimed, DailyRun):
                return claimed
            if claimed is not None:
                run, parts = claimed
                return await self._work(run, parts, {s.name: s for s in segments}, zone)
            waited = await self._wait(project, day)
            if waited is not None:
                return waited

    async def _claim(
        self, project: str, day: date, segments: Sequence[SegmentInfo], rerun: bool
    ) -> tuple[DailyRun, list[SegmentPart]] | DailyRun | None:
        """The run claimed by this process with its parts; or the ended run (not `rerun`);
        or None while another process holds the day."""
        deps = self.deps
        now = deps.clock()
        async with deps.runs.transaction() as tx:
            current = await tx.get(project, day, lock=True)
            if current is not None and current.held_by_other(deps.owner, now):
                return None
            if current is not None and current.state is not RunState.RUNNING and not rerun:
                return current
            resume = current is not None and current.state is RunState.RUNNING
            run = DailyRun(
                project=project,
                day=day,
                state=RunState.RUNNING,
                attempt_count=(current.attempt_count if current else 0) + 1,
                start_time=now,
                lease_owner=deps.owner,
                lease_expires=now + timedelta(seconds=deps.settings.lease_seconds),
            )
            await tx.put(run)
            if not resume:
                await tx.replace_parts(project, day, [SegmentPart(s.name) for s in segments])
            parts = await tx.parts(project, day)
        metrics.DAILY_RUNS.labels("running").inc()
        return run, parts

    async def _wait(self, project: str, day: date) -> DailyRun | None:
        """Waits while another process holds the day: its ended run, or None when its lease
        ran out (the caller claims the day then)."""
        deps = self.deps
        while True:
            async with deps.runs.transaction() as tx:
                current = await tx.get(project, day)
            if current is None:
                return None
            if current.state is not RunState.RUNNING:
                return current
            if not current.held_by_other(deps.owner, deps.clock()):
                return None
            await asyncio.sleep(deps.settings.heartbeat_seconds)

    async def _work(
        self,
        run: DailyRun,
        parts: list[SegmentPart],
        segments: dict[str, SegmentInfo],
        zone: str,
    ) -> DailyRun:
        heartbeat = asyncio.create_task(self._heartbeat(run))
        try:
            pending = [p for p in parts if p.state is PartState.PENDING]
            while pending:
                retry: list[SegmentPart] = []
                size = max(1, self.deps.settings.batch_segments)
                for start in range(0, len(pending), size):
                    batch = pending[start : start + size]
                    retry += await self._batch(run, batch, segments, zone)
                    if heartbeat.done():
                        heartbeat.result()  # the lease was lost: stop here
                if retry:
                    failed = min(p.attempts for p in retry)
                    await asyncio.sleep(self.deps.settings.retry.delay(failed).total_seconds())
                pending = retry
        finally:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError, DomainError):
                await heartbeat
        return await self._finish(run)

    async def _batch(
        self,
        run: DailyRun,
        batch: list[SegmentPart],
        segments: dict[str, SegmentInfo],
        zone: str,
    ) -> list[SegmentPart]:
        """Computes one batch and records it; returns the parts to try again."""
        deps = self.deps
        start, _ = day_bounds(run.day, zone)
        as_of = day_as_of(run.day, zone)
        names = [p.segment for p in batch]
        results: list[ComputedFigures | DomainError]
        try:
            results = await deps.source.compute(run.project, names, as_of, start, SAMPLE_SIZE)
        except DomainError as exc:  # the whole call failed: every segment of it did
            results = [exc] * len(batch)
        now = deps.clock()
        rows: list[DayFigures] = []
        updated: list[SegmentPart] = []
        for part, result in zip(batch, results, strict=True):
            attempts = part.attempts + 1
            if isinstance(result, DomainError):
                gives_up = deps.settings.retry.gives_up(attempts)
                state = PartState.FAILED if gives_up else PartState.PENDING
                updated.append(replace(part, state=state, attempts=attempts, reason=result.message))
                if gives_up:
                    metrics.DAILY_RUN_SEGMENTS.labels("failed").inc()
                continue
            info = segments.get(part.segment)
            rows.append(
                DayFigures(
                    project=run.project, segment=part.segment, day=run.day,
                    user_count=result.user_count, reachable=result.reachable,
                    sample=result.sample, as_of=as_of, source=Source.DAILY,
                    definition_version=info.definition_version if info else "",
                    computed_at=now,
                )
            )  # fmt: skip
            updated.append(replace(part, state=PartState.DONE, attempts=attempts, reason=""))
            metrics.DAILY_RUN_SEGMENTS.labels("succeeded").inc()
        await deps.figures.write(rows)
        async with deps.runs.transaction() as tx:
            await self._check_lease(tx, run)
            for part in updated:
                await tx.put_part(run.project, run.day, part)
        return [p for p in updated if p.state is PartState.PENDING]

    async def _check_lease(self, tx: RunTransaction, run: DailyRun) -> DailyRun:
        current = await tx.get(run.project, run.day, lock=True)
        if current is None or current.lease_owner != self.deps.owner:
            raise LeaseLost(f"the run of {run.day.isoformat()} was taken over by another process")
        return current

    async def _heartbeat(self, run: DailyRun) -> None:
        deps = self.deps
        while True:
            await asyncio.sleep(deps.settings.heartbeat_seconds)
            async with deps.runs.transaction() as tx:
                current = await self._check_lease(tx, run)
                expires = deps.clock() + timedelta(seconds=deps.settings.lease_seconds)
                await tx.put(replace(current, lease_expires=expires))

    async def _finish(self, run: DailyRun) -> DailyRun:
        deps = self.deps
        async with deps.runs.transaction() as tx:
            current = await self._check_lease(tx, run)
            state, done, failures = outcome(await tx.parts(run.project, run.day))
            ended = deps.clock()
            finished = replace(
                current,
                state=state,
                succeeded_count=done,
                failures=failures,
                end_time=ended,
                lease_owner="",
                lease_expires=None,
            )
            await tx.put(finished)
        metrics.DAILY_RUNS.labels(state.value.lower()).inc()
        if state is RunState.SUCCEEDED:
            metrics.DAILY_RUN_LAST_SUCCESS.set(ended.timestamp())
        _log.info("daily_run_ended", run=finished.name, state=state.value, computed=done,
                  failed=len(failures))  # fmt: skip
        return finished
