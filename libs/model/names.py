"""Resource names every service accepts (`projects/{project}`,
`projects/{project}/segments/{segment}`): parsed and validated in one place, never trusted as
SQL."""

from __future__ import annotations

import re
from dataclasses import dataclass

from libs.common.errors import InvalidArgument

#: A project, segment or job id.
RESOURCE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,62}")


@dataclass(frozen=True)
class SegmentName:
    project: str
    segment_id: str

    @property
    def name(self) -> str:
        return f"projects/{self.project}/segments/{self.segment_id}"


def parse_project(value: str, field: str = "parent") -> str:
    """The project id of `projects/{project}`."""
    parts = value.split("/")
    if len(parts) != 2 or parts[0] != "projects" or not RESOURCE_ID.fullmatch(parts[1]):
        raise InvalidArgument.field(field, f"must be projects/{{project}}, got {value!r}")
    return parts[1]


def parse_segment(value: str, field: str = "segment") -> SegmentName:
    """`projects/{project}/segments/{segment}`."""
    parts = value.split("/")
    if (
        len(parts) != 4
        or parts[0] != "projects"
        or parts[2] != "segments"
        or not RESOURCE_ID.fullmatch(parts[1])
        or not RESOURCE_ID.fullmatch(parts[3])
    ):
        raise InvalidArgument.field(
            field, f"must be projects/{{project}}/segments/{{segment}}, got {value!r}"
        )
    return SegmentName(parts[1], parts[3])
