"""Reading a failed call's `google.rpc.Status` (what `interceptors` writes into the trailers):
for clients of the services, the services calling each other, and tests."""

from __future__ import annotations

from typing import Any

import grpc
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from libs.common.errors import FieldViolation


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
