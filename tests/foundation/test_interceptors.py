"""Error mapping, request ids and call logging for every kind of handler."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import google.rpc.error_details_pb2 as error_details_pb2
import grpc
import pytest
from grpc_status import rpc_status

from libs.common import errors
from libs.common.config import Config
from libs.common.context import caller_email, request_id
from libs.common.interceptors import INTERNAL_MESSAGE, STATUS_DETAILS_KEY
from libs.common.logging import configure_logging
from libs.common.status import call_status, field_violations

from .conftest import FakeService, raw_method, running

SECRET = "password=hunter2 at /srv/internal/db.py"

ERRORS: dict[str, tuple[errors.DomainError, grpc.StatusCode]] = {
    "invalid": (
        errors.InvalidArgument(
            "segment.display_name: must not be empty",
            violations=[errors.FieldViolation("segment.display_name", "must not be empty")],
            metadata={"field": "segment.display_name"},
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    ),
    "not_found": (errors.NotFound("segment not found"), grpc.StatusCode.NOT_FOUND),
    "exists": (errors.AlreadyExists("name taken"), grpc.StatusCode.ALREADY_EXISTS),
    "precondition": (
        errors.FailedPrecondition(
            "segment is used",
            violations=[
                errors.PreconditionViolation(
                    "DEPENDENT_SEGMENT", "projects/p/segments/b", "segment b includes it"
                )
            ],
            reason="SEGMENT_IN_USE",
        ),
        grpc.StatusCode.FAILED_PRECONDITION,
    ),
    "aborted": (errors.Aborted("stale etag", reason="ETAG_MISMATCH"), grpc.StatusCode.ABORTED),
    "denied": (errors.PermissionDenied("other project"), grpc.StatusCode.PERMISSION_DENIED),
    "unauth": (errors.Unauthenticated("who are you"), grpc.StatusCode.UNAUTHENTICATED),
    "exhausted": (errors.ResourceExhausted("too many"), grpc.StatusCode.RESOURCE_EXHAUSTED),
    "unavailable": (errors.Unavailable("store down"), grpc.StatusCode.UNAVAILABLE),
    "deadline": (errors.DeadlineExceeded("query too slow"), grpc.StatusCode.DEADLINE_EXCEEDED),
    "unimplemented": (errors.Unimplemented("later"), grpc.StatusCode.UNIMPLEMENTED),
    "internal": (errors.Internal("invariant broken"), grpc.StatusCode.INTERNAL),
}
KINDS = ["unary_unary", "unary_stream", "stream_unary", "stream_stream"]


def _raise_for(key: bytes) -> None:
    text = key.decode()
    if text in ERRORS:
        raise ERRORS[text][0]
    if text == "crash":
        raise RuntimeError(SECRET)
    if text == "notimpl":
        raise NotImplementedError("Method not implemented!")


async def _unary(request: bytes, context: Any) -> bytes:
    _raise_for(request)
    if request == b"whoami":
        return f"{caller_email(context)}|{request_id()}".encode()
    return b"ok:" + request


async def _unary_stream(request: bytes, context: Any) -> AsyncIterator[bytes]:
    yield b"first"
    _raise_for(request)
    yield b"ok:" + request


async def _stream_unary(requests: AsyncIterator[bytes], context: Any) -> bytes:
    last = b""
    async for request in requests:
        _raise_for(request)
        last = request
    return b"ok:" + last


async def _stream_stream(requests: AsyncIterator[bytes], context: Any) -> AsyncIterator[bytes]:
    async for request in requests:
        _raise_for(request)
        yield b"ok:" + request


async def _writer(request: bytes, context: Any) -> None:
    await context.write(b"written")
    _raise_for(request)


async def _self_abort(request: bytes, context: Any) -> bytes:
    await context.abort(grpc.StatusCode.OUT_OF_RANGE, "page token out of range")
    raise AssertionError("unreachable")


async def _sleep(request: bytes, context: Any) -> bytes:
    await asyncio.sleep(3600)
    return b""


HANDLERS: dict[str, grpc.RpcMethodHandler[Any, Any]] = {
    "unary_unary": grpc.unary_unary_rpc_method_handler(_unary),
    "unary_stream": grpc.unary_stream_rpc_method_handler(_unary_stream),
    "stream_unary": grpc.stream_unary_rpc_method_handler(_stream_unary),
    "stream_stream": grpc.stream_stream_rpc_method_handler(_stream_stream),
    "writer": grpc.unary_stream_rpc_method_handler(_writer),
    "self_abort": grpc.unary_unary_rpc_method_handler(_self_abort),
    "sleep": grpc.unary_unary_rpc_method_handler(_sleep),
}


async def _invoke(
    channel: grpc.aio.Channel, kind: str, payload: bytes, metadata: Any = ()
) -> tuple[list[bytes], grpc.aio.AioRpcError | None]:
    """Calls test.Fake/<kind>; returns the responses received and the error, if any."""
    method = raw_method(channel, kind, kind)
    received: list[bytes] = []

    def requests() -> Iterator[bytes]:
        yield b"warm-up"
        yield payload

    try:
        if kind == "unary_unary":
            received.append(await method(payload, metadata=metadata, timeout=10))
        elif kind == "unary_stream":
            async for item in method(payload, metadata=metadata, timeout=10):
                received.append(item)
        elif kind == "stream_unary":
            received.append(await method(requests(), metadata=metadata, timeout=10))
        else:
            async for item in method(requests(), metadata=metadata, timeout=10):
                received.append(item)
    except grpc.aio.AioRpcError as exc:
        return received, exc
    return received, None


def _details(error: grpc.aio.AioRpcError) -> dict[str, Any]:
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None
    found: dict[str, Any] = {}
    for detail in status.details:
        for cls in (
            error_details_pb2.ErrorInfo,
            error_details_pb2.BadRequest,
            error_details_pb2.PreconditionFailure,
        ):
            if detail.Is(cls.DESCRIPTOR):
                message = cls()
                detail.Unpack(message)
                found[cls.__name__] = message
    return found


def _trailer(error: grpc.aio.AioRpcError, key: str) -> str | bytes | None:
    items: Any = error.trailing_metadata() or ()
    for name, value in items:
        if name == key:
            return value  # type: ignore[no-any-return]
    return None


@pytest.fixture
async def channel(config: Config) -> AsyncIterator[grpc.aio.Channel]:
    async with running([FakeService(HANDLERS)], config) as (_, chan):
        yield chan


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    "key",
    [
        pytest.param(k, marks=pytest.mark.provokes_internal) if k == "internal" else k
        for k in ERRORS
    ],
)
async def test_domain_error_mapping(channel: grpc.aio.Channel, kind: str, key: str) -> None:
    error, code = ERRORS[key]
    _, failure = await _invoke(channel, kind, key.encode(), metadata=(("x-request-id", "r-1"),))
    assert failure is not None
    assert failure.code() is code
    assert failure.details() == error.message
    assert _trailer(failure, "x-request-id") == "r-1"
    details = _details(failure)
    info = details["ErrorInfo"]
    assert (info.reason, info.domain) == (error.reason, "segments.v1")
    assert dict(info.metadata) == error.metadata
    if isinstance(error, errors.InvalidArgument):
        violations = details["BadRequest"].field_violations
        assert [(v.field, v.description) for v in violations] == [
            ("segment.display_name", "must not be empty")
        ]
    else:
        assert "BadRequest" not in details
    if isinstance(error, errors.FailedPrecondition):
        (violation,) = details["PreconditionFailure"].violations
        assert violation.type == "DEPENDENT_SEGMENT"
        assert violation.subject == "projects/p/segments/b"
    else:
        assert "PreconditionFailure" not in details


@pytest.mark.provokes_internal
@pytest.mark.parametrize("kind", KINDS)
async def test_unknown_exception_is_internal_without_leak(
    channel: grpc.aio.Channel, kind: str
) -> None:
    _, failure = await _invoke(channel, kind, b"crash")
    assert failure is not None
    assert failure.code() is grpc.StatusCode.INTERNAL
    assert failure.details() == INTERNAL_MESSAGE
    everything = repr(failure.trailing_metadata()) + (failure.debug_error_string() or "")
    assert "hunter2" not in everything
    assert "hunter2" not in (failure.details() or "")
    info = _details(failure)["ErrorInfo"]
    assert info.reason == "INTERNAL"
    assert info.metadata["request_id"] == _trailer(failure, "x-request-id")


@pytest.mark.parametrize("kind", KINDS)
async def test_success_echoes_request_id(channel: grpc.aio.Channel, kind: str) -> None:
    method = raw_method(channel, kind, kind)
    if kind == "unary_unary":
        call = method(b"hello", metadata=(("x-request-id", "abc-123"),), timeout=10)
        assert await call == b"ok:hello"
    elif kind == "stream_unary":
        call = method(iter([b"hello"]), metadata=(("x-request-id", "abc-123"),), timeout=10)
        assert await call == b"ok:hello"
    else:
        payload: Any = b"hello" if kind == "unary_stream" else iter([b"hello"])
        call = method(payload, metadata=(("x-request-id", "abc-123"),), timeout=10)
        assert [item async for item in call][-1] == b"ok:hello"
    assert ("x-request-id", "abc-123") in tuple(await call.trailing_metadata())
    assert await call.code() is grpc.StatusCode.OK


async def test_generated_request_id_and_caller_identity(channel: grpc.aio.Channel) -> None:
    method = raw_method(channel, "unary_unary", "unary_unary")
    call = method(b"whoami", metadata=(("x-user-email", " ada@example.com "),), timeout=10)
    caller, rid = (await call).decode().split("|")
    # the test key's principal is a service: it may act for a person
    assert caller == "ada@example.com via test-admin"
    assert len(rid) == 32
    assert ("x-request-id", rid) in tuple(await call.trailing_metadata())
    alone = await method(b"whoami", timeout=10)
    assert alone.decode().startswith("test-admin|")


async def test_oversized_request_id_is_replaced(channel: grpc.aio.Channel) -> None:
    _, failure = await _invoke(
        channel, "unary_unary", b"not_found", metadata=(("x-request-id", "x" * 500),)
    )
    assert failure is not None
    rid = _trailer(failure, "x-request-id")
    assert isinstance(rid, str) and rid != "x" * 500 and len(rid) == 32


async def test_error_after_some_responses(channel: grpc.aio.Channel) -> None:
    received, failure = await _invoke(channel, "unary_stream", b"not_found")
    assert received == [b"first"]
    assert failure is not None and failure.code() is grpc.StatusCode.NOT_FOUND


async def test_context_write_handler_is_mapped(channel: grpc.aio.Channel) -> None:
    method = raw_method(channel, "unary_stream", "writer")
    ok = [item async for item in method(b"fine", timeout=10)]
    assert ok == [b"written"]
    _, failure = await _invoke_writer(channel, b"exists")
    assert failure is not None and failure.code() is grpc.StatusCode.ALREADY_EXISTS


async def _invoke_writer(
    channel: grpc.aio.Channel, payload: bytes
) -> tuple[list[bytes], grpc.aio.AioRpcError | None]:
    method = raw_method(channel, "unary_stream", "writer")
    received: list[bytes] = []
    try:
        async for item in method(payload, timeout=10):
            received.append(item)
    except grpc.aio.AioRpcError as exc:
        return received, exc
    return received, None


async def test_handler_abort_keeps_its_status(channel: grpc.aio.Channel) -> None:
    method = raw_method(channel, "unary_unary", "self_abort")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await method(b"", metadata=(("x-request-id", "r-9"),), timeout=10)
    assert caught.value.code() is grpc.StatusCode.OUT_OF_RANGE
    assert caught.value.details() == "page token out of range"
    assert _trailer(caught.value, "x-request-id") == "r-9"


@pytest.mark.parametrize("kind", KINDS)
async def test_not_implemented_error_is_unimplemented(channel: grpc.aio.Channel, kind: str) -> None:
    _, failure = await _invoke(channel, kind, b"notimpl")
    assert failure is not None
    assert failure.code() is grpc.StatusCode.UNIMPLEMENTED
    assert failure.details() == f"/test.Fake/{kind} is not implemented"


async def test_expired_deadline(channel: grpc.aio.Channel) -> None:
    method = raw_method(channel, "unary_unary", "sleep")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await method(b"", timeout=0.2)
    assert caught.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED


@pytest.mark.provokes_internal
async def test_each_call_logged_once_with_request_id(channel: grpc.aio.Channel) -> None:
    buffer = io.StringIO()
    configure_logging("INFO", stream=buffer)
    try:
        await _invoke(channel, "unary_unary", b"crash", metadata=(("x-request-id", "log-1"),))
        await _invoke(channel, "stream_stream", b"fine", metadata=(("x-request-id", "log-2"),))
    finally:
        configure_logging("INFO")
    lines = [json.loads(line) for line in buffer.getvalue().splitlines()]
    calls = [line for line in lines if line["event"] == "rpc"]
    assert [(c["request_id"], c["method"], c["code"]) for c in calls] == [
        ("log-1", "/test.Fake/unary_unary", "INTERNAL"),
        ("log-2", "/test.Fake/stream_stream", "OK"),
    ]
    assert all(isinstance(c["duration_ms"], float) for c in calls)
    (crash,) = [line for line in lines if line["event"] == "rpc_unhandled_exception"]
    assert crash["request_id"] == "log-1"
    assert "RuntimeError" in crash["exception"] and "hunter2" in crash["exception"]


def test_status_details_key_is_the_grpc_one() -> None:
    assert STATUS_DETAILS_KEY == "grpc-status-details-bin"


def test_a_call_without_a_rich_status_has_no_field_violations() -> None:
    plain = grpc.aio.AioRpcError(
        grpc.StatusCode.INVALID_ARGUMENT, grpc.aio.Metadata(), grpc.aio.Metadata(), "bad", None
    )
    assert call_status(plain) is None
    assert field_violations(plain) == []


def test_a_status_quoting_huge_input_stays_small() -> None:
    from libs.common.interceptors import rich_status

    huge = "é" * 100_000
    error = errors.InvalidArgument(
        f"name: {huge!r} is not valid",
        violations=[errors.FieldViolation(f"f{i}", huge) for i in range(500)],
        metadata={"value": huge},
    )
    status = rich_status(error)
    assert len(status.message.encode()) <= 800
    assert status.message.startswith("name: 'éé") and status.message.endswith("chars)")
    assert status.ByteSize() < 8_000
    bad = error_details_pb2.BadRequest()
    assert any(d.Unpack(bad) for d in status.details)
    assert 1 <= len(bad.field_violations) < 500
    assert bad.field_violations[0].field == "f0"
