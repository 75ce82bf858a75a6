"""What the evaluator needs from outside: segment definitions and project settings."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from libs.model.definition import Definition


@dataclass(frozen=True)
class ResolvedSegment:
    """A saved segment's definition with every segment it references (transitively)."""

    name: str
    definition: Definition
    references: Mapping[str, Definition]


class SegmentSource(Protocol):
    async def resolve(self, segment: str) -> ResolvedSegment:
        """The segment and its references; NotFound when it does not exist."""
        ...

    async def time_zone(self, project: str) -> str:
        """The project's IANA time zone (UTC when unset)."""
        ...

    async def validate(self, project: str, definition: Definition) -> None:
        """Checks an unsaved definition as saving it would; InvalidArgument (with a field
        violation per problem, under "definition") when it could not be saved."""
        ...
