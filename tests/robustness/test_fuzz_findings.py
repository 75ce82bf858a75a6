"""What the fuzz runs found, each kept as a regression test (docs/robustness.md)."""

from __future__ import annotations

import grpc
import pytest

from segments.v1 import evaluator_service_pb2 as pb
from segments.v1 import evaluator_service_pb2_grpc as pb_grpc
from tests.support import fuzz

from .conftest import AllServices


@pytest.mark.parametrize("cursor", ["²", "٣", "9" * 19, "-1", "1e3"])
async def test_a_live_cursor_of_other_digits_is_invalid(
    all_services: AllServices, cursor: str
) -> None:
    stub: pb_grpc.SegmentEvaluatorServiceAsyncStub = pb_grpc.SegmentEvaluatorServiceStub(
        all_services.channel
    )
    call = stub.StreamLiveEntries(
        pb.StreamLiveEntriesRequest(parent=f"projects/{fuzz.PROJECT}", resume_after=cursor),
        timeout=30,
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for _ in call:
            pass
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "resume_after" in (caught.value.details() or "")


@pytest.mark.parametrize("version", ["²", "٣", "9" * 19])
async def test_a_snapshot_version_of_other_digits_is_invalid(
    all_services: AllServices, version: str
) -> None:
    stub: pb_grpc.SegmentEvaluatorServiceAsyncStub = pb_grpc.SegmentEvaluatorServiceStub(
        all_services.channel
    )
    name = f"projects/{fuzz.PROJECT}/segments/buyers/snapshots/{version}"
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.GetSnapshot(pb.GetSnapshotRequest(name=name), timeout=30)
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
