"""The definition service, reached over gRPC: projects, their time zones and segments."""

from __future__ import annotations

import hashlib
import time
from typing import Any

import grpc

from libs.common.peers import open_peer_channel, peer_metadata
from libs.common.status import peer_error
from libs.model.definition_proto import timestamp_to_datetime
from segments.v1 import definition_service_pb2 as dpb
from segments.v1 import definition_service_pb2_grpc as dpb_grpc
from segments.v1 import segment_pb2
from services.reporting.domain.ports import SegmentInfo

#: segments kept by the catalog's cache
MAX_CACHED = 10_000


def definition_version(definition: Any) -> str:
    """A hash of the definition (deterministic serialisation): equal exactly when the
    definitions are."""
    data = definition.SerializeToString(deterministic=True)
    return hashlib.sha256(data).hexdigest()[:16]


def segment_info(segment: segment_pb2.Segment) -> SegmentInfo:
    return SegmentInfo(
        name=segment.name,
        live=segment.type == segment_pb2.SEGMENT_TYPE_LIVE,
        create_time=timestamp_to_datetime(segment.create_time),
        definition_version=definition_version(segment.definition),
    )


class GrpcSegmentCatalog:
    """`SegmentCatalog` over ListProjects, GetProject, ListSegments and GetSegment.

    A segment read by `segment` is reused for `cache_seconds` (reports read the same segment
    again and again): a segment deleted or changed in the meantime is seen within that time.
    """

    def __init__(
        self, address: str, timeout_seconds: float = 30.0, cache_seconds: float = 5.0
    ) -> None:
        self._address = address
        self._timeout = timeout_seconds
        self._cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, SegmentInfo]] = {}
        self._channel: grpc.aio.Channel | None = None

    def _stub(self) -> dpb_grpc.SegmentDefinitionServiceAsyncStub:
        if self._channel is None:
            self._channel = open_peer_channel(self._address)
        return dpb_grpc.SegmentDefinitionServiceStub(self._channel)

    async def _call(self, method: str, request: Any) -> Any:
        try:
            return await getattr(self._stub(), method)(
                request, timeout=self._timeout, metadata=peer_metadata()
            )
        except grpc.aio.AioRpcError as exc:
            raise peer_error(exc, "definition service") from exc

    async def segments(self, project: str) -> list[SegmentInfo]:
        found: list[SegmentInfo] = []
        token = ""
        while True:
            page = await self._call(
                "ListSegments",
                dpb.ListSegmentsRequest(
                    parent=f"projects/{project}", page_token=token, order_by="create_time"
                ),
            )
            found += [segment_info(s) for s in page.segments]
            token = page.next_page_token
            if not token:
                return found

    async def segment(self, name: str) -> SegmentInfo:
        now = time.monotonic()
        cached = self._cache.get(name)
        if cached is not None and now - cached[0] < self._cache_seconds:
            return cached[1]
        info = segment_info(await self._call("GetSegment", dpb.GetSegmentRequest(name=name)))
        if len(self._cache) >= MAX_CACHED:
            self._cache.clear()
        self._cache[name] = (now, info)
        return info

    async def time_zone(self, project: str) -> str:
        found = await self._call("GetProject", dpb.GetProjectRequest(name=f"projects/{project}"))
        return str(found.time_zone or "UTC")

    async def projects(self) -> list[str]:
        found: list[str] = []
        token = ""
        while True:
            page = await self._call(
                "ListProjects", dpb.ListProjectsRequest(page_size=1000, page_token=token)
            )
            found += [p.name.removeprefix("projects/") for p in page.projects]
            token = page.next_page_token
            if not token:
                return found

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close(None)
            self._channel = None
