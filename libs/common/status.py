"""Reading a failed call's `google.rpc.Status` (what `interceptors` writes into the trailers):
for clients of the services, the services calling each other, and tests."""

from __future__ import annotations

from typing import Any

import grpc
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from libs.common.errors import (
    Aborted,
    AlreadyExists,
    DeadlineExceeded,
    DomainError,
    FailedPrecondition,
    FieldViolation,
    Internal,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
    Unimplemented,
)

#: The domain error a peer's failed call stands for, by its status code.
PEER_CODES: dict[grpc.StatusCode, type[DomainError]] = {
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgument,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPrecondition,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExists,
    grpc.StatusCode.ABORTED: Aborted,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDenied,
    grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhausted,
    grpc.StatusCode.UNAVAILABLE: Unavailable,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceeded,
    grpc.StatusCode.UNIMPLEMENTED: Unimplemented,
}


def call_status(exc: grpc.aio.AioRpcError) -> status_pb2.Status | None:
    """The rich status a failed call carries, or None when it carries none."""
    call: Any = exc  # an aio error offers what `from_call` reads: code, details, trailers
    status: status_pb2.Status | None = rpc_status.from_call(call)
    return status


def field_violations(exc: grpc.aio.AioRpcError) -> list[FieldViolation]:
    """The `BadRequest` field violations of a failed call, in order; empty when none."""
    status = call_status(exc)
    found: list[FieldViolation] = []
    for detail in status.details if status is not None else ():
        bad = error_details_pb2.BadRequest()
        if detail.Unpack(bad):
            found += [FieldViolation(v.field, v.description) for v in bad.field_violations]
    return found


def error_reason(exc: grpc.aio.AioRpcError) -> str:
    """The `ErrorInfo` reason of a failed call, or "" when it carries none."""
    status = call_status(exc)
    for detail in status.details if status is not None else ():
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            return info.reason
    return ""


def peer_error(exc: grpc.aio.AioRpcError, peer: str) -> DomainError:
    """A failed call to another Segments service as the domain error it stands for here: the
    same status code (INTERNAL for a code a caller cannot act on), the peer's ErrorInfo
    reason and field violations, and a message naming the peer ("evaluator: ...")."""
    kind = PEER_CODES.get(exc.code(), Internal)
    message = f"{peer}: {exc.details() or exc.code().name}"
    reason = error_reason(exc) or None
    if kind is InvalidArgument:
        return InvalidArgument(message, violations=field_violations(exc), reason=reason)
    return kind(message, reason=reason)
