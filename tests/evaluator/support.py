"""Helpers for evaluator tests: an in-memory definition source and request builders."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping
from datetime import datetime
from typing import Any, TypeVar

from libs.common.errors import NotFound
from libs.model.definition import (
    AllTimeWindow,
    Definition,
    DidEvent,
    EventSpec,
    Node,
    PastBehaviorQuery,
    definition_references,
)
from libs.model.definition_proto import datetime_to_timestamp
from segments.v1 import evaluator_service_pb2 as pb
from services.evaluator.domain.ports import ResolvedSegment

T = TypeVar("T")


class StaticSegments:
    """Definitions held in memory, standing in for the definition service in unit tests."""

    def __init__(self, definitions: Mapping[str, Definition] | None = None) -> None:
        self.definitions: dict[str, Definition] = dict(definitions or {})

    async def resolve(self, segment: str) -> ResolvedSegment:
        if segment not in self.definitions:
            raise NotFound(f"segment {segment} not found")
        refs: dict[str, Definition] = {}
        todo = list(definition_references(self.definitions[segment]))
        while todo:
            name = todo.pop()
            if name not in refs:
                refs[name] = self.definitions[name]
                todo.extend(definition_references(refs[name]))
        return ResolvedSegment(segment, self.definitions[segment], refs)

    async def time_zone(self, project: str) -> str:
        return "UTC"

    async def validate(self, project: str, definition: Definition) -> None:
        """Accepts every definition: the definition service's checks are tested with it."""


def did(event_name: str) -> PastBehaviorQuery:
    return PastBehaviorQuery(root=Node(condition=DidEvent(EventSpec(event_name), AllTimeWindow())))


def event(event_id: str, user_id: str, name: str, when: datetime, **props: Any) -> pb.Event:
    msg = pb.Event(event_id=event_id, user_id=user_id, event_name=name,
                   event_time=datetime_to_timestamp(when))  # fmt: skip
    for key, value in props.items():
        if isinstance(value, bool):
            msg.properties[key].bool_value = value
        elif isinstance(value, int | float):
            msg.properties[key].number_value = float(value)
        else:
            msg.properties[key].string_value = str(value)
    return msg


async def stream(items: Iterable[T]) -> AsyncIterator[T]:
    for item in items:
        yield item
