"""Daily runs: the run log of one project's day, and each segment's part in it.

A run is RUNNING while a process holds its lease (renewed as it works), then SUCCEEDED
(every segment computed) or FAILED (some segments failed after their retries; the others
are computed). Running a day again starts a new attempt over the segments of that moment;
a RUNNING run whose lease ran out (its process stopped) is resumed by the next claim: the
segments already computed are kept.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import date, datetime

from libs.common.errors import InvalidArgument
from services.reporting.domain.days import check_day
from services.reporting.domain.names import parse_project


class RunState(enum.StrEnum):
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"


class PartState(enum.StrEnum):
    PENDING = "PENDING"
    DONE = "DONE"
    FAILED = "FAILED"


@dataclass(frozen=True)
class SegmentFailure:
    segment: str
    reason: str
    attempts: int


@dataclass(frozen=True)
class SegmentPart:
    """One segment of a run."""

    segment: str
    state: PartState = PartState.PENDING
    attempts: int = 0
    reason: str = ""


@dataclass(frozen=True)
class DailyRun:
    project: str
    day: date
    state: RunState
    attempt_count: int
    start_time: datetime
    end_time: datetime | None = None
    succeeded_count: int = 0
    failures: tuple[SegmentFailure, ...] = field(default_factory=tuple)
    lease_owner: str = ""
    lease_expires: datetime | None = None

    @property
    def name(self) -> str:
        return run_name(self.project, self.day)

    def held_by_other(self, owner: str, now: datetime) -> bool:
        """Whether another process is running it now (its lease is live)."""
        return (
            self.state is RunState.RUNNING
            and self.lease_owner != owner
            and self.lease_expires is not None
            and self.lease_expires > now
        )


def run_name(project: str, day: date) -> str:
    return f"projects/{project}/dailyRuns/{day.isoformat()}"


def parse_run_name(name: str, field_name: str = "name") -> tuple[str, date]:
    parts = name.split("/")
    if len(parts) != 4 or parts[0] != "projects" or parts[2] != "dailyRuns":
        raise InvalidArgument.field(field_name, "must be projects/{project}/dailyRuns/{yyyy-mm-dd}")
    parse_project("/".join(parts[:2]), field_name)
    try:
        day = date.fromisoformat(parts[3])
    except ValueError as exc:
        raise InvalidArgument.field(field_name, "the run's day must be yyyy-mm-dd") from exc
    return parts[1], check_day(day, field_name)


def outcome(parts: list[SegmentPart]) -> tuple[RunState, int, tuple[SegmentFailure, ...]]:
    """A finished run's state, computed count and failures from its segments' parts."""
    failures = tuple(
        SegmentFailure(p.segment, p.reason, p.attempts)
        for p in sorted(parts, key=lambda p: p.segment)
        if p.state is PartState.FAILED
    )
    done = sum(1 for p in parts if p.state is PartState.DONE)
    return (RunState.FAILED if failures else RunState.SUCCEEDED), done, failures
