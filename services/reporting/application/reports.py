"""The reports: a segment's trend, reachability, sample users, live rate, and the run log."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import NamedTuple

from libs.common.errors import FailedPrecondition, InvalidArgument, NotFound
from services.reporting.application.context import Deps
from services.reporting.domain.days import (
    MAX_DAYS,
    check_day,
    day_bounds,
    day_of,
    days,
    first_complete_day,
    yesterday,
)
from services.reporting.domain.figures import (
    CHANNELS,
    SAMPLE_SIZE,
    DayCount,
    DayFigures,
    Source,
)
from services.reporting.domain.names import segment_project
from services.reporting.domain.ports import LiveMinute
from services.reporting.domain.runs import DailyRun, parse_run_name

MAX_RUNS_PAGE = 100
DEFAULT_RUNS_PAGE = 20
DEFAULT_SAMPLE = 10
DEFAULT_LIVE_RANGE = timedelta(hours=1)


class TrendPoint(NamedTuple):
    day: date
    figures: DayCount | None  # None: not computed yet


@dataclass(frozen=True)
class ReachabilityReport:
    user_count: int
    reachable: dict[str, int]
    as_of: datetime


def check_range(start: date, end: date) -> None:
    if end < start:
        raise InvalidArgument.field("end_date", "must not be before start_date")
    if (end - start).days + 1 > MAX_DAYS:
        raise InvalidArgument.field("start_date", f"at most {MAX_DAYS} days per trend")


def _points(start: date, end: date, found: list[DayCount]) -> list[TrendPoint]:
    stored = {f.day: f for f in found}
    return [TrendPoint(d, stored.get(d)) for d in days(start, end)]


class Reports:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    async def trend(self, segment: str, start: date | None, end: date | None) -> list[TrendPoint]:
        project = segment_project(segment)
        if start is not None and end is not None:
            # both days given: the segment's existence and the stored days read at once
            check_range(start, end)
            _, found = await asyncio.gather(
                self.deps.catalog.segment(segment),
                self.deps.figures.counts(project, segment, start, end),
            )
            return _points(start, end, found)
        info = await self.deps.catalog.segment(segment)
        zone = await self.deps.catalog.time_zone(project)
        first = start or first_complete_day(info.create_time, zone)
        last = end or yesterday(self.deps.clock(), zone)
        if last < first:
            return []
        check_range(first, last)
        found = await self.deps.figures.counts(project, segment, first, last)
        return _points(first, last, found)

    async def reachability(self, segment: str, day: date | None) -> ReachabilityReport:
        project = segment_project(segment)
        if day is not None:
            stored = await self._stored_day(project, segment, day)
            return ReachabilityReport(stored.user_count, dict(stored.reachable), stored.as_of)
        now = self.deps.clock()
        figures = await self._now(project, segment, now, 0)
        return ReachabilityReport(figures.user_count, dict(figures.reachable), now)

    async def sample_users(self, segment: str, day: date | None, size: int) -> list[object]:
        project = segment_project(segment)
        if not 0 <= size <= SAMPLE_SIZE:
            raise InvalidArgument.field("page_size", f"must be 0 to {SAMPLE_SIZE}")
        size = size or DEFAULT_SAMPLE
        if day is not None:
            ids = list((await self._stored_day(project, segment, day)).sample[:size])
        else:
            ids = list((await self._now(project, segment, self.deps.clock(), size)).sample)
        return await self.deps.source.profiles(project, ids)

    async def live_rate(
        self, segment: str, start: datetime | None, end: datetime | None
    ) -> list[LiveMinute]:
        segment_project(segment)
        for value, field in ((start, "start_time"), (end, "end_time")):
            if value is not None:
                check_day(value.date(), field)
        info = await self.deps.catalog.segment(segment)
        if not info.live:
            raise FailedPrecondition(f"{segment} is not a live segment", reason="NOT_LIVE")
        last = end or self.deps.clock()
        first = start or last - DEFAULT_LIVE_RANGE
        if first >= last:
            raise InvalidArgument.field("end_time", "must be later than start_time")
        return await self.deps.source.live_minutes(segment, first, last)

    async def _stored_day(self, project: str, segment: str, day: date) -> DayFigures:
        await self.deps.catalog.segment(segment)
        found = await self.deps.figures.read(project, segment, day, day)
        if not found:
            raise NotFound(
                f"{segment} has no figures for {day.isoformat()} yet (the daily job or a "
                "back-fill computes them)",
                reason="DAY_NOT_COMPUTED",
            )
        return found[0]

    async def _now(self, project: str, segment: str, now: datetime, sample: int) -> DayFigures:
        """The segment's figures computed now (live: its entries since today's start)."""
        await self.deps.catalog.segment(segment)
        zone = await self.deps.catalog.time_zone(project)
        today = day_of(now, zone)
        since = day_bounds(today, zone)[0]
        result = (await self.deps.source.compute(project, [segment], now, since, sample))[0]
        if isinstance(result, Exception):
            raise result
        return DayFigures(
            project, segment, today, result.user_count,
            {c: result.reachable.get(c, 0) for c in CHANNELS}, result.sample, now,
            Source.DAILY, "", now,
        )  # fmt: skip

    # -- the run log --------------------------------------------------------------------
    async def get_run(self, name: str) -> DailyRun:
        project, day = parse_run_name(name)
        async with self.deps.runs.transaction() as tx:
            run = await tx.get(project, day)
        if run is None:
            raise NotFound(f"daily run {name} not found")
        return run

    async def list_runs(
        self, project: str, page_size: int, page_token: str
    ) -> tuple[list[DailyRun], str]:
        if not 0 <= page_size <= MAX_RUNS_PAGE:
            raise InvalidArgument.field("page_size", f"must be 0 to {MAX_RUNS_PAGE}")
        size = page_size or DEFAULT_RUNS_PAGE
        before = None
        if page_token:
            try:
                before = check_day(date.fromisoformat(page_token), "page_token")
            except ValueError as exc:
                raise InvalidArgument.field(
                    "page_token", "not a token from a previous page"
                ) from exc
        async with self.deps.runs.transaction() as tx:
            found = await tx.page(project, size + 1, before)
        token = found[size - 1].day.isoformat() if len(found) > size else ""
        return found[:size], token
