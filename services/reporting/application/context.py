"""What the use cases work with: the ports, the settings and the clock."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from services.reporting.domain.ports import FigureSource, FigureStore, RunLog, SegmentCatalog
from services.reporting.domain.retry import RetryPolicy

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class ReportingSettings:
    """Timings and sizes (see the README's configuration table)."""

    #: segments sent to the evaluator in one ComputeSegmentFigures call
    batch_segments: int = 20
    #: a process that has not renewed a run's lease for this long is presumed gone
    lease_seconds: float = 60.0
    #: how often a running job renews its lease (and a waiting caller looks again)
    heartbeat_seconds: float = 5.0
    #: retries of a failing segment within a run
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    #: the scheduler runs a project's day this long after the project's local midnight
    schedule_delay: timedelta = timedelta(minutes=30)
    #: how often the scheduler and the back-fill worker look for work
    poll_seconds: float = 60.0
    #: the scheduler and the back-fill worker run in this process
    scheduler: bool = True
    #: days before a segment's creation its trend is back-filled from (0: from its first
    #: complete day)
    backfill_days: int = 30
    #: days of a back-fill computed in one ComputeDailyFigures call (1 to 100)
    backfill_days_per_call: int = 100


@dataclass
class Deps:
    runs: RunLog
    figures: FigureStore
    source: FigureSource
    catalog: SegmentCatalog
    settings: ReportingSettings = field(default_factory=ReportingSettings)
    clock: Clock = utc_now
    #: identifies this process in leases
    owner: str = field(default_factory=lambda: f"r-{secrets.token_hex(8)}")
