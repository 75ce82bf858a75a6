"""The access matrix: every RPC of the four services (generated from the role table, so that
a new RPC cannot be forgotten) called with no key, a malformed one, an unknown one, a
revoked one, an expired one, a key of another project, a key with too small a role, and the
right key. Expected: UNAUTHENTICATED x5, NOT_FOUND (existence never leaks), PERMISSION_DENIED,
OK (or, for an RPC whose service still answers UNIMPLEMENTED, a status showing the call got
past the access check). One server per store backend; samples in tests/security/samples.py."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from google.protobuf import descriptor_pool, message_factory
from google.rpc import error_details_pb2

from libs.common.access import named_projects
from libs.common.rpc_roles import RPC_ROLES, SELF_RPCS, UNSCOPED_RPCS
from libs.common.status import call_status
from tests.support.auth import bearer

from .conftest import Suite
from .samples import SAMPLES, sample_for

AUTH_REFUSALS = {"UNAUTHENTICATED", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED"}
#: Server streams that follow changes until the caller cancels them: such a call was served
#: when it is still open after a moment (a refusal ends it at once).
FOLLOWING_STREAMS = frozenset(
    {
        "/segments.v1.SegmentEvaluatorService/StreamLiveEntries",
        "/segments.v1.SegmentDefinitionService/WatchLiveSegments",
    }
)


def test_every_rpc_has_a_sample() -> None:
    missing = sorted(set(RPC_ROLES) - set(SAMPLES))
    assert missing == [], f"add samples to tests/security/samples.py for: {missing}"
    assert sorted(set(SAMPLES) - set(RPC_ROLES)) == []


async def _call(
    channel: grpc.aio.Channel, method: str, request: Any, metadata: Any
) -> tuple[str, str]:
    """(status code name, ErrorInfo reason) of calling `method` with `request`."""
    descriptor = descriptor_pool.Default().FindMethodByName(method.strip("/").replace("/", "."))
    ser: Any = message_factory.GetMessageClass(descriptor.input_type).SerializeToString
    de: Any = message_factory.GetMessageClass(descriptor.output_type).FromString

    async def messages() -> AsyncIterator[Any]:
        for message in request:
            yield message

    try:
        if descriptor.client_streaming and descriptor.server_streaming:
            streamed = channel.stream_stream(method, ser, de)(messages(), metadata=metadata)
            _ = [r async for r in streamed]
        elif descriptor.client_streaming:
            await channel.stream_unary(method, ser, de)(messages(), metadata=metadata, timeout=60)
        elif descriptor.server_streaming:
            answers = channel.unary_stream(method, ser, de)(request, metadata=metadata, timeout=60)
            if method in FOLLOWING_STREAMS:
                try:
                    await asyncio.wait_for(asyncio.shield(answers.code()), 2.0)
                except TimeoutError:
                    answers.cancel()
                    return "OK", ""
            _ = [r async for r in answers]
        else:
            await channel.unary_unary(method, ser, de)(request, metadata=metadata, timeout=60)
    except grpc.aio.AioRpcError as exc:
        info = error_details_pb2.ErrorInfo()
        status = call_status(exc)
        for detail in status.details if status is not None else ():
            if detail.Unpack(info):
                break
        return exc.code().name, info.reason
    return "OK", ""


@pytest.mark.parametrize("method", sorted(RPC_ROLES))
async def test_access_matrix(suite: Suite, method: str) -> None:
    role = int(RPC_ROLES[method])
    request = await sample_for(method)(suite.ctx)
    first = request[0] if isinstance(request, list) else request
    scope = "self" if method in SELF_RPCS else "all" if method in UNSCOPED_RPCS else "project"
    if scope == "project":
        projects = named_projects(first)
        assert len(projects) == 1, f"the sample of {method} must name one project"
        right = await suite.key(projects[0], role)
        smaller = await suite.key(projects[0], role - 1) if role > 1 else None
    elif scope == "all":
        right, smaller = suite.all_projects[role], suite.all_projects.get(role - 1)
    else:
        right, smaller = await suite.key(suite.ctx.project, 1), None

    cases: list[tuple[str, Any, set[str], set[str]]] = [
        ("no key", (), {"UNAUTHENTICATED"}, {"API_KEY_MISSING"}),
        (
            "malformed",
            (("authorization", "Basic dXNlcjpwYXNz"),),
            {"UNAUTHENTICATED"},
            {"API_KEY_MALFORMED"},
        ),
        (
            "unknown",
            bearer("sgk_0123456789ab_" + "u" * 43),
            {"UNAUTHENTICATED"},
            {"API_KEY_UNKNOWN"},
        ),
        ("revoked", bearer(suite.revoked_key), {"UNAUTHENTICATED"}, {"API_KEY_REVOKED"}),
        ("expired", bearer(suite.expired_key), {"UNAUTHENTICATED"}, {"API_KEY_EXPIRED"}),
    ]
    other = bearer(suite.other_key)
    if scope == "project":
        cases.append(("another project's key", other, {"NOT_FOUND"}, {"PROJECT_NOT_FOUND"}))
    elif scope == "all":
        cases.append(
            (
                "another project's key",
                other,
                {"PERMISSION_DENIED"},
                {"ROLE_ON_ALL_PROJECTS_REQUIRED"},
            )
        )
    if smaller is not None:
        reasons = {"ROLE_TOO_SMALL", "ROLE_ON_ALL_PROJECTS_REQUIRED"}
        cases.append(("too small a role", bearer(smaller), {"PERMISSION_DENIED"}, reasons))
    if scope == "self":  # about the caller's own key: any valid key is served
        cases.append(("another project's key", other, {"OK"}, {""}))
    cases.append(("the right key", bearer(right), {"OK", "UNIMPLEMENTED"}, {"", "UNIMPLEMENTED"}))

    async with grpc.aio.insecure_channel(suite.server.address) as channel:
        for case, metadata, codes, reasons in cases:
            code, reason = await _call(channel, method, request, metadata)
            assert code in codes, f"{method} with {case}: {code} ({reason})"
            if code != "UNIMPLEMENTED":
                assert reason in reasons, f"{method} with {case}: {code} ({reason})"
            else:  # a service still to be written: the call got past the access check
                assert code not in AUTH_REFUSALS and reason != "PROJECT_NOT_FOUND"
