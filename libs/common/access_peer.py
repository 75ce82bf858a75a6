"""The access decider of a process that does not host the definition service: it asks the
definition service (CheckAccess) with the caller's own credential, so that access is decided
once, by the owner of keys and projects, the same way for every service."""

from __future__ import annotations

from datetime import UTC

import grpc
from google.rpc import error_details_pb2

from libs.common.access import Access
from libs.common.context import AUTHORIZATION_KEY, REQUEST_ID_KEY, Principal, PrincipalKind
from libs.common.errors import (
    DomainError,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unauthenticated,
    Unavailable,
)
from libs.common.logging import current_request_id
from libs.common.peers import open_peer_channel
from libs.common.rpc_roles import Role
from libs.common.status import call_status
from segments.v1 import access_pb2
from segments.v1 import definition_service_pb2_grpc as dpb_grpc

_PASSED_ON: dict[grpc.StatusCode, type[DomainError]] = {
    grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDenied,
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgument,
}


def _refusal(exc: grpc.aio.AioRpcError) -> DomainError:
    """The definition service's answer as the same error, reason and metadata included."""
    kind = _PASSED_ON.get(exc.code())
    if kind is None:
        return Unavailable(
            "the definition service, which decides access, did not answer: "
            f"{exc.code().name}: {exc.details() or ''}".rstrip(": "),
            reason="ACCESS_DECISION_UNAVAILABLE",
        )
    info = error_details_pb2.ErrorInfo()
    status = call_status(exc)
    for detail in status.details if status is not None else ():
        if detail.Unpack(info):
            break
    return kind(exc.details() or exc.code().name, reason=info.reason or None,
                metadata=dict(info.metadata))  # fmt: skip


class PeerAccessDecider:
    """`AccessDecider` over the definition service's CheckAccess at `address`."""

    def __init__(self, address: str, timeout_seconds: float = 10.0) -> None:
        self.address = address
        self._timeout = timeout_seconds
        self._channel: grpc.aio.Channel | None = None

    async def check(self, credential: str, projects: tuple[str, ...], role: Role | None) -> Access:
        if self._channel is None:
            self._channel = open_peer_channel(self.address)
        stub = dpb_grpc.SegmentDefinitionServiceStub(self._channel)
        metadata: list[tuple[str, str]] = []
        if credential:
            metadata.append((AUTHORIZATION_KEY, f"Bearer {credential}"))
        if current_request_id():
            metadata.append((REQUEST_ID_KEY, current_request_id()))
        request = access_pb2.CheckAccessRequest(projects=[f"projects/{p}" for p in projects])
        if role is not None:
            request.role = access_pb2.Role.ValueType(int(role))
        try:
            response = await stub.CheckAccess(request, timeout=self._timeout, metadata=metadata)
        except grpc.aio.AioRpcError as exc:
            raise _refusal(exc) from exc
        kind = (
            PrincipalKind.PERSON
            if response.principal.kind == access_pb2.PRINCIPAL_KIND_PERSON
            else PrincipalKind.SERVICE
        )
        key_id = response.api_key.removeprefix("apiKeys/")
        expire = None
        if response.HasField("expire_time"):
            expire = response.expire_time.ToDatetime(tzinfo=UTC)
        return Access(Principal(kind, response.principal.id, key_id), expire)

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close(None)
            self._channel = None
