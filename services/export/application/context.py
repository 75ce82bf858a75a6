"""What the use cases work with: the ports, the settings, and the runs of this process."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from services.export.domain.ports import ExportFiles, JobStore, MembershipSource, SegmentCatalog


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class ExportSettings:
    """Limits and timings (see the README's configuration table)."""

    #: jobs one process runs at once
    workers: int = 2
    #: RUNNING jobs of one project at once (over all processes)
    max_running_per_project: int = 2
    #: PENDING and RUNNING jobs one project may have
    max_unfinished_per_project: int = 100
    #: PENDING and RUNNING jobs one principal (a job's creator) may have, over every project
    max_unfinished_per_principal: int = 10
    #: a worker that has not renewed its lease for this long is presumed gone
    lease_seconds: float = 15.0
    #: how often a running job records its progress, renews its lease and looks for a cancel
    heartbeat_seconds: float = 0.5
    #: how long a finished file is kept
    file_ttl_seconds: float = 7 * 86400.0
    #: a STREAM job nobody has streamed this long after its creation ends FAILED
    #: (EXPORT_STREAM_NOT_READ), so that it no longer counts against the queue limits
    stream_wait_seconds: float = 3600.0
    #: how often an idle worker looks for work (and for expired files)
    poll_seconds: float = 0.5
    #: a job failed by an unavailable peer or store waits this long before its next attempt
    retry_seconds: float = 5.0


@dataclass
class Runs:
    """The jobs running in this process, by job name, so that a cancel reaches them at once."""

    #: how to stop each run, by job name
    tasks: dict[str, Callable[[], None]] = field(default_factory=dict)
    #: the runs of STREAM jobs (each settles on its own when its reader goes away)
    streams: set[asyncio.Task[Any]] = field(default_factory=set)
    #: set when a job is created, so that an idle worker looks at once
    wake: asyncio.Event = field(default_factory=asyncio.Event)

    def stop(self, name: str) -> None:
        stop = self.tasks.get(name)
        if stop is not None:
            stop()


@dataclass
class Deps:
    store: JobStore
    source: MembershipSource
    catalog: SegmentCatalog
    files: ExportFiles
    settings: ExportSettings = field(default_factory=ExportSettings)
    #: identifies this process's worker in leases
    owner: str = field(default_factory=lambda: f"w-{secrets.token_hex(8)}")
    runs: Runs = field(default_factory=Runs)
    clock: Callable[[], datetime] = utc_now
