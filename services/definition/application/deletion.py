"""DeleteSegment and BatchDeleteSegments: refused while anything depends on the segments;
all or nothing."""

from __future__ import annotations

from collections.abc import Sequence

from libs.common.errors import FailedPrecondition, InvalidArgument, NotFound
from libs.model.definition import SegmentType
from services.definition.application.common import (
    check_etag,
    check_request_id,
    load_project,
    refuse_system,
    replayed,
    request_body,
    retrying_on_request_race,
    utc_now,
)
from services.definition.application.dependants import (
    dependent_violations,
    engagement_violations,
)
from services.definition.domain.limits import size_cap
from services.definition.domain.ports import Store, StoredRequest, Transaction
from services.definition.domain.segment import segment_name


async def _delete_locked(tx: Transaction, project_id: str, ids: set[str]) -> None:
    """Deletes segments whose rows are locked and that nothing outside `ids` depends on."""
    violations = await dependent_violations(tx, project_id, ids, ignoring=ids)
    violations += await engagement_violations(tx, project_id, ids)
    if violations:
        listed = "; ".join(f"{v.subject} ({v.description})" for v in violations[:10])
        more = f" and {len(violations) - 10} more" if len(violations) > 10 else ""
        raise FailedPrecondition(
            f"still in use: {listed}{more}", violations=violations, reason="SEGMENT_IN_USE"
        )
    references = await tx.references_of(project_id, ids)
    outside = {r for refs in references.values() for r in refs} - ids
    await tx.get_segments(project_id, outside, lock=True)
    live = [s.segment_id for s in (await tx.get_segments(project_id, ids)).values()
            if s.type == SegmentType.LIVE]  # fmt: skip
    await tx.delete_segments(project_id, ids)
    await tx.note_live_changes(project_id, live)
    await tx.refresh_dependent_counts(project_id, outside)


async def delete_segment(
    store: Store, project_id: str, segment_id: str, etag: str = "", request_id: str = ""
) -> None:
    check_request_id(request_id)

    async def run() -> None:
        async with store.transaction() as tx:
            await load_project(tx, project_id)
            body = request_body(segment_id, etag)
            if await replayed(tx, project_id, request_id, "DeleteSegment", body) is not None:
                return
            if request_id:
                stored = StoredRequest("DeleteSegment", segment_id, body)
                await tx.save_request(project_id, request_id, stored, utc_now())
            segment = await tx.get_segment(project_id, segment_id, lock=True)
            if segment is None:
                raise NotFound(f"{segment_name(project_id, segment_id)} does not exist")
            refuse_system(segment, "deleted")
            check_etag(segment, etag)
            await _delete_locked(tx, project_id, {segment_id})

    await retrying_on_request_race(run)


async def batch_delete_segments(
    store: Store, project_id: str, segment_ids: Sequence[str], request_id: str = ""
) -> None:
    """All of them or none. Segments that only depend on each other may go together."""
    check_request_id(request_id)
    if not segment_ids:
        raise InvalidArgument.field("names", "name at least one segment")
    ids = set(segment_ids)

    async def run() -> None:
        async with store.transaction() as tx:
            await load_project(tx, project_id)
            body = request_body(tuple(segment_ids))
            if await replayed(tx, project_id, request_id, "BatchDeleteSegments", body) is not None:
                return
            if request_id:
                stored = StoredRequest("BatchDeleteSegments", "", body)
                await tx.save_request(project_id, request_id, stored, utc_now())
            cap = size_cap(await tx.count_segments(project_id))
            if len(segment_ids) > cap:
                raise InvalidArgument.field(
                    "names", f"at most {cap} segments per batch in this project"
                )
            found = await tx.get_segments(project_id, ids, lock=True)
            missing = sorted(ids - found.keys())
            if missing:
                names = ", ".join(segment_name(project_id, m) for m in missing)
                raise NotFound(f"these segments do not exist: {names}")
            for segment in found.values():
                refuse_system(segment, "deleted")
            await _delete_locked(tx, project_id, ids)

    await retrying_on_request_race(run)
