"""References between segments: existence, type, cycles, dependants."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import field_mask_pb2

from segments.v1 import definition_model_pb2 as dm
from segments.v1 import definition_service_pb2 as pb
from segments.v1 import segment_pb2

from .helpers import Stub, create, did, field_violations, in_segment, live_single, past


async def _invalid(call: object) -> list[str]:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call  # type: ignore[misc]
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT, info.value.details()
    return field_violations(info.value)


def _redefine(segment: segment_pb2.Segment, definition: dm.Definition) -> pb.UpdateSegmentRequest:
    return pb.UpdateSegmentRequest(
        segment=segment_pb2.Segment(name=segment.name, definition=definition),
        update_mask=field_mask_pb2.FieldMask(paths=["definition"]),
    )


async def test_unknown_and_foreign_references(stub: Stub, project: str) -> None:
    missing = f"projects/{project}/segments/missing"
    fields = await _invalid(
        create(stub, project, "X", past(did("A"), include=[missing], exclude=["nonsense"]))
    )
    assert fields == [
        "segment.definition.past_behavior.excluded_segments[0]",
    ]
    fields = await _invalid(create(stub, project, "X", past(did("A"), include=[missing])))
    assert fields == ["segment.definition.past_behavior.included_segments[0]"]
    foreign = "projects/elsewhere/segments/abcd"
    fields = await _invalid(create(stub, project, "X", past(in_segment(foreign))))
    assert fields == ["segment.definition.past_behavior.root.in_segment.segment"]


async def test_only_past_behavior_segments_can_be_referenced(stub: Stub, project: str) -> None:
    live = await create(stub, project, "Live", live_single())
    fields = await _invalid(create(stub, project, "X", past(did("A"), exclude=[live.name])))
    assert fields == ["segment.definition.past_behavior.excluded_segments[0]"]
    system = f"projects/{project}/segments/all-users"
    fields = await _invalid(create(stub, project, "Y", past(in_segment(system))))
    assert fields == ["segment.definition.past_behavior.root.in_segment.segment"]


async def test_referenced_segment_must_stay_past_behavior(stub: Stub, project: str) -> None:
    base = await create(stub, project, "Base")
    await create(stub, project, "User", past(in_segment(base.name)))
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.UpdateSegment(_redefine(base, live_single()))
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_direct_cycle_is_refused(stub: Stub, project: str) -> None:
    a = await create(stub, project, "A")
    b = await create(stub, project, "B", past(in_segment(a.name)))
    fields = await _invalid(stub.UpdateSegment(_redefine(a, past(in_segment(b.name)))))
    assert fields == ["segment.definition.past_behavior.root.in_segment.segment"]
    fields = await _invalid(stub.UpdateSegment(_redefine(a, past(did("x"), include=[a.name]))))
    assert fields == ["segment.definition.past_behavior.included_segments[0]"]


async def test_three_deep_cycle_is_refused(stub: Stub, project: str) -> None:
    a = await create(stub, project, "A")
    b = await create(stub, project, "B", past(in_segment(a.name)))
    c = await create(stub, project, "C", past(did("x"), include=[b.name]))
    d = await create(stub, project, "D", past(did("x"), exclude=[c.name]))
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.UpdateSegment(_redefine(a, past(did("y"), include=[d.name])))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "cycle" in (info.value.details() or "")
    # Unchanged after the refusal: a still has no references.
    deps = await stub.GetSegmentDependencies(pb.GetSegmentDependenciesRequest(name=a.name))
    assert [s.segment_id for s in deps.segments] == [a.segment_id]
    deps = await stub.GetSegmentDependencies(pb.GetSegmentDependenciesRequest(name=d.name))
    assert [s.segment_id for s in deps.segments] == [
        a.segment_id,
        b.segment_id,
        c.segment_id,
        d.segment_id,
    ]


async def test_dependents_are_counted_and_listed(stub: Stub, project: str) -> None:
    base = await create(stub, project, "Base")
    users = [
        await create(stub, project, f"User {i}", past(did("x"), include=[base.name]))
        for i in range(3)
    ]
    got = await stub.GetSegment(pb.GetSegmentRequest(name=base.name))
    assert got.dependent_segment_count == 3
    page = await stub.ListDependentSegments(
        pb.ListDependentSegmentsRequest(parent=base.name, page_size=2)
    )
    assert len(page.segments) == 2 and page.next_page_token
    rest = await stub.ListDependentSegments(
        pb.ListDependentSegmentsRequest(
            parent=base.name, page_size=2, page_token=page.next_page_token
        )
    )
    listed = {s.segment_id for s in [*page.segments, *rest.segments]}
    assert listed == {u.segment_id for u in users}
    assert not rest.next_page_token
    await stub.UpdateSegment(_redefine(users[0], past(did("y"))))
    got = await stub.GetSegment(pb.GetSegmentRequest(name=base.name))
    assert got.dependent_segment_count == 2


async def test_validate_definition_checks_like_create_and_saves_nothing(
    stub: Stub, project: str
) -> None:
    parent = f"projects/{project}"
    base = await create(stub, project, "Base")
    before = await stub.ListSegments(pb.ListSegmentsRequest(parent=parent, page_size=500))
    valid = await stub.ValidateDefinition(
        pb.ValidateDefinitionRequest(parent=parent, definition=past(did("A"), include=[base.name]))
    )
    assert valid.segment_type == segment_pb2.SEGMENT_TYPE_PAST_BEHAVIOR
    assert list(valid.referenced_segments) == [base.name]
    missing = f"projects/{project}/segments/missing"
    fields = await _invalid(
        stub.ValidateDefinition(
            pb.ValidateDefinitionRequest(parent=parent, definition=past(in_segment(missing)))
        )
    )
    assert fields == ["definition.past_behavior.root.in_segment.segment"]
    fields = await _invalid(
        stub.ValidateDefinition(
            pb.ValidateDefinitionRequest(parent=parent, definition=past(did("")))
        )
    )
    assert fields and all(f.startswith("definition.") for f in fields)
    fields = await _invalid(stub.ValidateDefinition(pb.ValidateDefinitionRequest(parent=parent)))
    assert fields == ["definition"]
    after = await stub.ListSegments(pb.ListSegmentsRequest(parent=parent, page_size=500))
    assert [s.name for s in after.segments] == [s.name for s in before.segments]
