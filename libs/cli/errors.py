"""Exit codes of the client commands, and the one rendering of a failed call: status, message,
reason, metadata, field and precondition violations and the request id, as one readable block
(or one JSON object with `-o json`), on stderr."""

from __future__ import annotations

import json
from typing import Any

import grpc
from google.protobuf import json_format
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

EXIT_OK = 0
#: The server failed or could not be reached (UNAVAILABLE, INTERNAL, DEADLINE_EXCEEDED, ...),
#: or a job ended failed or cancelled.
EXIT_SERVER = 1
#: The command line or a local file is wrong; nothing was sent.
EXIT_USAGE = 2
#: NOT_FOUND.
EXIT_NOT_FOUND = 3
#: The server refused the request as given: INVALID_ARGUMENT, FAILED_PRECONDITION,
#: ALREADY_EXISTS, ABORTED (stale etag), OUT_OF_RANGE; also rows rejected by an ingest.
EXIT_REFUSED = 4
#: UNAUTHENTICATED or PERMISSION_DENIED.
EXIT_DENIED = 5

_EXIT_BY_CODE = {
    grpc.StatusCode.NOT_FOUND: EXIT_NOT_FOUND,
    grpc.StatusCode.INVALID_ARGUMENT: EXIT_REFUSED,
    grpc.StatusCode.FAILED_PRECONDITION: EXIT_REFUSED,
    grpc.StatusCode.ALREADY_EXISTS: EXIT_REFUSED,
    grpc.StatusCode.ABORTED: EXIT_REFUSED,
    grpc.StatusCode.OUT_OF_RANGE: EXIT_REFUSED,
    grpc.StatusCode.UNAUTHENTICATED: EXIT_DENIED,
    grpc.StatusCode.PERMISSION_DENIED: EXIT_DENIED,
}


class UsageError(Exception):
    """A wrong command line or local file: printed as is, exit code 2."""


def exit_code(code: grpc.StatusCode) -> int:
    return _EXIT_BY_CODE.get(code, EXIT_SERVER)


def _trailer(error: grpc.RpcError, key: str) -> str:
    call: Any = error
    for item in call.trailing_metadata() or ():
        if item[0] == key:
            value = item[1]
            return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    return ""


def _details(status: status_pb2.Status | None) -> dict[str, Any]:
    """ErrorInfo, BadRequest and PreconditionFailure of a status, as plain values."""
    found: dict[str, Any] = {"violations": [], "preconditions": []}
    for detail in status.details if status is not None else ():
        info = error_details_pb2.ErrorInfo()
        bad = error_details_pb2.BadRequest()
        failure = error_details_pb2.PreconditionFailure()
        if detail.Unpack(info):  # False, and nothing read, for another kind of detail
            found["reason"], found["domain"] = info.reason, info.domain
            found["metadata"] = dict(sorted(info.metadata.items()))
        elif detail.Unpack(bad):
            found["violations"] += [(v.field, v.description) for v in bad.field_violations]
        elif detail.Unpack(failure):
            found["preconditions"] += [
                (v.type, v.subject, v.description) for v in failure.violations
            ]
    return found


def describe_rpc_error(error: grpc.RpcError) -> tuple[grpc.StatusCode, str, dict[str, Any]]:
    """(code, message, details) of a failed call."""
    call: Any = error
    code: grpc.StatusCode = call.code()
    message: str = call.details() or ""
    try:
        status = rpc_status.from_call(call)
    except ValueError:  # a status that disagrees with the call's code: keep the call's
        status = None
    found = _details(status)
    found["request_id"] = _trailer(error, "x-request-id")
    return code, message, found


def render_rpc_error(error: grpc.RpcError, *, as_json: bool) -> str:
    """The block printed for a failed call."""
    code, message, found = describe_rpc_error(error)
    if as_json:
        body: dict[str, Any] = {"code": code.name, "message": message}
        for key in ("reason", "domain", "metadata", "request_id"):
            if found.get(key):
                body[key] = found[key]
        if found["violations"]:
            body["field_violations"] = [
                {"field": f, "description": d} for f, d in found["violations"]
            ]
        if found["preconditions"]:
            body["precondition_violations"] = [
                {"type": t, "subject": s, "description": d} for t, s, d in found["preconditions"]
            ]
        return json.dumps({"error": body}, indent=2, ensure_ascii=False)
    lines = [f"error: {code.name}: {message}"]
    if found.get("reason"):
        lines.append(f"  reason: {found['reason']} ({found['domain']})")
    for key, value in (found.get("metadata") or {}).items():
        lines.append(f"  {key}: {value}")
    if found["violations"]:
        lines.append("  fields to fix:")
        lines += [f"    {field or '(request)'}: {text}" for field, text in found["violations"]]
    if found["preconditions"]:
        lines.append("  preconditions not met:")
        lines += [f"    {kind} {subject}: {text}" for kind, subject, text in found["preconditions"]]
    if code is grpc.StatusCode.UNAVAILABLE:
        lines.append("  (is the server running at the address given by --address?)")
    if found["request_id"]:
        lines.append(f"  request id: {found['request_id']}")
    return "\n".join(lines)


def status_block(status: status_pb2.Status) -> str:
    """A `google.rpc.Status` held in a resource (a failed job's error), as text."""
    code = next((c for c in grpc.StatusCode if c.value[0] == status.code), None)
    lines = [f"{code.name if code else status.code}: {status.message}"]
    found = _details(status)
    if found.get("reason"):
        lines.append(f"  reason: {found['reason']} ({found['domain']})")
    lines += [f"    {field}: {text}" for field, text in found["violations"]]
    return "\n".join(lines)


def status_json(status: status_pb2.Status) -> Any:
    return json_format.MessageToDict(status, preserving_proto_field_name=True)
