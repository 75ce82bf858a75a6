"""Helpers shared by the use cases."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TypeVar

from libs.common.errors import (
    Aborted,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
)
from services.definition.domain.ports import (
    REQUEST_ID_RETENTION,
    RequestIdTaken,
    StoredRequest,
    Transaction,
)
from services.definition.domain.segment import Project, Segment, segment_name

T = TypeVar("T")
MAX_REQUEST_ID = 128


def utc_now() -> datetime:
    return datetime.now(UTC)


async def load_project(tx: Transaction, project_id: str) -> Project:
    """The project, or NOT_FOUND (the access check's answer: nothing is created on use)."""
    project = await tx.get_project(project_id)
    if project is None:
        raise NotFound(
            f"projects/{project_id} does not exist or this key has no role on it",
            reason="PROJECT_NOT_FOUND",
            metadata={"project": f"projects/{project_id}"},
        )
    return project


async def load_segment(
    tx: Transaction, project_id: str, segment_id: str, *, lock: bool = False
) -> Segment:
    """The segment, or NOT_FOUND (also for a segment of another project)."""
    segment = await tx.get_segment(project_id, segment_id, lock=lock)
    if segment is None:
        raise NotFound(f"{segment_name(project_id, segment_id)} does not exist")
    return segment


def refuse_system(segment: Segment, action: str) -> None:
    if segment.is_system:
        raise FailedPrecondition(
            f"{segment.name} is a system segment and cannot be {action}",
            reason="SYSTEM_SEGMENT",
        )


def check_etag(segment: Segment, etag: str) -> None:
    """An etag sent by the caller must match the stored one (ABORTED otherwise)."""
    if etag and etag != segment.etag:
        raise Aborted(
            f"{segment.name} was changed since it was read (stale etag); re-read and retry",
            reason="STALE_ETAG",
        )


def check_request_id(request_id: str, field: str = "request_id") -> None:
    if len(request_id) > MAX_REQUEST_ID or any(ord(c) < 33 for c in request_id):
        raise InvalidArgument.field(
            field, f"at most {MAX_REQUEST_ID} printable characters without spaces"
        )


def request_body(*parts: object) -> str:
    """A digest of what a request asks for (its fields but the request id), to tell a retry
    from another request that reuses the id (AIP-155). The parts are domain values, whose
    representation is stable."""
    return hashlib.sha256(repr(parts).encode("utf-8")).hexdigest()


async def replayed(
    tx: Transaction, project_id: str, request_id: str, method: str, body: str = ""
) -> StoredRequest | None:
    """The stored outcome of an earlier call with this request id, if any. The id reused for
    another method, or for the same method with another body, is INVALID_ARGUMENT."""
    if not request_id:
        return None
    stored = await tx.find_request(project_id, request_id, utc_now() - REQUEST_ID_RETENTION)
    if stored is not None and stored.method != method:
        raise InvalidArgument.field(
            "request_id", f"was already used for a different request ({stored.method})"
        )
    if stored is not None and stored.body and body and stored.body != body:
        raise InvalidArgument(
            f"request_id: was already used for a {method} request with different fields; "
            "a retry must repeat the request exactly, another request needs a new id",
            violations=[
                FieldViolation(
                    "request_id", f"was already used for a {method} with different fields"
                )
            ],
            reason="REQUEST_ID_REUSED",
        )
    return stored


async def retrying_on_request_race(call: Callable[[], Awaitable[T]]) -> T:
    """Runs `call`; when a concurrent call with the same request id committed first, runs it
    once more, which then finds the stored outcome."""
    try:
        return await call()
    except RequestIdTaken:
        return await call()
