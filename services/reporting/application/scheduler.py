"""The scheduler inside the reporting service: every poll interval, for each project, runs
the latest day whose local midnight plus the configured delay has passed, unless that day
already has a run (a RUNNING run whose lease ran out is resumed), and the days missed since
the project's latest run (at most a week: no scheduler ran); then back-fills new or changed
segments.

Several reporting processes may run the scheduler: a day is claimed in the run log, so each
project's day runs once (`DailyJob`), and a back-fill is claimed the same way (`Backfills`).
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

from libs.common.errors import DomainError
from libs.common.logging import get_logger
from services.reporting.application.backfill import Backfills
from services.reporting.application.context import Deps
from services.reporting.application.daily import DailyJob
from services.reporting.domain.days import days, due_day
from services.reporting.domain.runs import RunState

_log = get_logger("segments.reporting")
#: days missed while no scheduler ran (since a project's latest run) that are run on return
CATCH_UP_DAYS = 7


class Scheduler:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self.job = DailyJob(deps)
        self.backfills = Backfills(deps)
        self._task: asyncio.Task[None] | None = None
        self.wake = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="reporting-scheduler")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        # the first pass waits one interval: the port this process serves (and its peers
        # in `serve all`) opens after the services have started
        while True:
            self.wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), self.deps.settings.poll_seconds)
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                _log.warning("reporting_pass_failed", error=str(exc))

    async def tick(self) -> None:
        """One pass over every project: its due day, then its back-fills."""
        for project in await self.deps.catalog.projects():
            try:
                await self._due_day(project)
                await self.backfills.pass_project(project)
            except DomainError as exc:
                _log.warning("reporting_project_pass_failed", project=project, error=exc.message)

    async def _due_day(self, project: str) -> None:
        """Runs the due day, and the days missed since the project's latest run (a process
        that was down), at most CATCH_UP_DAYS back."""
        deps = self.deps
        zone = await deps.catalog.time_zone(project)
        now = deps.clock()
        due = due_day(now, zone, deps.settings.schedule_delay)
        async with deps.runs.transaction() as tx:
            latest = await tx.page(project, 1, None)
        first = due
        if latest and latest[0].day < due:
            first = max(latest[0].day + timedelta(days=1), due - timedelta(days=CATCH_UP_DAYS - 1))
        for day in days(first, due):
            async with deps.runs.transaction() as tx:
                run = await tx.get(project, day)
            if run is not None and (
                run.state is not RunState.RUNNING or run.held_by_other(deps.owner, now)
            ):
                continue
            await self.job.run_day(project, day, rerun=False)
