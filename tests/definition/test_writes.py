"""Update, clone, delete, batch delete and request-id retries."""

from __future__ import annotations

import uuid
from datetime import timedelta

import grpc
import pytest
import sqlalchemy as sa
from google.protobuf import field_mask_pb2

from segments.v1 import definition_service_pb2 as pb
from segments.v1 import segment_pb2
from services.definition.adapters.tables import request_ids
from services.definition.domain.ports import REQUEST_ID_RETENTION

from .helpers import (
    OTHER_USER,
    Backend,
    Stub,
    create,
    did,
    in_segment,
    live_single,
    past,
    precondition_subjects,
)


def _update(segment: segment_pb2.Segment, *paths: str) -> pb.UpdateSegmentRequest:
    return pb.UpdateSegmentRequest(
        segment=segment, update_mask=field_mask_pb2.FieldMask(paths=list(paths))
    )


async def _raises(code: grpc.StatusCode, call: object) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call  # type: ignore[misc]
    assert info.value.code() == code, info.value.details()
    return info.value


async def test_update_with_mask_and_etag(stub: Stub, project: str) -> None:
    seg = await create(stub, project, "Old name", description="keep me")
    change = segment_pb2.Segment(name=seg.name, display_name="New name", etag=seg.etag)
    updated = await stub.UpdateSegment(_update(change, "display_name"), metadata=OTHER_USER)
    assert updated.display_name == "New name"
    assert updated.description == "keep me"
    assert updated.definition == seg.definition
    assert updated.updater == "bo@example.com" and updated.creator == "ana@example.com"
    assert updated.etag != seg.etag
    assert updated.update_time.ToDatetime() >= seg.update_time.ToDatetime()
    stale = segment_pb2.Segment(name=seg.name, description="x", etag=seg.etag)
    await _raises(grpc.StatusCode.ABORTED, stub.UpdateSegment(_update(stale, "description")))


async def test_update_empty_mask_replaces_all_three(stub: Stub, project: str) -> None:
    seg = await create(stub, project, "All three", description="d")
    change = segment_pb2.Segment(name=seg.name, display_name="Renamed", definition=live_single())
    updated = await stub.UpdateSegment(_update(change))
    assert updated.description == ""
    assert updated.type == segment_pb2.SEGMENT_TYPE_LIVE
    bad = _update(change, "creator")
    await _raises(grpc.StatusCode.INVALID_ARGUMENT, stub.UpdateSegment(bad))


async def test_names_are_unique_case_insensitively(stub: Stub, project: str) -> None:
    await create(stub, project, "Big Spenders")
    await _raises(grpc.StatusCode.ALREADY_EXISTS, create(stub, project, "big spenders"))
    other = await create(stub, project, "Other")
    change = segment_pb2.Segment(name=other.name, display_name="BIG SPENDERS")
    await _raises(
        grpc.StatusCode.ALREADY_EXISTS, stub.UpdateSegment(_update(change, "display_name"))
    )


async def test_chosen_id_and_conflicts(stub: Stub, project: str) -> None:
    seg = await create(stub, project, "Chosen", segment_id="vip-users")
    assert seg.name == f"projects/{project}/segments/vip-users"
    await _raises(
        grpc.StatusCode.ALREADY_EXISTS, create(stub, project, "Other", segment_id="vip-users")
    )
    await _raises(
        grpc.StatusCode.INVALID_ARGUMENT, create(stub, project, "Bad id", segment_id="Bad_Id")
    )


async def test_system_segments_are_read_only(stub: Stub, project: str) -> None:
    name = f"projects/{project}/segments/all-users"
    change = segment_pb2.Segment(name=name, display_name="Everyone")
    await _raises(
        grpc.StatusCode.FAILED_PRECONDITION, stub.UpdateSegment(_update(change, "display_name"))
    )
    await _raises(
        grpc.StatusCode.FAILED_PRECONDITION, stub.DeleteSegment(pb.DeleteSegmentRequest(name=name))
    )
    system = segment_pb2.Segment(
        display_name="Mine",
        definition={"system": {"kind": "SYSTEM_SEGMENT_KIND_ALL_USERS"}},  # type: ignore[arg-type]
    )
    await _raises(
        grpc.StatusCode.INVALID_ARGUMENT,
        stub.CreateSegment(pb.CreateSegmentRequest(parent=f"projects/{project}", segment=system)),
    )


async def test_clone(stub: Stub, project: str) -> None:
    base = await create(stub, project, "Base")
    source = await create(stub, project, "Source", past(in_segment(base.name)), description="d")
    clone = await stub.CloneSegment(
        pb.CloneSegmentRequest(name=source.name, display_name="Copy"), metadata=OTHER_USER
    )
    assert clone.segment_id != source.segment_id
    assert clone.definition == source.definition and clone.description == "d"
    assert clone.creator == "bo@example.com"
    got = await stub.GetSegment(pb.GetSegmentRequest(name=base.name))
    assert got.dependent_segment_count == 2
    await _raises(
        grpc.StatusCode.ALREADY_EXISTS,
        stub.CloneSegment(pb.CloneSegmentRequest(name=source.name, display_name="copy")),
    )


async def test_delete_and_refusals(stub: Stub, project: str) -> None:
    base = await create(stub, project, "Base")
    user = await create(stub, project, "User", past(did("X"), include=[base.name]))
    err = await _raises(
        grpc.StatusCode.FAILED_PRECONDITION,
        stub.DeleteSegment(pb.DeleteSegmentRequest(name=base.name)),
    )
    assert precondition_subjects(err) == [("DEPENDENT_SEGMENT", user.name)]
    await _raises(
        grpc.StatusCode.ABORTED,
        stub.DeleteSegment(pb.DeleteSegmentRequest(name=user.name, etag="stale")),
    )
    await stub.DeleteSegment(pb.DeleteSegmentRequest(name=user.name, etag=user.etag))
    got = await stub.GetSegment(pb.GetSegmentRequest(name=base.name))
    assert got.dependent_segment_count == 0
    await stub.DeleteSegment(pb.DeleteSegmentRequest(name=base.name))
    await _raises(grpc.StatusCode.NOT_FOUND, stub.GetSegment(pb.GetSegmentRequest(name=base.name)))
    await _raises(
        grpc.StatusCode.NOT_FOUND, stub.DeleteSegment(pb.DeleteSegmentRequest(name=base.name))
    )


async def test_batch_delete_is_all_or_nothing(stub: Stub, project: str) -> None:
    a = await create(stub, project, "A")
    b = await create(stub, project, "B", past(in_segment(a.name)))
    c = await create(stub, project, "C", past(in_segment(b.name)))
    lone = await create(stub, project, "Lone")
    parent = f"projects/{project}"
    # b is used by c, which is not in the batch: nothing is deleted.
    err = await _raises(
        grpc.StatusCode.FAILED_PRECONDITION,
        stub.BatchDeleteSegments(
            pb.BatchDeleteSegmentsRequest(parent=parent, names=[lone.name, a.name, b.name])
        ),
    )
    assert precondition_subjects(err) == [("DEPENDENT_SEGMENT", c.name)]
    await stub.GetSegment(pb.GetSegmentRequest(name=lone.name))
    await _raises(
        grpc.StatusCode.NOT_FOUND,
        stub.BatchDeleteSegments(
            pb.BatchDeleteSegmentsRequest(parent=parent, names=[lone.name, f"{parent}/segments/zz"])
        ),
    )
    await stub.GetSegment(pb.GetSegmentRequest(name=lone.name))
    # Segments depending only on each other go together.
    await stub.BatchDeleteSegments(
        pb.BatchDeleteSegmentsRequest(parent=parent, names=[a.name, b.name, c.name, lone.name])
    )
    listed = await stub.ListSegments(pb.ListSegmentsRequest(parent=parent))
    assert {s.segment_id for s in listed.segments} == {"all-users", "test-users"}


async def test_batch_delete_cap(stub: Stub, project: str) -> None:
    parent = f"projects/{project}"
    names = [f"{parent}/segments/s{i:04d}" for i in range(51)]
    err = await _raises(
        grpc.StatusCode.INVALID_ARGUMENT,
        stub.BatchDeleteSegments(pb.BatchDeleteSegmentsRequest(parent=parent, names=names)),
    )
    assert "50" in (err.details() or "")


async def test_request_id_retries(stub: Stub, project: str) -> None:
    request_id = str(uuid.uuid4())
    first = await create(stub, project, "Once", request_id=request_id)
    again = await create(stub, project, "Once", request_id=request_id)
    assert again.segment_id == first.segment_id
    listed = await stub.ListSegments(pb.ListSegmentsRequest(parent=f"projects/{project}"))
    assert listed.total_size == 3
    delete_id = str(uuid.uuid4())
    await stub.DeleteSegment(pb.DeleteSegmentRequest(name=first.name, request_id=delete_id))
    await stub.DeleteSegment(pb.DeleteSegmentRequest(name=first.name, request_id=delete_id))
    await _raises(
        grpc.StatusCode.INVALID_ARGUMENT,
        stub.DeleteSegment(pb.DeleteSegmentRequest(name=first.name, request_id=request_id)),
    )


async def test_request_ids_are_forgotten_after_the_retention(
    backend: Backend, stub: Stub, project: str
) -> None:
    request_id = str(uuid.uuid4())
    first = await create(stub, project, "Kept a day", request_id=request_id)
    # age the stored id past the retention, as if a day had gone by
    mine = (request_ids.c.project_id == project) & (request_ids.c.request_id == request_id)
    async with backend.service.store.engine.begin() as conn:
        stored = (await conn.execute(sa.select(request_ids.c.create_time).where(mine))).scalar_one()
        aged = stored - REQUEST_ID_RETENTION - timedelta(minutes=1)
        await conn.execute(sa.update(request_ids).where(mine).values(create_time=aged))
    # the retry is a new request now: the name is taken by the first segment
    await _raises(
        grpc.StatusCode.ALREADY_EXISTS, create(stub, project, "Kept a day", request_id=request_id)
    )
    # and the id may be used again (the expired entry is cleared on the next write)
    other = await create(stub, project, "Another day", request_id=request_id)
    assert other.segment_id != first.segment_id
    async with backend.service.store.engine.connect() as conn:
        rows = await conn.execute(sa.select(sa.func.count()).where(mine))
        assert rows.scalar_one() == 1


async def test_failed_create_leaves_nothing(stub: Stub, project: str) -> None:
    request_id = str(uuid.uuid4())
    missing = f"projects/{project}/segments/missing"
    await _raises(
        grpc.StatusCode.INVALID_ARGUMENT,
        create(stub, project, "Broken", past(in_segment(missing)), request_id=request_id),
    )
    fixed = await create(stub, project, "Broken", request_id=request_id)
    assert fixed.display_name == "Broken"
