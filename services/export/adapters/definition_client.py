"""The definition service, reached over gRPC: whether a segment exists."""

from __future__ import annotations

import grpc

from libs.common.peers import open_peer_channel, peer_metadata
from libs.common.status import peer_error
from segments.v1 import definition_service_pb2 as dpb
from segments.v1 import definition_service_pb2_grpc as dpb_grpc


class GrpcSegmentCatalog:
    """`SegmentCatalog` over the definition service's GetSegment."""

    def __init__(self, address: str, timeout_seconds: float = 30.0) -> None:
        self._address = address
        self._timeout = timeout_seconds
        self._channel: grpc.aio.Channel | None = None

    async def check_exists(self, segment: str) -> None:
        if self._channel is None:
            self._channel = open_peer_channel(self._address)
        stub = dpb_grpc.SegmentDefinitionServiceStub(self._channel)
        try:
            await stub.GetSegment(
                dpb.GetSegmentRequest(name=segment), timeout=self._timeout, metadata=peer_metadata()
            )
        except grpc.aio.AioRpcError as exc:
            raise peer_error(exc, "definition service") from exc

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close(None)
            self._channel = None
