"""ListSegments: search, filters, ordering, page tokens and page sizes."""

from __future__ import annotations

import asyncio
from datetime import UTC, timedelta

import grpc
import pytest

from segments.v1 import definition_service_pb2 as pb
from segments.v1 import segment_pb2 as sp

from .helpers import OTHER_USER, Stub, create, live_single


async def _ids(stub: Stub, project: str, **kwargs: object) -> list[str]:
    response = await stub.ListSegments(
        pb.ListSegmentsRequest(parent=f"projects/{project}", **kwargs)  # type: ignore[arg-type]
    )
    return [s.segment_id for s in response.segments]


async def test_search_filter_and_order(stub: Stub, project: str) -> None:
    a = await create(stub, project, "Alpha Buyers")
    await asyncio.sleep(0.01)
    b = await create(stub, project, "beta buyers", live_single())
    await asyncio.sleep(0.01)
    c = await stub.CreateSegment(
        pb.CreateSegmentRequest(
            parent=f"projects/{project}",
            segment=sp.Segment(display_name="Gamma_100%", definition=a.definition),
        ),
        metadata=OTHER_USER,
    )
    assert await _ids(stub, project, search="BUYERS", order_by="display_name") == [
        a.segment_id,
        b.segment_id,
    ]
    assert await _ids(stub, project, search=c.segment_id) == [c.segment_id]
    assert await _ids(stub, project, search="_100%") == [c.segment_id]
    assert await _ids(stub, project, search="amma%") == []  # % is literal
    assert await _ids(stub, project, filter="type = LIVE") == [b.segment_id]
    assert await _ids(
        stub, project, filter="type = SEGMENT_TYPE_SYSTEM", order_by="display_name"
    ) == [
        "all-users",
        "test-users",
    ]
    assert await _ids(stub, project, filter='creator = "bo@example.com"') == [c.segment_id]
    assert await _ids(stub, project, filter='updater != "bo@example.com" AND type != SYSTEM') == [
        b.segment_id,
        a.segment_id,
    ]
    assert await _ids(stub, project, filter='display_name = "ALPHA BUYERS"') == [a.segment_id]
    t_b = b.create_time.ToDatetime(tzinfo=UTC)
    since = f'create_time >= "{t_b.isoformat()}"'
    assert await _ids(stub, project, filter=since) == [c.segment_id, b.segment_id]
    until = (t_b + timedelta(microseconds=1)).isoformat()
    window = f'(create_time >= "{t_b.isoformat()}") AND create_time < "{until}"'
    assert await _ids(stub, project, filter=window) == [b.segment_id]
    assert await _ids(
        stub, project, filter="has_goals = false AND type = PAST_BEHAVIOR", order_by="create_time"
    ) == [
        a.segment_id,
        c.segment_id,
    ]
    # Default order: newest first.
    assert (await _ids(stub, project))[:3] == [c.segment_id, b.segment_id, a.segment_id]
    assert (await _ids(stub, project, order_by="update_time desc"))[0] == c.segment_id


@pytest.mark.parametrize(
    ("field", "value", "culprit"),
    [
        ("filter", "colour = red", "colour"),
        ("filter", "type = PURPLE", "type"),
        ("filter", "create_time > yesterday", "create_time"),
        ("filter", "type = LIVE OR type = SYSTEM", "OR"),
        ("order_by", "engagement_count sideways", "engagement_count"),
        ("order_by", "colour", "colour"),
        ("page_token", "garbage", "page token"),
    ],
)
async def test_bad_list_requests(
    stub: Stub, project: str, field: str, value: str, culprit: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await _ids(stub, project, **{field: value})
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert culprit in (info.value.details() or "")


async def test_tokens_are_bound_to_the_request(stub: Stub, project: str) -> None:
    for i in range(3):
        await create(stub, project, f"Seg {i}")
    parent = f"projects/{project}"
    first = await stub.ListSegments(pb.ListSegmentsRequest(parent=parent, page_size=2))
    assert len(first.segments) == 2 and first.total_size == 5
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.ListSegments(
            pb.ListSegmentsRequest(
                parent=parent,
                page_size=2,
                page_token=first.next_page_token,
                order_by="display_name",
            )
        )
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.ListSegments(
            pb.ListSegmentsRequest(
                parent=parent, page_token=first.next_page_token, filter="type = LIVE"
            )
        )
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_page_size_is_clamped_to_fifty(stub: Stub, project: str) -> None:
    await asyncio.gather(*(create(stub, project, f"Many {i}") for i in range(55)))
    parent = f"projects/{project}"
    for size in (0, 51, 1000):
        page = await stub.ListSegments(pb.ListSegmentsRequest(parent=parent, page_size=size))
        assert len(page.segments) == 50 and page.next_page_token
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.ListSegments(pb.ListSegmentsRequest(parent=parent, page_size=-1))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
