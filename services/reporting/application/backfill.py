"""Back-fills of new and changed segments (see domain.backfill), run by the scheduler.

Each pass plans a back-fill for every segment whose definition version has none yet (a new
segment, or a definition that changed), then works through the project's claimable ones:
claimed with a lease in the run log (one process at a time), advanced by runs of up to
`backfill_days_per_call` days (one ComputeDailyFigures call each; their figures written
before `next_day` moves past them), released with back-off on a failure.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

from libs.common import metrics
from libs.common.errors import DomainError, NotFound
from libs.common.logging import get_logger
from services.reporting.application.context import Deps
from services.reporting.domain.backfill import Backfill, BackfillState, plan
from services.reporting.domain.days import day_as_of, days
from services.reporting.domain.figures import SAMPLE_SIZE, DayFigures, Source

_log = get_logger("segments.reporting")


class Backfills:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    async def pass_project(self, project: str) -> None:
        await self.plan_project(project)
        deps = self.deps
        async with deps.runs.transaction() as tx:
            found = await tx.backfills(project)
        for backfill in found:
            if backfill.claimable(deps.clock()):
                claimed = await self._claim(backfill)
                if claimed is not None:
                    await self.run(claimed)

    async def plan_project(self, project: str) -> list[Backfill]:
        """Plans the back-fills of the project's new or changed segments; returns them."""
        deps = self.deps
        zone = await deps.catalog.time_zone(project)
        planned: list[Backfill] = []
        for segment in await deps.catalog.segments(project):
            async with deps.runs.transaction() as tx:
                current = await tx.get_backfill(project, segment.name, lock=True)
                if current is not None and (
                    current.definition_version == segment.definition_version
                ):
                    continue
                backfill = plan(
                    project, segment.name, segment.definition_version, segment.create_time,
                    deps.clock(), zone, deps.settings.backfill_days,
                )  # fmt: skip
                await tx.put_backfill(backfill)
                planned.append(backfill)
        return planned

    async def _claim(self, backfill: Backfill) -> Backfill | None:
        deps = self.deps
        now = deps.clock()
        async with deps.runs.transaction() as tx:
            current = await tx.get_backfill(backfill.project, backfill.segment, lock=True)
            if current is None or not current.claimable(now):
                return None
            claimed = replace(
                current,
                lease_owner=deps.owner,
                lease_expires=now + timedelta(seconds=deps.settings.lease_seconds),
            )
            await tx.put_backfill(claimed)
        return claimed

    async def _save(self, backfill: Backfill) -> bool:
        """Records progress while this process still holds the back-fill (and renews its
        lease); False when it does not (taken over, or replaced by a newer definition)."""
        deps = self.deps
        async with deps.runs.transaction() as tx:
            current = await tx.get_backfill(backfill.project, backfill.segment, lock=True)
            if (
                current is None
                or current.lease_owner != deps.owner
                or current.definition_version != backfill.definition_version
            ):
                return False
            if backfill.state is BackfillState.PENDING and backfill.lease_expires is not None:
                expires = deps.clock() + timedelta(seconds=deps.settings.lease_seconds)
                backfill = replace(backfill, lease_expires=expires)
            await tx.put_backfill(backfill)
        return True

    async def run(self, backfill: Backfill) -> Backfill:
        """Computes the back-fill's remaining days (as long as it holds it)."""
        deps = self.deps
        project, segment = backfill.project, backfill.segment
        zone = await deps.catalog.time_zone(project)
        done = {
            f.day
            for f in await deps.figures.counts(
                project, segment, backfill.next_day, backfill.end_day
            )
            if f.definition_version == backfill.definition_version
        }
        per_call = max(1, min(deps.settings.backfill_days_per_call, 100))
        while backfill.next_day <= backfill.end_day:
            last = min(backfill.end_day, backfill.next_day + timedelta(days=per_call - 1))
            todo = [d for d in days(backfill.next_day, last) if d not in done]
            if todo:
                try:
                    await self._days(backfill, todo, zone)
                except DomainError as exc:
                    return await self._failed(backfill, exc)
            backfill = replace(backfill, next_day=last + timedelta(days=1), attempts=0, reason="")
            if not await self._save(backfill):
                return backfill
        finished = replace(backfill, state=BackfillState.DONE, lease_owner="", lease_expires=None)
        await self._save(finished)
        _log.info("backfill_done", segment=segment, start=str(backfill.start_day),
                  end=str(backfill.end_day))  # fmt: skip
        return finished

    async def _days(self, backfill: Backfill, todo: list[date], zone: str) -> None:
        """Computes and writes the figures of the days `todo` (ascending), in one call to
        the evaluator for the days from the first to the last."""
        deps = self.deps
        first = todo[0]
        count = (todo[-1] - first).days + 1
        computed = await deps.source.compute_days(backfill.segment, first, count, SAMPLE_SIZE)
        wanted = set(todo)
        rows = [
            DayFigures(
                project=backfill.project, segment=backfill.segment, day=day,
                user_count=result.user_count, reachable=result.reachable, sample=result.sample,
                as_of=day_as_of(day, zone), source=Source.BACKFILL,
                definition_version=backfill.definition_version, computed_at=deps.clock(),
            )
            for day, result in zip(days(first, todo[-1]), computed, strict=True)
            if day in wanted
        ]  # fmt: skip
        await deps.figures.write(rows)
        metrics.DAILY_RUN_SEGMENTS.labels("backfilled").inc(len(rows))

    async def _failed(self, backfill: Backfill, exc: DomainError) -> Backfill:
        deps = self.deps
        attempts = backfill.attempts + 1
        gives_up = isinstance(exc, NotFound) or deps.settings.retry.gives_up(attempts)
        failed = replace(
            backfill,
            attempts=attempts,
            reason=exc.message,
            state=BackfillState.FAILED if gives_up else BackfillState.PENDING,
            lease_expires=None,
            not_before=None if gives_up else deps.clock() + deps.settings.retry.delay(attempts),
        )
        await self._save(failed)
        _log.warning("backfill_failed", segment=backfill.segment, attempts=attempts,
                     error=exc.message, gives_up=gives_up)  # fmt: skip
        return failed
