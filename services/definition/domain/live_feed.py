"""The change feed of live segments (what WatchLiveSegments sends), as plain records."""

from __future__ import annotations

from dataclasses import dataclass

from services.definition.domain.segment import Segment


@dataclass(frozen=True)
class LiveChange:
    """A segment that is or was live, in its current state: `segment` is None once it was
    deleted or is no longer live. `sequence` is 0 in a listing."""

    project_id: str
    segment_id: str
    sequence: int
    segment: Segment | None
    time_zone: str

    @property
    def name(self) -> str:
        return f"projects/{self.project_id}/segments/{self.segment_id}"
