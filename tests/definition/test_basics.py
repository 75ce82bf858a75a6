"""Projects, system segments and the create / get / dependencies path."""

from __future__ import annotations

import grpc
import pytest

from segments.v1 import definition_service_pb2 as pb
from segments.v1 import segment_pb2

from .helpers import USER, Backend, create, in_segment, past, simple


async def test_project_comes_with_system_segments(backend: Backend, project: str) -> None:
    got = await backend.stub.GetProject(pb.GetProjectRequest(name=f"projects/{project}"))
    assert got.name == f"projects/{project}"
    assert got.time_zone == "UTC"
    assert got.segment_count == 2
    assert got.etag
    for segment_id, name in (("all-users", "All Users"), ("test-users", "Test Users")):
        seg = await backend.stub.GetSegment(
            pb.GetSegmentRequest(name=f"projects/{project}/segments/{segment_id}")
        )
        assert seg.display_name == name
        assert seg.type == segment_pb2.SEGMENT_TYPE_SYSTEM


async def test_create_and_get(backend: Backend, project: str) -> None:
    created = await create(backend.stub, project, "Shoppers", description="Buyers")
    assert created.name == f"projects/{project}/segments/{created.segment_id}"
    assert created.type == segment_pb2.SEGMENT_TYPE_PAST_BEHAVIOR
    assert created.creator == "ana@example.com" == created.updater
    assert created.etag and created.create_time.seconds > 0
    got = await backend.stub.GetSegment(pb.GetSegmentRequest(name=created.name), metadata=USER)
    assert got == created
    assert got.definition == simple()


async def test_dependencies_in_evaluation_order(backend: Backend, project: str) -> None:
    c = await create(backend.stub, project, "C")
    b = await create(backend.stub, project, "B", past(in_segment(c.name)))
    a = await create(backend.stub, project, "A", past(in_segment(b.name), include=[c.name]))
    got = await backend.stub.GetSegmentDependencies(pb.GetSegmentDependenciesRequest(name=a.name))
    assert [s.segment_id for s in got.segments] == [c.segment_id, b.segment_id, a.segment_id]


async def test_unknown_segment_is_not_found(backend: Backend, project: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await backend.stub.GetSegment(
            pb.GetSegmentRequest(name=f"projects/{project}/segments/nope")
        )
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
