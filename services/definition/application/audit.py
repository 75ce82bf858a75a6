"""ListAuditRecords: the audit trail of one project, or of everything, newest first."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from libs.audit import AuditRecord, AuditStore
from libs.common.errors import FailedPrecondition, InvalidArgument
from services.definition.domain.paging import (
    Cursor,
    decode_page_token,
    encode_page_token,
    fingerprint,
)

DEFAULT_PAGE = 100
MAX_PAGE = 1_000


@dataclass(frozen=True)
class AuditPage:
    records: list[AuditRecord]
    next_page_token: str


async def list_audit_records(
    store: AuditStore | None, project_id: str | None, page_size: int = 0, page_token: str = ""
) -> AuditPage:
    if store is None:
        raise FailedPrecondition(
            "this definition service has no audit store", reason="AUDIT_STORE_NOT_CONFIGURED"
        )
    if not 0 <= page_size <= MAX_PAGE:
        raise InvalidArgument.field("page_size", f"must be 0 to {MAX_PAGE}")
    limit = page_size or DEFAULT_PAGE
    bound_to = fingerprint("audit", project_id or "")
    before: tuple[datetime, str] | None = None
    if page_token:
        cursor = decode_page_token(page_token, bound_to)
        if not isinstance(cursor.key, datetime):
            raise InvalidArgument.field("page_token", "not a page token issued by this service")
        before = (cursor.key, cursor.last_id)
    found = await store.newest(project_id, before, limit + 1)
    next_token = ""
    if len(found) > limit:
        found = found[:limit]
        last = found[-1]
        next_token = encode_page_token(bound_to, Cursor(last.time, last.record_id))
    return AuditPage(found, next_token)
