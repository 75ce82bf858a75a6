"""What the export service needs from outside: the members of a segment (from the evaluator)
and the store of its jobs, as plain types."""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import pyarrow as pa

from services.export.domain.jobs import ExportJob


class CellKind(enum.IntEnum):
    """What a cell of a member column holds (one byte per cell in `MemberColumn.kinds`)."""

    MISSING = 0
    TEXT = 1
    NUMBER = 2
    BOOLEAN = 3
    TIME = 4


@dataclass(frozen=True)
class MemberColumn:
    """One field of a chunk of members, as Arrow arrays: each member's value as text
    (`string`, "" when missing), and its CellKind (`uint8`)."""

    values: pa.Array
    kinds: pa.Array


@dataclass(frozen=True)
class MemberChunk:
    """Consecutive members: a blocked flag each (`uint8`, 1 when blocked) and one column per
    field of the export."""

    blocked: pa.Array
    columns: Sequence[MemberColumn]


@dataclass(frozen=True)
class MemberTable:
    """A segment's members as of one instant: how many, and their chunks, in user id order."""

    total_count: int
    as_of: datetime
    chunks: AsyncIterator[MemberChunk]


class MembershipSource(Protocol):
    """The evaluator: members of a segment with fields of their profiles."""

    def members(
        self, segment: str, as_of: datetime, fields: Sequence[str]
    ) -> AbstractAsyncContextManager[MemberTable]:
        """Evaluates `segment` once, as of `as_of`; the stream is open while the context is.
        Failures are DomainErrors."""
        ...


class SegmentCatalog(Protocol):
    """The definition service."""

    async def check_exists(self, segment: str) -> None:
        """NotFound when the segment does not exist."""
        ...


class RequestIdTaken(Exception):
    """A concurrent create with the same request id committed first."""


class JobTransaction(Protocol):
    """The job store inside one transaction (committed when it ends, rolled back on error)."""

    async def get(self, project: str, job_id: str, *, lock: bool = False) -> ExportJob | None:
        """The job (`lock`: held until the transaction ends), or None."""
        ...

    async def by_request_id(self, project: str, request_id: str) -> ExportJob | None: ...

    async def insert(self, job: ExportJob) -> None:
        """RequestIdTaken when another job of the project has the same request id."""
        ...

    async def update(self, job: ExportJob) -> None: ...

    async def unfinished_count(self, project: str) -> int:
        """PENDING and RUNNING jobs of the project."""
        ...

    async def unfinished_of(self, creator: str) -> int:
        """PENDING and RUNNING jobs created by `creator`, over every project."""
        ...

    async def lock_claims(self) -> None:
        """Serialises claims (running-job limits) and new jobs (queue limits) until the
        transaction ends."""
        ...

    async def running(self, now: datetime) -> list[ExportJob]:
        """RUNNING jobs with a live lease."""
        ...

    async def claimable(self, now: datetime, limit: int) -> list[ExportJob]:
        """Oldest first: FILE jobs ready to run, RUNNING jobs whose lease ran out."""
        ...

    async def page(
        self, project: str, size: int, after: tuple[datetime, str] | None
    ) -> list[ExportJob]:
        """Newest first, strictly after (create_time, job_id) `after`."""
        ...

    async def expiring(self, now: datetime, limit: int) -> list[ExportJob]:
        """SUCCEEDED FILE jobs whose file is due for deletion."""
        ...

    async def unread_streams(self, created_before: datetime, limit: int) -> list[ExportJob]:
        """PENDING STREAM jobs created before `created_before` (nobody streamed them)."""
        ...


class JobStore(Protocol):
    def transaction(self) -> AbstractAsyncContextManager[JobTransaction]: ...


class Sink(Protocol):
    """Where a running job's CSV goes: a partial file, or the reader of a STREAM job."""

    async def write(self, data: bytes) -> None: ...

    async def commit(self) -> None:
        """The CSV is whole: a file becomes visible under its final name (atomically)."""
        ...

    async def discard(self) -> None:
        """The CSV will not be finished: what was written is removed."""
        ...


class ExportFiles(Protocol):
    """The export directory."""

    async def create(self, relative_path: str, attempt: int) -> Sink:
        """A new output file for `relative_path` (see jobs.output_path); stale partial files of
        the same path (earlier attempts) are removed."""
        ...

    def read(self, relative_path: str) -> AsyncIterator[bytes]:
        """The file's bytes in chunks; NotFound when it is not there."""
        ...

    async def delete(self, relative_path: str) -> None:
        """Removes the file (nothing when it is not there)."""
        ...

    async def delete_partial(self, relative_path: str) -> None:
        """Removes the partial files of `relative_path` (every attempt's)."""
        ...
