"""Who depends on a segment: segments that reference it and live engagements using it."""

from __future__ import annotations

from collections.abc import Collection

from libs.common.errors import PreconditionViolation
from services.definition.domain.ports import Transaction
from services.definition.domain.segment import segment_name

DEPENDENT_SEGMENT = "DEPENDENT_SEGMENT"
ACTIVE_ENGAGEMENT = "ACTIVE_ENGAGEMENT"


async def dependent_violations(
    tx: Transaction,
    project_id: str,
    segment_ids: Collection[str],
    *,
    ignoring: Collection[str] = (),
) -> list[PreconditionViolation]:
    """One violation per segment referencing one of `segment_ids` (those in `ignoring`
    left out)."""
    skipped = set(ignoring)
    return [
        PreconditionViolation(
            type=DEPENDENT_SEGMENT,
            subject=segment_name(project_id, dependent),
            description=f"includes or excludes {segment_name(project_id, referenced)}",
        )
        for dependent, referenced in await tx.dependents_of(project_id, segment_ids)
        if dependent not in skipped
    ]


async def engagement_violations(
    tx: Transaction, project_id: str, segment_ids: Collection[str]
) -> list[PreconditionViolation]:
    """One violation per active or scheduled campaign or journey using one of them."""
    return [
        PreconditionViolation(
            type=ACTIVE_ENGAGEMENT,
            subject=usage.name,
            description=(
                f"{usage.status.value.lower()} {usage.kind.value.lower()} "
                f"{usage.external_id!r} uses {segment_name(project_id, usage.segment_id)}"
            ),
        )
        for usage in await tx.live_engagements(project_id, segment_ids)
    ]
