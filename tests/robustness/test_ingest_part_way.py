"""A client-streaming ingest that fails part-way says how many of its events were stored
(issue 13, defect 9)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from google.rpc import error_details_pb2

from libs.common.status import call_status
from segments.v1 import evaluator_service_pb2 as pb
from segments.v1 import evaluator_service_pb2_grpc as pb_grpc
from tests.support.auth import create_project

from .conftest import AllServices


def _events(prefix: str, count: int) -> list[pb.Event]:
    when = Timestamp()
    when.FromDatetime(datetime.now(UTC) - timedelta(hours=1))
    return [
        pb.Event(event_id=f"{prefix}-{i}", user_id=f"u{i}", event_name="view", event_time=when)
        for i in range(count)
    ]


async def _ingest(
    stub: pb_grpc.SegmentEvaluatorServiceAsyncStub, *messages: pb.IngestEventsRequest
) -> None:
    async def stream() -> AsyncIterator[pb.IngestEventsRequest]:
        for message in messages:
            yield message

    await stub.IngestEvents(stream(), timeout=60)


def _metadata(exc: grpc.aio.AioRpcError) -> dict[str, str]:
    status = call_status(exc)
    assert status is not None
    for detail in status.details:
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            return dict(info.metadata)
    raise AssertionError("no ErrorInfo")


async def test_a_stream_failing_part_way_says_what_it_stored(all_services: AllServices) -> None:
    await create_project(all_services.channel, "partway")
    await create_project(all_services.channel, "elsewhere")
    stub: pb_grpc.SegmentEvaluatorServiceAsyncStub = pb_grpc.SegmentEvaluatorServiceStub(
        all_services.channel
    )
    await _ingest(stub, pb.IngestEventsRequest(parent="projects/partway", events=_events("a", 2)))
    first = pb.IngestEventsRequest(
        parent="projects/partway", events=[*_events("a", 2), *_events("b", 3)]
    )
    other = pb.IngestEventsRequest(parent="projects/elsewhere", events=_events("c", 4))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _ingest(stub, first, other)
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert _metadata(caught.value) == {
        "accepted_count": "3",
        "duplicate_count": "2",
        "rejected_count": "0",
    }
    assert "5 events of the stream were stored" in (caught.value.details() or "")
    # they really are: sent again, all five are already there
    again = await stub.IngestEvents(_one(first), timeout=60)
    assert (again.accepted_count, again.duplicate_count) == (0, 5)


async def _one(message: pb.IngestEventsRequest) -> AsyncIterator[pb.IngestEventsRequest]:
    yield message


async def test_an_undecodable_message_part_way(all_services: AllServices) -> None:
    await create_project(all_services.channel, "partway")
    first = pb.IngestEventsRequest(parent="projects/partway", events=_events("d", 2))

    async def stream() -> AsyncIterator[bytes]:
        yield first.SerializeToString()
        yield b"\x0a\x05\xc3\x28abc"

    call = all_services.channel.stream_unary(
        "/segments.v1.SegmentEvaluatorService/IngestEvents", lambda b: b, lambda b: b
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call(stream(), timeout=60)
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert _metadata(caught.value)["accepted_count"] == "2"
