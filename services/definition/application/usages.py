"""The usage registry: campaigns, journeys, goals and intent goals that use a segment."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from libs.common.errors import FieldViolation, InvalidArgument
from services.definition.application.common import load_project, load_segment, utc_now
from services.definition.domain.filtering import USAGE_FILTER_FIELDS, parse_filter
from services.definition.domain.limits import (
    DEFAULT_USAGE_PAGE,
    MAX_USAGE_DISPLAY_NAME,
    MAX_USAGE_PAGE,
)
from services.definition.domain.names import external_id_problem
from services.definition.domain.paging import (
    Cursor,
    decode_page_token,
    encode_page_token,
    fingerprint,
)
from services.definition.domain.ports import Store, UsageQuery
from services.definition.domain.segment import Usage, UsageKind, UsageRole, UsageStatus

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class UsagePage:
    usages: list[Usage]
    next_page_token: str


@dataclass(frozen=True)
class UsageRegistration:
    project_id: str
    segment_id: str
    kind: UsageKind
    external_id: str
    display_name: str
    status: UsageStatus
    role: UsageRole


def _violations(reg: UsageRegistration) -> list[FieldViolation]:
    found: list[FieldViolation] = []
    problem = external_id_problem(reg.external_id)
    if problem:
        found.append(FieldViolation("usage.external_id", problem))
    if len(reg.display_name) > MAX_USAGE_DISPLAY_NAME or _CONTROL.search(reg.display_name):
        found.append(
            FieldViolation(
                "usage.display_name",
                f"at most {MAX_USAGE_DISPLAY_NAME} characters, no control characters",
            )
        )
    return found


async def register_usage(store: Store, reg: UsageRegistration) -> Usage:
    """Creates or replaces the usage keyed by (kind, external id); recounts the segment."""
    violations = _violations(reg)
    if violations:
        first = violations[0]
        raise InvalidArgument(f"{first.field}: {first.description}", violations=violations)
    async with store.transaction() as tx:
        await load_project(tx, reg.project_id)
        await load_segment(tx, reg.project_id, reg.segment_id, lock=True)
        now = utc_now()
        usage = Usage(
            project_id=reg.project_id,
            segment_id=reg.segment_id,
            kind=reg.kind,
            external_id=reg.external_id,
            display_name=reg.display_name,
            status=reg.status,
            role=reg.role,
            create_time=now,
            update_time=now,
        )
        existing = await tx.get_usage(reg.project_id, reg.segment_id, reg.kind, reg.external_id)
        if existing is not None:
            usage = replace(usage, create_time=existing.create_time)
        await tx.put_usage(usage)
        await tx.refresh_usage_counts(reg.project_id, reg.segment_id)
        return usage


async def unregister_usage(
    store: Store, project_id: str, segment_id: str, kind: UsageKind, external_id: str
) -> None:
    """Removes the usage; an absent usage is fine (the segment must exist)."""
    async with store.transaction() as tx:
        await load_project(tx, project_id)
        await load_segment(tx, project_id, segment_id, lock=True)
        if await tx.delete_usage(project_id, segment_id, kind, external_id):
            await tx.refresh_usage_counts(project_id, segment_id)


async def list_usages(
    store: Store,
    project_id: str,
    segment_id: str,
    *,
    page_size: int = 0,
    page_token: str = "",
    filter_text: str = "",
    engagements_only: bool = False,
) -> UsagePage:
    """Usages ordered by kind and external id; with `engagements_only`, the active and
    scheduled campaigns and journeys."""
    if page_size < 0:
        raise InvalidArgument.field("page_size", "must not be negative")
    limit = min(page_size or DEFAULT_USAGE_PAGE, MAX_USAGE_PAGE)
    clauses = parse_filter(filter_text, USAGE_FILTER_FIELDS)
    bound_to = fingerprint("usages", project_id, segment_id, filter_text, str(engagements_only))
    after: tuple[str, str] | None = None
    if page_token:
        cursor = decode_page_token(page_token, bound_to)
        after = (str(cursor.key), cursor.last_id)
    async with store.transaction() as tx:
        await load_project(tx, project_id)
        await load_segment(tx, project_id, segment_id)
        found = await tx.list_usages(
            UsageQuery(project_id, segment_id, tuple(clauses), engagements_only, after, limit + 1)
        )
    next_token = ""
    if len(found) > limit:
        found = found[:limit]
        last = found[-1]
        next_token = encode_page_token(bound_to, Cursor(last.kind.value, last.external_id))
    return UsagePage(found, next_token)
