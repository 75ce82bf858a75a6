"""Project settings, and that no RPC crosses from one project into another."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from google.protobuf import field_mask_pb2

from segments.v1 import definition_service_pb2 as pb
from segments.v1 import segment_pb2 as sp
from tests.support.auth import create_project

from .helpers import Backend, Stub, create, in_segment, past


async def test_update_project_time_zone(stub: Stub, project: str) -> None:
    name = f"projects/{project}"
    got = await stub.GetProject(pb.GetProjectRequest(name=name))
    updated = await stub.UpdateProject(
        pb.UpdateProjectRequest(
            project=sp.Project(name=name, time_zone="America/New_York", etag=got.etag),
            update_mask=field_mask_pb2.FieldMask(paths=["time_zone"]),
        )
    )
    assert updated.time_zone == "America/New_York" and updated.etag != got.etag
    for zone, etag, code in (
        ("Mars/Olympus", "", grpc.StatusCode.INVALID_ARGUMENT),
        ("../../etc/passwd", "", grpc.StatusCode.INVALID_ARGUMENT),
        ("Europe/Paris", got.etag, grpc.StatusCode.ABORTED),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stub.UpdateProject(
                pb.UpdateProjectRequest(project=sp.Project(name=name, time_zone=zone, etag=etag))
            )
        assert info.value.code() == code
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.GetProject(pb.GetProjectRequest(name=f"{name}/b"))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_projects_are_isolated(backend: Backend, stub: Stub, project: str) -> None:
    other = f"{project}x"
    await create_project(backend.channel, other)
    mine = await create(stub, project, "Mine")
    await create(stub, other, "Mine")  # the same name is fine in another project
    seg_id = mine.segment_id
    theirs = f"projects/{other}/segments/{seg_id}"
    calls: list[Any] = [
        stub.GetSegment(pb.GetSegmentRequest(name=theirs)),
        stub.UpdateSegment(
            pb.UpdateSegmentRequest(
                segment=sp.Segment(name=theirs, display_name="Stolen"),
                update_mask=field_mask_pb2.FieldMask(paths=["display_name"]),
            )
        ),
        stub.DeleteSegment(pb.DeleteSegmentRequest(name=theirs)),
        stub.CloneSegment(pb.CloneSegmentRequest(name=theirs, display_name="Copy")),
        stub.BatchDeleteSegments(
            pb.BatchDeleteSegmentsRequest(parent=f"projects/{other}", names=[theirs])
        ),
        stub.ListDependentSegments(pb.ListDependentSegmentsRequest(parent=theirs)),
        stub.GetSegmentDependencies(pb.GetSegmentDependenciesRequest(name=theirs)),
        stub.ListSegmentUsages(pb.ListSegmentUsagesRequest(parent=theirs)),
        stub.ListSegmentEngagements(pb.ListSegmentEngagementsRequest(parent=theirs)),
        stub.RegisterSegmentUsage(
            pb.RegisterSegmentUsageRequest(
                parent=theirs,
                usage=sp.SegmentUsage(
                    kind=sp.USAGE_KIND_GOAL, external_id="1", status=sp.USAGE_STATUS_ACTIVE
                ),
            )
        ),
        stub.UnregisterSegmentUsage(
            pb.UnregisterSegmentUsageRequest(name=f"{theirs}/usages/goal-1")
        ),
    ]
    for call in calls:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await call
        assert info.value.code() == grpc.StatusCode.NOT_FOUND
    # Referencing another project's segment is refused; listings show only one's own.
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await create(stub, other, "Sneaky", past(in_segment(mine.name)))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    listed = await stub.ListSegments(
        pb.ListSegmentsRequest(parent=f"projects/{other}", search=seg_id)
    )
    assert listed.total_size == 0
    got = await stub.GetSegment(pb.GetSegmentRequest(name=mine.name))
    assert got == mine
