"""The live-segment RPCs of the evaluator servicer: StreamLiveEntries and CountLiveEntries
(messages converted in `live_messages`, use cases in `live.reading`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc

from libs.common.errors import FailedPrecondition, InvalidArgument
from libs.model.definition import LiveDefinition
from libs.model.definition_proto import instant_from_proto
from segments.v1 import evaluator_service_pb2 as pb
from services.evaluator.application import Evaluator
from services.evaluator.domain.names import parse_project, parse_segment
from services.evaluator.live.delivery import follow
from services.evaluator.live.engine import LiveEngine
from services.evaluator.live.reading import count_entries, parse_cursor
from services.evaluator.live_messages import bucket_to_pb, entry_to_pb, live_entry_to_pb

Ctx = grpc.aio.ServicerContext[Any, Any]
#: StreamLiveEntriesRequest.max_entries_per_message, at most
MAX_ENTRIES_PER_MESSAGE = 1000


class LiveRpcs:
    ev: Evaluator

    def _engine(self) -> LiveEngine:
        if self.ev.live is None:
            raise FailedPrecondition(
                "live segments are not evaluated by this evaluator",
                reason="LIVE_SEGMENTS_NOT_AVAILABLE",
            )
        return self.ev.live

    async def _live_segment(self, segment: str, field: str = "segment") -> None:
        name = parse_segment(segment, field)
        resolved = await self.ev.segments.resolve(name.name)
        if not isinstance(resolved.definition, LiveDefinition):
            raise FailedPrecondition(f"{name.name} is not a live segment", reason="NOT_LIVE")

    async def StreamLiveEntries(
        self, request: pb.StreamLiveEntriesRequest, context: Ctx
    ) -> AsyncIterator[pb.StreamLiveEntriesResponse]:
        engine = self._engine()
        if bool(request.parent) == bool(request.segment):
            raise InvalidArgument.field("segment", "give either parent or segment")
        after = parse_cursor(request.resume_after, "resume_after")
        per_message = request.max_entries_per_message
        if not 0 <= per_message <= MAX_ENTRIES_PER_MESSAGE:
            raise InvalidArgument.field(
                "max_entries_per_message", f"must be 0 to {MAX_ENTRIES_PER_MESSAGE}"
            )
        if request.segment:
            await self._live_segment(request.segment)
            name = parse_segment(request.segment)
            project, segment_id = name.project, name.segment_id
        else:
            project, segment_id = parse_project(request.parent), None
        if after is None:  # from now on: fixed here, then told to the caller
            after = await engine.store.last_cursor()
        if context is not None:
            # the initial metadata tells the subscriber it is following: every entry made
            # after it arrives is sent
            await context.send_initial_metadata(())
        if per_message <= 1:
            async for group in follow(engine, project, segment_id, after, entry_to_pb):
                for message in group:
                    yield message
            return
        async for entries in follow(engine, project, segment_id, after, live_entry_to_pb):
            for start in range(0, len(entries), per_message):
                yield pb.StreamLiveEntriesResponse(entries=entries[start : start + per_message])

    async def CountLiveEntries(
        self, request: pb.CountLiveEntriesRequest, context: Ctx
    ) -> pb.CountLiveEntriesResponse:
        engine = self._engine()
        name = parse_segment(request.segment)
        for field in ("start_time", "end_time"):
            if not request.HasField(field):
                raise InvalidArgument.field(field, "is required")
        await self._live_segment(request.segment)
        by_day = request.bucket == pb.LIVE_ENTRY_BUCKET_DAY
        if request.bucket not in (
            pb.LIVE_ENTRY_BUCKET_UNSPECIFIED, pb.LIVE_ENTRY_BUCKET_MINUTE, pb.LIVE_ENTRY_BUCKET_DAY
        ):  # fmt: skip
            raise InvalidArgument.field("bucket", f"unknown bucket {request.bucket}")
        start = instant_from_proto(request.start_time, "start_time")
        end = instant_from_proto(request.end_time, "end_time")
        counts = await count_entries(
            engine, name.project, name.segment_id, start, end, by_day,
            await self.ev.segments.time_zone(name.project),
        )  # fmt: skip
        return pb.CountLiveEntriesResponse(counts=[bucket_to_pb(c) for c in counts])
