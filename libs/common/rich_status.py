"""The ``google.rpc.Status`` of a domain error: its gRPC code, an ``ErrorInfo`` (reason,
domain, metadata), ``BadRequest`` field violations for `InvalidArgument`,
``PreconditionFailure`` violations for `FailedPrecondition`, and a ``RetryInfo`` for
`ResourceExhausted` and `Unavailable` with a retry delay; bounded in size (`clip`).
"""

from __future__ import annotations

from typing import Any

import google.rpc.error_details_pb2 as error_details_pb2
import google.rpc.status_pb2 as status_pb2
import grpc
from google.protobuf import any_pb2, duration_pb2

from libs.common import errors

_CODES: dict[type[errors.DomainError], grpc.StatusCode] = {
    errors.InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    errors.NotFound: grpc.StatusCode.NOT_FOUND,
    errors.AlreadyExists: grpc.StatusCode.ALREADY_EXISTS,
    errors.FailedPrecondition: grpc.StatusCode.FAILED_PRECONDITION,
    errors.Aborted: grpc.StatusCode.ABORTED,
    errors.PermissionDenied: grpc.StatusCode.PERMISSION_DENIED,
    errors.Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
    errors.ResourceExhausted: grpc.StatusCode.RESOURCE_EXHAUSTED,
    errors.Unavailable: grpc.StatusCode.UNAVAILABLE,
    errors.DeadlineExceeded: grpc.StatusCode.DEADLINE_EXCEEDED,
    errors.Unimplemented: grpc.StatusCode.UNIMPLEMENTED,
    errors.Internal: grpc.StatusCode.INTERNAL,
}


def status_code_for(error: errors.DomainError) -> grpc.StatusCode:
    """The gRPC code of a domain error (its nearest mapped base class; INTERNAL otherwise)."""
    for cls in type(error).__mro__:
        code = _CODES.get(cls)
        if code is not None:
            return code
    return grpc.StatusCode.INTERNAL


def pack(message: Any) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


#: Bounds of what an error status repeats: a message quoting a huge request field would
#: otherwise exceed the size clients accept for trailers (16 KiB; the message is
#: percent-encoded, the details base64-encoded). UTF-8 bytes of the message, characters of
#: each detail text, and bytes of all details together (violations beyond it are left out).
MAX_MESSAGE_BYTES = 800
MAX_DETAIL_CHARS = 200
MAX_DETAILS_BYTES = 6000


def clip(text: str, limit: int) -> str:
    """`text` cut to `limit` characters, saying that it was cut."""
    if len(text) <= limit:
        return text
    return text[: max(0, limit - 20)] + f"... ({len(text)} chars)"


def status_message(error: errors.DomainError) -> str:
    """The error's message, cut to `MAX_MESSAGE_BYTES` of UTF-8."""
    encoded = error.message.encode()
    if len(encoded) <= MAX_MESSAGE_BYTES:
        return error.message
    kept = encoded[: MAX_MESSAGE_BYTES - 40].decode(errors="ignore")
    return f"{kept}... ({len(error.message)} chars)"


def rich_status(error: errors.DomainError) -> status_pb2.Status:
    """The ``google.rpc.Status`` a client decodes with ``grpc_status.rpc_status.from_call``."""
    code = status_code_for(error)
    info = error_details_pb2.ErrorInfo(
        reason=error.reason,
        domain=errors.ERROR_DOMAIN,
        metadata={
            clip(k, MAX_DETAIL_CHARS): clip(v, MAX_DETAIL_CHARS)
            for k, v in list(error.metadata.items())[:20]
        },
    )
    field_violations = [
        error_details_pb2.BadRequest.FieldViolation(
            field=clip(v.field, MAX_DETAIL_CHARS), description=clip(v.description, MAX_DETAIL_CHARS)
        )
        for v in (error.violations if isinstance(error, errors.InvalidArgument) else ())
    ]
    preconditions = [
        error_details_pb2.PreconditionFailure.Violation(
            type=clip(v.type, MAX_DETAIL_CHARS),
            subject=clip(v.subject, MAX_DETAIL_CHARS),
            description=clip(v.description, MAX_DETAIL_CHARS),
        )
        for v in (error.violations if isinstance(error, errors.FailedPrecondition) else ())
    ]
    while True:
        status = status_pb2.Status(code=code.value[0], message=status_message(error))
        status.details.append(pack(info))
        if field_violations:
            bad_request = error_details_pb2.BadRequest(field_violations=field_violations)
            status.details.append(pack(bad_request))
        retry_after = getattr(error, "retry_after_seconds", None)
        retrying = isinstance(error, errors.ResourceExhausted | errors.Unavailable)
        if retrying and retry_after is not None:
            delay = duration_pb2.Duration()
            delay.FromNanoseconds(max(0, round(retry_after * 1e9)))
            status.details.append(pack(error_details_pb2.RetryInfo(retry_delay=delay)))
        if preconditions:
            failure = error_details_pb2.PreconditionFailure(violations=preconditions)
            status.details.append(pack(failure))
        over = status.ByteSize() > MAX_DETAILS_BYTES + MAX_MESSAGE_BYTES
        if not over or (len(field_violations) <= 1 and len(preconditions) <= 1):
            return status
        # leave out the later half of the violations until the status fits
        field_violations = field_violations[: len(field_violations) // 2 or 1]
        preconditions = preconditions[: len(preconditions) // 2 or 1]
