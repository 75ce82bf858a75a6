"""What the reporting service needs from outside: segments (definition service), figures
computed as of an instant (evaluator), its run log (SQL store) and its daily figures
(ClickHouse tables)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import date, datetime
from typing import Protocol

from libs.common.errors import DomainError
from services.reporting.domain.backfill import Backfill
from services.reporting.domain.figures import DayCount, DayFigures
from services.reporting.domain.runs import DailyRun, SegmentPart


@dataclass(frozen=True)
class SegmentInfo:
    name: str  # projects/{project}/segments/{segment}
    live: bool
    create_time: datetime
    #: changes exactly when the definition changes (a hash of it)
    definition_version: str


@dataclass(frozen=True)
class ComputedFigures:
    user_count: int
    reachable: Mapping[str, int]
    sample: tuple[str, ...]


@dataclass(frozen=True)
class LiveMinute:
    minute: datetime
    entered: int
    active: int


class SegmentCatalog(Protocol):
    async def segments(self, project: str) -> list[SegmentInfo]:
        """Every segment of the project."""
        ...

    async def segment(self, name: str) -> SegmentInfo:
        """One segment; NotFound when it does not exist."""
        ...

    async def time_zone(self, project: str) -> str: ...

    async def projects(self) -> list[str]:
        """Every project (ids)."""
        ...


class FigureSource(Protocol):
    async def compute(
        self,
        project: str,
        segments: Sequence[str],
        as_of: datetime,
        entered_since: datetime,
        sample_size: int,
    ) -> list[ComputedFigures | DomainError]:
        """Each segment's figures as of `as_of` (live: entered since `entered_since`), or why
        it could not be computed, in order."""
        ...

    async def compute_days(
        self, segment: str, first_day: date, day_count: int, sample_size: int
    ) -> list[ComputedFigures]:
        """The segment's figures as of the end of each of `day_count` consecutive days from
        `first_day` (the project's time zone), in day order; a DomainError when they could
        not be computed."""
        ...

    async def live_minutes(
        self, segment: str, start: datetime, end: datetime
    ) -> list[LiveMinute]: ...

    async def profiles(self, project: str, user_ids: Sequence[str]) -> list[object]:
        """The users' profiles (the evaluator's messages, passed through)."""
        ...


class RunTransaction(Protocol):
    async def get(self, project: str, day: date, *, lock: bool = False) -> DailyRun | None: ...

    async def put(self, run: DailyRun) -> None: ...

    async def parts(self, project: str, day: date) -> list[SegmentPart]: ...

    async def replace_parts(
        self, project: str, day: date, parts: Sequence[SegmentPart]
    ) -> None: ...

    async def put_part(self, project: str, day: date, part: SegmentPart) -> None: ...

    async def figures_version(self, project: str, segment: str) -> int:
        """The version of the segment's stored figures (0 before any write)."""
        ...

    async def bump_figures(self, project: str, segments: Sequence[str]) -> None:
        """A new version of the segments' stored figures (after a write of them)."""
        ...

    async def page(self, project: str, size: int, before: date | None) -> list[DailyRun]:
        """Newest day first, days strictly before `before`."""
        ...

    async def get_backfill(
        self, project: str, segment: str, *, lock: bool = False
    ) -> Backfill | None: ...

    async def backfills(self, project: str) -> list[Backfill]: ...

    async def put_backfill(self, backfill: Backfill) -> None: ...


class RunLog(Protocol):
    def transaction(self) -> AbstractAsyncContextManager[RunTransaction]:
        """One transaction: committed when the block ends, rolled back on any exception."""
        ...


class FigureStore(Protocol):
    async def write(self, rows: Sequence[DayFigures]) -> None:
        """Stores days' figures, replacing those of the same project, segment and day."""
        ...

    async def read(self, project: str, segment: str, start: date, end: date) -> list[DayFigures]:
        """The stored days of a segment in [start, end], oldest first."""
        ...

    async def counts(self, project: str, segment: str, start: date, end: date) -> list[DayCount]:
        """The stored days' sizes of a segment in [start, end], oldest first (a trend)."""
        ...
