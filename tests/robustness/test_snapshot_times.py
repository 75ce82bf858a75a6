"""A snapshot's times read the same from CreateSnapshot, GetSnapshot and ListSnapshots
(issue 13, defect 11)."""

from __future__ import annotations

from google.protobuf import timestamp_pb2

from segments.v1 import evaluator_service_pb2 as pb

from .serving import Served, behaviour, did, served

__all__ = ["served"]


async def test_one_snapshot_one_create_time(served: Served) -> None:
    segment = await served.create("snapped", behaviour(did("Buy")))
    as_of = timestamp_pb2.Timestamp(seconds=1_780_000_000, nanos=123_456_789)
    created = await served.evaluator.CreateSnapshot(
        pb.CreateSnapshotRequest(parent=segment, as_of=as_of)
    )
    got = await served.evaluator.GetSnapshot(pb.GetSnapshotRequest(name=created.name))
    listed = await served.evaluator.ListSnapshots(pb.ListSnapshotsRequest(parent=segment))
    assert created == got == listed.snapshots[0]
    assert created.create_time.nanos % 1_000_000 == 0
    assert created.as_of.nanos == 123_000_000
