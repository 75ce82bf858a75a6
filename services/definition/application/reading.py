"""GetSegment, ListSegments, ListDependentSegments and GetSegmentDependencies."""

from __future__ import annotations

from dataclasses import dataclass

from libs.common.errors import Internal, InvalidArgument
from services.definition.application.common import load_project, load_segment
from services.definition.domain import limits
from services.definition.domain.filtering import SEGMENT_FILTER_FIELDS, parse_filter
from services.definition.domain.graph import CycleError, topological_order
from services.definition.domain.limits import size_cap
from services.definition.domain.paging import (
    Cursor,
    SortField,
    SortKey,
    decode_page_token,
    encode_page_token,
    fingerprint,
    parse_order_by,
    resolve_page_size,
)
from services.definition.domain.ports import SegmentQuery, Store
from services.definition.domain.segment import Segment, name_key


@dataclass(frozen=True)
class Page:
    segments: list[Segment]
    next_page_token: str
    total_size: int = 0


async def get_segment(store: Store, project_id: str, segment_id: str) -> Segment:
    async with store.transaction() as tx:
        await load_project(tx, project_id)
        return await load_segment(tx, project_id, segment_id)


def _sort_key(segment: Segment, field: SortField) -> SortKey:
    match field:
        case SortField.DISPLAY_NAME:
            return name_key(segment.display_name)
        case SortField.CREATE_TIME:
            return segment.create_time
        case SortField.UPDATE_TIME:
            return segment.update_time
        case SortField.ENGAGEMENT_COUNT:
            return segment.engagement_count
        case SortField.DEPENDENT_SEGMENT_COUNT:
            return segment.dependent_segment_count


async def list_segments(
    store: Store,
    project_id: str,
    *,
    page_size: int = 0,
    page_token: str = "",
    filter_text: str = "",
    order_by: str = "",
    search: str = "",
) -> Page:
    """Search, filter, order and keyset pagination (see domain.paging)."""
    clauses = parse_filter(filter_text, SEGMENT_FILTER_FIELDS)
    order = parse_order_by(order_by)
    search = search.strip()
    if len(search) > limits.MAX_SEARCH:
        raise InvalidArgument.field("search", f"at most {limits.MAX_SEARCH} characters")
    bound_to = fingerprint(project_id, filter_text, search, order.canonical())
    cursor = decode_page_token(page_token, bound_to) if page_token else None
    async with store.transaction() as tx:
        project = await load_project(tx, project_id)
        limit = resolve_page_size(page_size, size_cap(project.segment_count))
        found, total = await tx.list_segments(
            SegmentQuery(project_id, tuple(clauses), search, order, cursor, limit + 1)
        )
    next_token = ""
    if len(found) > limit:
        found = found[:limit]
        last = found[-1]
        next_token = encode_page_token(
            bound_to, Cursor(_sort_key(last, order.field), last.segment_id)
        )
    return Page(found, next_token, total)


async def list_dependent_segments(
    store: Store, project_id: str, segment_id: str, page_size: int = 0, page_token: str = ""
) -> Page:
    bound_to = fingerprint("dependents", project_id, segment_id)
    cursor = decode_page_token(page_token, bound_to) if page_token else None
    async with store.transaction() as tx:
        project = await load_project(tx, project_id)
        await load_segment(tx, project_id, segment_id)
        limit = resolve_page_size(page_size, size_cap(project.segment_count))
        found = await tx.list_dependents(
            project_id, segment_id, cursor.last_id if cursor else None, limit + 1
        )
    next_token = ""
    if len(found) > limit:
        found = found[:limit]
        next_token = encode_page_token(bound_to, Cursor("", found[-1].segment_id))
    return Page(found, next_token)


async def get_segment_dependencies(store: Store, project_id: str, segment_id: str) -> list[Segment]:
    """The segment and all it references, transitively: dependencies first, it last."""
    async with store.transaction() as tx:
        await load_project(tx, project_id)
        await load_segment(tx, project_id, segment_id)
        graph = await tx.reference_graph(project_id, [segment_id])
        try:
            order = topological_order(segment_id, graph)
        except CycleError as exc:  # refused on write; a stored cycle is a bug
            raise Internal(f"stored references form a cycle: {exc}") from exc
        found = await tx.get_segments(project_id, order)
    return [found[i] for i in order if i in found]
