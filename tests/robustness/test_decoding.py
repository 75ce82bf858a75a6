"""Request messages the server cannot decode answer INVALID_ARGUMENT with an ErrorInfo, and are
logged with their request id like every other call (issue 13, defect 4)."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator

import grpc
import pytest
from google.rpc import error_details_pb2

from libs.common.logging import configure_logging
from libs.common.status import call_status
from segments.v1 import definition_model_pb2 as dm
from segments.v1 import evaluator_service_pb2 as pb

from .conftest import PROJECT, AllServices

DEFINITION = "/segments.v1.SegmentDefinitionService/"
EVALUATOR = "/segments.v1.SegmentEvaluatorService/"


def _identity(data: bytes) -> bytes:
    return data


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited field."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def nested_node(depth: int) -> bytes:
    """A condition tree `depth` groups deep (encoded by hand: the encoder would refuse it)."""
    node = dm.Node(
        did_event=dm.DidEventCondition(event=dm.EventSpec(event_name="e"))
    ).SerializeToString()
    for _ in range(depth):
        node = _varint(1 << 3) + _varint(dm.BOOLEAN_OPERATOR_NOT) + _field(2, node)
    return node


def error_info(exc: grpc.aio.AioRpcError) -> error_details_pb2.ErrorInfo:
    status = call_status(exc)
    assert status is not None, exc
    for detail in status.details:
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            return info
    raise AssertionError(f"no ErrorInfo in {status}")


async def _unary(all_services: AllServices, method: str, body: bytes, request_id: str) -> None:
    call = all_services.channel.unary_unary(method, _identity, _identity)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call(body, timeout=30, metadata=(("x-request-id", request_id),))
    _check(caught.value, request_id)


def _check(exc: grpc.aio.AioRpcError, request_id: str) -> None:
    assert exc.code() is grpc.StatusCode.INVALID_ARGUMENT, exc
    assert "cannot be decoded" in (exc.details() or "")
    assert error_info(exc).reason == "REQUEST_UNDECODABLE"
    trailers: list[tuple[str, object]] = list(exc.trailing_metadata() or ())  # type: ignore[arg-type]
    assert ("x-request-id", request_id) in trailers


async def test_undecodable_requests_are_invalid_argument(all_services: AllServices) -> None:
    deep = _field(1, f"projects/{PROJECT}".encode()) + _field(
        2,
        _field(1, _field(1, nested_node(120))),  # definition.past_behavior.root
    )
    shallow = _field(1, f"projects/{PROJECT}".encode()) + _field(
        2, _field(1, _field(1, nested_node(3)))
    )
    cases = {
        "deep": (EVALUATOR + "EstimateDefinition", deep),
        "corrupt": (DEFINITION + "GetSegment", b"\x0a\xff\xff\xff\xff\x0f"),
        "utf8": (DEFINITION + "GetSegment", _field(1, b"projects/\xff\xfe/segments/x")),
        "truncated": (EVALUATOR + "CountSegment", _field(1, b"projects/p/segments/s")[:-3]),
    }
    buffer = io.StringIO()
    configure_logging("INFO", stream=buffer)
    try:
        for request_id, (method, body) in cases.items():
            await _unary(all_services, method, body, f"undecodable-{request_id}")
        # the same tree a few levels deep decodes (and is then judged on its content)
        call = all_services.channel.unary_unary(
            EVALUATOR + "EstimateDefinition", _identity, _identity
        )
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call(shallow, timeout=30)
        assert error_info(caught.value).reason != "REQUEST_UNDECODABLE"
    finally:
        configure_logging("INFO")
    lines = [json.loads(line) for line in buffer.getvalue().splitlines()]
    logged = {
        line["request_id"]: line["code"]
        for line in lines
        if line["event"] == "rpc" and line["request_id"].startswith("undecodable-")
    }
    assert logged == {f"undecodable-{k}": "INVALID_ARGUMENT" for k in cases}


async def test_an_undecodable_message_in_a_stream(all_services: AllServices) -> None:
    good = pb.IngestEventsRequest(parent=f"projects/{PROJECT}").SerializeToString()

    async def messages() -> AsyncIterator[bytes]:
        yield good
        yield b"\x0a\x05\xc3\x28abc"  # parent: invalid UTF-8

    call = all_services.channel.stream_unary(EVALUATOR + "IngestEvents", _identity, _identity)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call(messages(), timeout=30, metadata=(("x-request-id", "undecodable-stream"),))
    _check(caught.value, "undecodable-stream")
