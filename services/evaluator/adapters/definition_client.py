"""The definition service, reached over gRPC: segment definitions and project time zones."""

from __future__ import annotations

import grpc

from libs.common.errors import NotFound
from libs.common.peers import open_peer_channel, peer_metadata
from libs.common.status import peer_error
from libs.model.definition import Definition
from libs.model.definition_proto import definition_from_proto
from libs.model.definition_to_proto import definition_to_proto
from segments.v1 import definition_service_pb2 as dpb
from segments.v1 import definition_service_pb2_grpc as dpb_grpc
from services.evaluator.domain.ports import ResolvedSegment


def _translate(exc: grpc.aio.AioRpcError) -> Exception:
    return peer_error(exc, "definition service")


class GrpcSegmentSource:
    """`SegmentSource` over the definition service's GetSegmentDependencies, GetProject and
    ValidateDefinition."""

    def __init__(self, address: str, timeout_seconds: float = 30.0) -> None:
        self._address = address
        self._timeout = timeout_seconds
        self._channel: grpc.aio.Channel | None = None

    def _stub(self) -> dpb_grpc.SegmentDefinitionServiceAsyncStub:
        if self._channel is None:
            self._channel = open_peer_channel(self._address)
        return dpb_grpc.SegmentDefinitionServiceStub(self._channel)

    async def resolve(self, segment: str) -> ResolvedSegment:
        try:
            response = await self._stub().GetSegmentDependencies(
                dpb.GetSegmentDependenciesRequest(name=segment),
                timeout=self._timeout,
                metadata=peer_metadata(),
            )
        except grpc.aio.AioRpcError as exc:
            raise _translate(exc) from exc
        definitions: dict[str, Definition] = {}
        for item in response.segments:
            definitions[item.name] = definition_from_proto(item.definition)
        if segment not in definitions:
            raise NotFound(f"segment {segment} not found")
        target = definitions.pop(segment)
        return ResolvedSegment(segment, target, definitions)

    async def validate(self, project: str, definition: Definition) -> None:
        request = dpb.ValidateDefinitionRequest(
            parent=f"projects/{project}", definition=definition_to_proto(definition)
        )
        try:
            await self._stub().ValidateDefinition(
                request, timeout=self._timeout, metadata=peer_metadata()
            )
        except grpc.aio.AioRpcError as exc:
            raise _translate(exc) from exc

    async def time_zone(self, project: str) -> str:
        try:
            response = await self._stub().GetProject(
                dpb.GetProjectRequest(name=f"projects/{project}"),
                timeout=self._timeout,
                metadata=peer_metadata(),
            )
        except grpc.aio.AioRpcError as exc:
            raise _translate(exc) from exc
        return response.time_zone or "UTC"

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close(None)
            self._channel = None
