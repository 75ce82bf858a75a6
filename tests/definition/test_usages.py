"""The usage registry and the counts derived from it."""

from __future__ import annotations

import grpc
import pytest

from segments.v1 import definition_service_pb2 as pb
from segments.v1 import segment_pb2 as sp

from .helpers import Stub, create, precondition_subjects


def _usage(kind: int, external_id: str, status: int) -> sp.SegmentUsage:
    return sp.SegmentUsage(
        kind=kind,  # type: ignore[arg-type]
        external_id=external_id,
        status=status,  # type: ignore[arg-type]
        display_name=f"{external_id}",
        role=sp.USAGE_ROLE_INCLUDE,
    )


async def _register(stub: Stub, parent: str, usage: sp.SegmentUsage) -> sp.SegmentUsage:
    return await stub.RegisterSegmentUsage(
        pb.RegisterSegmentUsageRequest(parent=parent, usage=usage)
    )


async def test_register_count_list_and_unregister(stub: Stub, project: str) -> None:
    seg = await create(stub, project, "Targets")
    used = await _register(
        stub, seg.name, _usage(sp.USAGE_KIND_CAMPAIGN, "42", sp.USAGE_STATUS_ACTIVE)
    )
    assert used.name == f"{seg.name}/usages/campaign-42"
    again = await _register(
        stub, seg.name, _usage(sp.USAGE_KIND_CAMPAIGN, "42", sp.USAGE_STATUS_ACTIVE)
    )
    assert again.create_time == used.create_time
    await _register(stub, seg.name, _usage(sp.USAGE_KIND_JOURNEY, "7", sp.USAGE_STATUS_SCHEDULED))
    await _register(stub, seg.name, _usage(sp.USAGE_KIND_JOURNEY, "8", sp.USAGE_STATUS_DRAFT))
    await _register(stub, seg.name, _usage(sp.USAGE_KIND_GOAL, "g1", sp.USAGE_STATUS_ACTIVE))
    await _register(stub, seg.name, _usage(sp.USAGE_KIND_GOAL, "g2", sp.USAGE_STATUS_COMPLETED))
    await _register(
        stub, seg.name, _usage(sp.USAGE_KIND_INTENT_GOAL, "i1", sp.USAGE_STATUS_SCHEDULED)
    )
    got = await stub.GetSegment(pb.GetSegmentRequest(name=seg.name))
    assert (got.engagement_count, got.goal_count, got.intent_goal_count) == (2, 1, 1)

    engagements = await stub.ListSegmentEngagements(
        pb.ListSegmentEngagementsRequest(parent=seg.name)
    )
    assert [u.name.rsplit("/", 1)[1] for u in engagements.engagements] == [
        "campaign-42",
        "journey-7",
    ]
    journeys = await stub.ListSegmentUsages(
        pb.ListSegmentUsagesRequest(parent=seg.name, filter="kind = JOURNEY")
    )
    assert [u.external_id for u in journeys.usages] == ["7", "8"]
    active = await stub.ListSegmentUsages(
        pb.ListSegmentUsagesRequest(parent=seg.name, filter="status = ACTIVE AND kind = GOAL")
    )
    assert [u.external_id for u in active.usages] == ["g1"]
    first = await stub.ListSegmentUsages(pb.ListSegmentUsagesRequest(parent=seg.name, page_size=4))
    rest = await stub.ListSegmentUsages(
        pb.ListSegmentUsagesRequest(parent=seg.name, page_size=4, page_token=first.next_page_token)
    )
    assert len(first.usages) + len(rest.usages) == 6 and not rest.next_page_token

    # Stopping the campaign lowers the count; unregistering is idempotent.
    await _register(stub, seg.name, _usage(sp.USAGE_KIND_CAMPAIGN, "42", sp.USAGE_STATUS_STOPPED))
    for _ in range(2):
        await stub.UnregisterSegmentUsage(
            pb.UnregisterSegmentUsageRequest(name=f"{seg.name}/usages/journey-7")
        )
    await stub.UnregisterSegmentUsage(
        pb.UnregisterSegmentUsageRequest(name=f"{seg.name}/usages/intent-goal-i1")
    )
    got = await stub.GetSegment(pb.GetSegmentRequest(name=seg.name))
    assert (got.engagement_count, got.goal_count, got.intent_goal_count) == (0, 1, 0)
    listed = await stub.ListSegments(
        pb.ListSegmentsRequest(parent=f"projects/{project}", filter="has_goals = true")
    )
    assert [s.segment_id for s in listed.segments] == [seg.segment_id]


async def test_engagements_block_deletion(stub: Stub, project: str) -> None:
    seg = await create(stub, project, "In use")
    usage = await _register(
        stub, seg.name, _usage(sp.USAGE_KIND_JOURNEY, "j-1", sp.USAGE_STATUS_SCHEDULED)
    )
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.DeleteSegment(pb.DeleteSegmentRequest(name=seg.name))
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert precondition_subjects(info.value) == [("ACTIVE_ENGAGEMENT", usage.name)]
    await _register(stub, seg.name, _usage(sp.USAGE_KIND_JOURNEY, "j-1", sp.USAGE_STATUS_COMPLETED))
    await stub.DeleteSegment(pb.DeleteSegmentRequest(name=seg.name))


async def test_usage_input_is_checked(stub: Stub, project: str) -> None:
    seg = await create(stub, project, "Checked")
    bad = [
        _usage(sp.USAGE_KIND_UNSPECIFIED, "1", sp.USAGE_STATUS_ACTIVE),
        _usage(sp.USAGE_KIND_GOAL, "", sp.USAGE_STATUS_ACTIVE),
        _usage(sp.USAGE_KIND_GOAL, "a/b", sp.USAGE_STATUS_ACTIVE),
        _usage(sp.USAGE_KIND_GOAL, "1", sp.USAGE_STATUS_UNSPECIFIED),
    ]
    for usage in bad:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await _register(stub, seg.name, usage)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.ListSegmentUsages(
            pb.ListSegmentUsagesRequest(parent=seg.name, filter="role = X")
        )
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await _register(
            stub,
            f"projects/{project}/segments/missing",
            _usage(sp.USAGE_KIND_GOAL, "1", sp.USAGE_STATUS_ACTIVE),
        )
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
