"""Projects, system segments and the create / get / dependencies path."""

from __future__ import annotations

import grpc
import pytest

from segments.v1 import definition_service_pb2 as pb
from segments.v1 import segment_pb2
from tests.support.auth import create_project

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


async def test_list_projects_pages_in_id_order(backend: Backend, project: str) -> None:
    names = [f"projects/{project}-{i}" for i in (3, 1, 2)]
    for name in names:
        await create_project(backend.channel, name.removeprefix("projects/"))
    await create(backend.stub, f"{project}-2", "Shoppers")
    seen: list[segment_pb2.Project] = []
    token = ""
    while True:
        page = await backend.stub.ListProjects(
            pb.ListProjectsRequest(page_size=2, page_token=token)
        )
        assert len(page.projects) <= 2
        seen += page.projects
        token = page.next_page_token
        if not token:
            break
    ids = [p.name for p in seen]
    assert ids == sorted(ids)
    mine = [p for p in seen if p.name in names]
    assert [p.name for p in mine] == sorted(names)
    assert [p.segment_count for p in mine] == [2, 3, 2]
    assert all(p.time_zone == "UTC" for p in mine)


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (pb.ListProjectsRequest(page_size=-1), "page_size"),
        (pb.ListProjectsRequest(page_size=1001), "page_size"),
        (pb.ListProjectsRequest(page_token="%%%"), "page_token"),
    ],
)
async def test_list_projects_refuses_bad_pages(
    backend: Backend, request_: pb.ListProjectsRequest, field: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await backend.stub.ListProjects(request_)
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert field in (caught.value.details() or "")
