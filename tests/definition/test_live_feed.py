"""WatchLiveSegments on SQLite and PostgreSQL: a listing of the live segments, then each
change in order (create, update, delete, a project's time zone), and resuming after a
sequence."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import field_mask_pb2

from libs.common.config import Config
from libs.common.server import RunningServer
from segments.v1 import access_pb2, segment_pb2
from segments.v1 import definition_model_pb2 as dm
from segments.v1 import definition_service_pb2 as pb
from segments.v1 import definition_service_pb2_grpc as pb_grpc
from services.definition.service import DefinitionService
from tests.support.auth import ADMIN_KEY, authorized_channel, bearer, make_key

from .helpers import Backend, Stub


def _live(event_name: str) -> dm.Definition:
    return dm.Definition(
        live=dm.LiveDefinition(
            trigger=dm.LiveTrigger(single_action=dm.EventSpec(event_name=event_name))
        )
    )


async def _create(stub: Stub, project: str, segment_id: str, definition: dm.Definition) -> str:
    created = await stub.CreateSegment(
        pb.CreateSegmentRequest(
            parent=f"projects/{project}", segment_id=segment_id,
            segment=segment_pb2.Segment(display_name=segment_id, definition=definition),
        )
    )  # fmt: skip
    return str(created.name)


async def _next(call: Any) -> pb.WatchLiveSegmentsResponse:
    response = await asyncio.wait_for(call.read(), 10)
    assert isinstance(response, pb.WatchLiveSegmentsResponse)
    return response


async def test_a_watcher_gets_the_listing_then_every_change_in_order(
    stub: Stub, project: str
) -> None:
    existing = await _create(stub, project, "live-one", _live("Buy"))
    await _create(stub, project, "past-one", dm.Definition(past_behavior=dm.PastBehaviorQuery(
        root=dm.Node(did_event=dm.DidEventCondition(
            event=dm.EventSpec(event_name="Buy"), window=dm.TimeWindow(all_time=dm.AllTime())))
    )))  # fmt: skip  # not live: not listed
    call = stub.WatchLiveSegments(pb.WatchLiveSegmentsRequest(parent=f"projects/{project}"))
    try:
        listing = await _next(call)
        assert listing.reset
        assert [c.name for c in listing.changes] == [existing]
        assert listing.changes[0].segment.definition.live.trigger.single_action.event_name == "Buy"
        assert listing.changes[0].time_zone == "UTC"

        second = await _create(stub, project, "live-two", _live("View"))
        change = await _next(call)
        assert [c.name for c in change.changes] == [second] and not change.reset
        assert change.sequence > listing.sequence

        await stub.UpdateSegment(
            pb.UpdateSegmentRequest(
                segment=segment_pb2.Segment(name=existing, definition=_live("Refund")),
                update_mask=field_mask_pb2.FieldMask(paths=["definition"]),
            )
        )
        updated = (await _next(call)).changes[0]
        assert updated.segment.definition.live.trigger.single_action.event_name == "Refund"

        await stub.DeleteSegment(pb.DeleteSegmentRequest(name=second))
        deleted = await _next(call)
        assert deleted.changes[0].name == second
        assert not deleted.changes[0].HasField("segment")

        await stub.UpdateProject(
            pb.UpdateProjectRequest(
                project=segment_pb2.Project(name=f"projects/{project}", time_zone="Asia/Tokyo"),
                update_mask=field_mask_pb2.FieldMask(paths=["time_zone"]),
            )
        )
        zone = await _next(call)
        assert [(c.name, c.time_zone) for c in zone.changes] == [(existing, "Asia/Tokyo")]
        last = zone.sequence
    finally:
        call.cancel()

    # resuming after a sequence sends only what changed since
    await _create(stub, project, "live-three", _live("Buy"))
    resumed = stub.WatchLiveSegments(
        pb.WatchLiveSegmentsRequest(parent=f"projects/{project}", after_sequence=last)
    )
    try:
        page = await _next(resumed)
        assert [c.name for c in page.changes] == [f"projects/{project}/segments/live-three"]
    finally:
        resumed.cancel()


async def test_bad_watch_requests(stub: Stub, project: str) -> None:
    for request in (
        pb.WatchLiveSegmentsRequest(parent="projects"),
        pb.WatchLiveSegmentsRequest(parent=f"projects/{project}", after_sequence=-1),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            async for _ in stub.WatchLiveSegments(request, timeout=10):
                pass
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_watching_every_project_needs_a_role_on_all_projects(
    backend: Backend, project: str
) -> None:
    viewer = await make_key(
        backend.channel, {f"projects/{project}": access_pb2.ROLE_VIEWER}, service="watcher"
    )
    own = backend.stub.WatchLiveSegments(
        pb.WatchLiveSegmentsRequest(parent=f"projects/{project}"), metadata=bearer(viewer)
    )
    try:
        assert (await _next(own)).reset
    finally:
        own.cancel()
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for _ in backend.stub.WatchLiveSegments(
            pb.WatchLiveSegmentsRequest(parent="projects/-"), metadata=bearer(viewer), timeout=10
        ):
            pass
    assert caught.value.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.PERMISSION_DENIED)
    every = backend.stub.WatchLiveSegments(pb.WatchLiveSegmentsRequest(parent="projects/-"))
    try:
        assert (await _next(every)).reset  # the admin key holds a role on all projects
    finally:
        every.cancel()


async def test_shutdown_ends_the_feeds_instead_of_waiting_out_the_grace_period(
    tmp_path: Path,
) -> None:
    """A watcher's feed never ends by itself: shutdown ends it (status OK, the watcher
    resumes elsewhere from its sequence) before giving in-flight calls their grace period."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'definitions.sqlite3'}"
    config = replace(Config(), data_dir=tmp_path, database_url=url)
    server = RunningServer(
        [DefinitionService(url, bootstrap_admin_key=ADMIN_KEY)], config, host="127.0.0.1", port=0
    )
    await server.start()
    channel = authorized_channel(server.address)
    try:
        stub: Stub = pb_grpc.SegmentDefinitionServiceStub(channel)
        call = stub.WatchLiveSegments(pb.WatchLiveSegmentsRequest(parent="projects/-"))
        assert (await _next(call)).reset
        # a grace period far longer than the wait below: only the drain can end the feed
        stopping = asyncio.create_task(server.stop(grace=600.0))
        rest = await asyncio.wait_for(call.read(), 60)
        assert rest is grpc.aio.EOF  # type: ignore[attr-defined]
        assert await call.code() == grpc.StatusCode.OK
        await asyncio.wait_for(stopping, 60)
    finally:
        await channel.close(None)
        await server.stop(grace=0)
