"""The stored figures, with the trends this process read kept for reuse.

A trend's range read of stored days costs more than the rest of its call. `VersionedFigures`
wraps the figure store: every write of figures is followed by a new version of the written
segments in the run log, which every reporting process shares; the days a trend read are
reused while their segment's version is still the one read before them. Reading the version
first keeps it exact: a write landing between the version and the days is followed by a newer
version, so the next call reads again. Only a process stopped between a write and its new
version would leave the others on the older days: until the segment's next write, and never
longer than `max_age_seconds`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import date

from services.reporting.domain.figures import DayCount, DayFigures
from services.reporting.domain.ports import FigureStore, RunLog

#: trends kept (each up to a few hundred days)
MAX_ENTRIES = 1_000
#: how long a kept trend is reused at most, whatever its version
MAX_AGE_SECONDS = 60.0


class VersionedFigures:
    """`FigureStore` over another one, with versions in the run log (see the module)."""

    def __init__(
        self,
        inner: FigureStore,
        runs: RunLog,
        max_age_seconds: float = MAX_AGE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.inner = inner
        self.runs = runs
        self.max_age = max_age_seconds
        self._clock = clock
        self._kept: dict[tuple[str, str, date, date], tuple[int, float, list[DayCount]]] = {}

    async def write(self, rows: Sequence[DayFigures]) -> None:
        await self.inner.write(rows)
        written: dict[str, set[str]] = {}
        for row in rows:
            written.setdefault(row.project, set()).add(row.segment)
        if not written:
            return
        async with self.runs.transaction() as tx:
            for project, segments in written.items():
                await tx.bump_figures(project, sorted(segments))

    async def read(self, project: str, segment: str, start: date, end: date) -> list[DayFigures]:
        return await self.inner.read(project, segment, start, end)

    async def counts(self, project: str, segment: str, start: date, end: date) -> list[DayCount]:
        async with self.runs.transaction() as tx:
            version = await tx.figures_version(project, segment)
        key = (project, segment, start, end)
        now = self._clock()
        kept = self._kept.get(key)
        if kept is not None and kept[0] == version and now - kept[1] < self.max_age:
            return list(kept[2])
        found = await self.inner.counts(project, segment, start, end)
        if len(self._kept) >= MAX_ENTRIES:
            self._kept.clear()
        self._kept[key] = (version, now, found)
        return list(found)
