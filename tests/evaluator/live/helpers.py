"""Builders and readers for the live-segment tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta

from google.protobuf.duration_pb2 import Duration

from segments.v1 import definition_model_pb2 as dm
from segments.v1 import evaluator_service_pb2 as pb
from services.evaluator.domain.clock import ManualClock
from services.evaluator.live.engine import LiveEngine
from services.evaluator.live.workers import LiveWorkers

from ..grpc_stack import TIMEOUT, Stack, create, ingest


@dataclass
class Live:
    stack: Stack
    clock: ManualClock
    project: str

    @property
    def engine(self) -> LiveEngine:
        service = self.stack.evaluator_service
        assert service is not None and service.evaluator is not None
        assert service.evaluator.live is not None
        return service.evaluator.live

    @property
    def workers(self) -> LiveWorkers:
        assert self.stack.evaluator_service is not None
        assert self.stack.evaluator_service.workers is not None
        return self.stack.evaluator_service.workers

    @property
    def parent(self) -> str:
        return f"projects/{self.project}"

    async def define(self, segment_id: str, definition: dm.Definition) -> str:
        """Creates a live segment and waits until the engine knows it."""
        name = await create(self.stack, self.project, segment_id, definition)
        await until(lambda: self.engine.index.get(name) is not None)
        return name

    async def ingest(self, *events: pb.Event) -> pb.IngestEventsResponse:
        return await ingest(self.stack, self.project, list(events))

    async def entries(
        self, count: int, after: str = "0", segment: str = "", quiet: float = 0.3
    ) -> list[pb.LiveEntry]:
        """The entries after `after`: waits for `count` of them, then `quiet` seconds more
        for any that should not be there."""
        request = pb.StreamLiveEntriesRequest(resume_after=after)
        if segment:
            request.segment = segment
        else:
            request.parent = self.parent
        call = self.stack.evaluator.StreamLiveEntries(request, timeout=TIMEOUT)
        found: list[pb.LiveEntry] = []
        try:
            while len(found) < count:
                found.append(_entry(await asyncio.wait_for(call.read(), 10)))
            while True:
                try:
                    extra = await asyncio.wait_for(call.read(), quiet)
                except TimeoutError:
                    break
                found.append(_entry(extra))
        finally:
            call.cancel()
        return found


def _entry(response: object) -> pb.LiveEntry:
    assert isinstance(response, pb.StreamLiveEntriesResponse), response
    return response.entry


async def until(condition: Callable[[], bool], limit: float = 10.0) -> None:
    """Waits (bounded) until `condition()` holds."""
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


def seconds(value: float) -> Duration:
    d = Duration()
    d.FromTimedelta(timedelta(seconds=value))
    return d


def spec(name: str, *filters: dm.PropertyFilter) -> dm.EventSpec:
    return dm.EventSpec(event_name=name, filters=filters)


def equals(prop: str, value: str | float) -> dm.PropertyFilter:
    v = dm.Value(string_value=value) if isinstance(value, str) else dm.Value(number_value=value)
    return dm.PropertyFilter(
        property=prop,
        comparison=dm.Comparison(operator=dm.COMPARISON_OPERATOR_EQUALS, values=[v]),
    )


def live_def(
    trigger: dm.LiveTrigger,
    past: dm.PastBehaviorQuery | None = None,
    reentry: dm.ReentryPolicy | None = None,
) -> dm.Definition:
    definition = dm.LiveDefinition(trigger=trigger)
    if past is not None:
        definition.past_behavior.CopyFrom(past)
    if reentry is not None:
        definition.reentry.CopyFrom(reentry)
    return dm.Definition(live=definition)


def single(name: str, *filters: dm.PropertyFilter, **kw: object) -> dm.Definition:
    return live_def(dm.LiveTrigger(single_action=spec(name, *filters)), **kw)  # type: ignore[arg-type]


def inaction(a: str, b: str, within: float) -> dm.Definition:
    trigger = dm.InactionWithinTrigger(did=spec(a), did_not=spec(b), within=seconds(within))
    return live_def(dm.LiveTrigger(inaction_within=trigger))


def users(entries: Sequence[pb.LiveEntry]) -> list[str]:
    return [e.user_id for e in entries]
