"""The store the application needs (implemented by `adapters.store.SqlStore`).

Every method of a `Transaction` is scoped by project; a transaction commits when its
`async with` block ends normally and rolls back on any exception, so no request leaves
partial state behind.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from services.definition.domain.filtering import Clause
from services.definition.domain.keys import ApiKey
from services.definition.domain.live_feed import LiveChange
from services.definition.domain.paging import Cursor, OrderBy
from services.definition.domain.segment import Project, Segment, Usage, UsageKind


@dataclass(frozen=True)
class SegmentQuery:
    project_id: str
    clauses: tuple[Clause, ...]
    search: str
    order: OrderBy
    cursor: Cursor | None
    limit: int


@dataclass(frozen=True)
class UsageQuery:
    project_id: str
    segment_id: str
    clauses: tuple[Clause, ...]
    engagements_only: bool
    after: tuple[str, str] | None  # (kind, external_id) of the last usage returned
    limit: int


#: How long a request id is remembered: a retry within it returns the first call's outcome;
#: after it the id is forgotten (and may be used again).
REQUEST_ID_RETENTION = timedelta(hours=24)


@dataclass(frozen=True)
class StoredRequest:
    """What a request id was used for: the method, the resource written and a digest of the
    request's body (`request_body`; empty for ids stored before digests were kept)."""

    method: str
    resource_id: str
    body: str = ""


class RequestIdTaken(Exception):
    """A concurrent call with the same request id committed first; look it up again."""


class Transaction(Protocol):
    # --- projects ---------------------------------------------------------------------------
    async def get_project(self, project_id: str) -> Project | None: ...
    async def existing_projects(self, project_ids: Collection[str]) -> frozenset[str]: ...
    async def project_was_deleted(self, project_id: str) -> bool: ...
    async def insert_project(self, project: Project) -> None: ...
    async def update_project(self, project: Project, expected_etag: str) -> bool: ...
    async def count_segments(self, project_id: str) -> int: ...
    async def list_projects(
        self, key_id: str | None, after_id: str | None, limit: int
    ) -> list[Project]: ...
    async def delete_project(self, project_id: str, now: datetime) -> None: ...

    # --- API keys ---------------------------------------------------------------------------
    async def get_api_key(self, key_id: str) -> ApiKey | None: ...
    async def insert_api_key(self, key: ApiKey) -> None: ...
    async def list_api_keys(
        self, after_id: str | None, limit: int, show_revoked: bool
    ) -> list[ApiKey]: ...
    async def revoke_api_key(self, key_id: str, now: datetime) -> None: ...

    # --- segments ---------------------------------------------------------------------------
    async def get_segment(
        self, project_id: str, segment_id: str, *, lock: bool = False
    ) -> Segment | None: ...
    async def get_segments(
        self, project_id: str, segment_ids: Collection[str], *, lock: bool = False
    ) -> dict[str, Segment]: ...
    async def name_owner(self, project_id: str, name_key: str) -> str | None: ...
    async def insert_segment(self, segment: Segment) -> None: ...
    async def update_segment(self, segment: Segment, expected_etag: str) -> bool: ...
    async def delete_segments(self, project_id: str, segment_ids: Collection[str]) -> None: ...
    async def list_segments(self, query: SegmentQuery) -> tuple[list[Segment], int]: ...

    # --- references -------------------------------------------------------------------------
    async def references_of(
        self, project_id: str, segment_ids: Collection[str]
    ) -> dict[str, list[str]]: ...
    async def reference_graph(
        self, project_id: str, start_ids: Collection[str]
    ) -> dict[str, list[str]]: ...
    async def replace_references(
        self, project_id: str, segment_id: str, referenced_ids: Collection[str]
    ) -> None: ...
    async def refresh_dependent_counts(
        self, project_id: str, segment_ids: Collection[str]
    ) -> None: ...
    async def dependents_of(
        self, project_id: str, segment_ids: Collection[str]
    ) -> list[tuple[str, str]]: ...
    async def list_dependents(
        self, project_id: str, segment_id: str, after_id: str | None, limit: int
    ) -> list[Segment]: ...

    # --- usages -----------------------------------------------------------------------------
    async def get_usage(
        self, project_id: str, segment_id: str, kind: UsageKind, external_id: str
    ) -> Usage | None: ...
    async def put_usage(self, usage: Usage) -> None: ...
    async def delete_usage(
        self, project_id: str, segment_id: str, kind: UsageKind, external_id: str
    ) -> bool: ...
    async def list_usages(self, query: UsageQuery) -> list[Usage]: ...
    async def live_engagements(
        self, project_id: str, segment_ids: Collection[str]
    ) -> list[Usage]: ...
    async def refresh_usage_counts(self, project_id: str, segment_id: str) -> None: ...

    # --- the live-segment change feed --------------------------------------------------------
    async def note_live_changes(self, project_id: str, segment_ids: Collection[str]) -> None: ...
    async def live_segment_ids(self, project_id: str) -> list[str]: ...
    async def live_sequence(self) -> int: ...
    async def live_segments(
        self, project_id: str | None, after: tuple[str, str] | None, limit: int
    ) -> list[LiveChange]: ...
    async def live_changes_after(
        self, project_id: str | None, after: int, limit: int
    ) -> list[LiveChange]: ...

    # --- request ids ------------------------------------------------------------------------
    async def find_request(
        self, project_id: str, request_id: str, not_before: datetime
    ) -> StoredRequest | None: ...
    async def save_request(
        self, project_id: str, request_id: str, stored: StoredRequest, now: datetime
    ) -> None: ...


class Store(Protocol):
    def transaction(self) -> AbstractAsyncContextManager[Transaction]: ...


EdgeMap = Mapping[str, Collection[str]]
