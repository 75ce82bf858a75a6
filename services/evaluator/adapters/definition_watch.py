"""Follows the definition service's live-segment feed (WatchLiveSegments) for the engine.

One stream for every project (`projects/-`), resumed after the last sequence seen when it
breaks (the definition service restarting, a network blip): changes are never missed, and a
watcher that has seen nothing yet starts from a full listing. This background call serves
no caller: once the deployment requires credentials it must run as a service principal
configured for it (see docs/live.md).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable

import grpc

from libs.common.logging import get_logger
from libs.common.peers import open_peer_channel, peer_metadata
from libs.model.definition import LiveDefinition
from libs.model.definition_proto import definition_from_proto
from segments.v1 import definition_service_pb2 as dpb
from segments.v1 import definition_service_pb2_grpc as dpb_grpc
from services.evaluator.domain.live_triggers import LiveSegment

_log = get_logger("segments.live")
#: Pause before reconnecting after the stream broke.
RETRY_SECONDS = 0.5

Apply = Callable[[bool, Iterable[tuple[str, LiveSegment | None]]], None]


def _segment(change: dpb.LiveSegmentChange) -> LiveSegment | None:
    if not change.HasField("segment"):
        return None
    definition = definition_from_proto(change.segment.definition)
    if not isinstance(definition, LiveDefinition):
        return None
    project = change.name.split("/")[1]
    return LiveSegment(change.name, project, definition, change.time_zone or "UTC")


class LiveSegmentWatch:
    """Runs the feed into `apply` until stopped."""

    def __init__(self, address: str, apply: Apply) -> None:
        self._address = address
        self._apply = apply
        self._sequence = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            channel = open_peer_channel(self._address)
            try:
                stub = dpb_grpc.SegmentDefinitionServiceStub(channel)
                request = dpb.WatchLiveSegmentsRequest(
                    parent="projects/-", after_sequence=self._sequence
                )
                async for page in stub.WatchLiveSegments(request, metadata=peer_metadata()):
                    changes = [(c.name, _segment(c)) for c in page.changes]
                    self._apply(page.reset, changes)
                    self._sequence = page.sequence
            except grpc.aio.AioRpcError as exc:
                _log.info("live_feed_reconnecting", code=exc.code().name, error=exc.details())
            except Exception as exc:  # a definition we cannot read: log, and read again later
                _log.error("live_feed_failed", exc_info=exc)
            finally:
                await channel.close(None)
            await asyncio.sleep(RETRY_SECONDS)
