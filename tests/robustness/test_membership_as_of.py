"""CheckMembership evaluates at `as_of` like the other evaluation RPCs."""

from __future__ import annotations

from collections.abc import AsyncIterator

from google.protobuf import timestamp_pb2

from segments.v1 import evaluator_service_pb2 as pb

from .serving import Served, behaviour, did, invalid_fields, served

__all__ = ["served"]

BOUGHT = 1_767_225_600  # 2026-01-01T00:00:00Z


async def _events() -> AsyncIterator[pb.IngestEventsRequest]:
    yield pb.IngestEventsRequest(
        parent="projects/precise",
        events=[
            pb.Event(
                event_id="m1",
                user_id="buyer",
                event_name="Bought",
                event_time=timestamp_pb2.Timestamp(seconds=BOUGHT),
            )
        ],
    )


async def test_membership_as_of_an_instant(served: Served) -> None:
    segment = await served.create("bought-ever", behaviour(did("Bought")))
    await served.evaluator.IngestEvents(_events())
    await served.evaluator.CreateSnapshot(pb.CreateSnapshotRequest(parent=segment))

    async def member(seconds: int) -> bool:
        response = await served.evaluator.CheckMembership(
            pb.CheckMembershipRequest(
                segment=segment,
                user_ids=["buyer"],
                as_of=timestamp_pb2.Timestamp(seconds=seconds),
            )
        )
        assert response.snapshot_version == 0  # evaluated, not read from the snapshot
        return bool(response.is_member[0])

    assert not await member(BOUGHT - 86_400)
    assert await member(BOUGHT + 86_400)
    fields = await invalid_fields(
        served.evaluator.CheckMembership(
            pb.CheckMembershipRequest(
                segment=segment,
                user_ids=["buyer"],
                snapshot_version=1,
                as_of=timestamp_pb2.Timestamp(seconds=BOUGHT),
            )
        )
    )
    assert "as_of" in fields
    fields = await invalid_fields(
        served.evaluator.CheckMembership(
            pb.CheckMembershipRequest(
                segment=segment, user_ids=["buyer"], as_of=timestamp_pb2.Timestamp(nanos=-1)
            )
        )
    )
    assert "as_of" in fields
