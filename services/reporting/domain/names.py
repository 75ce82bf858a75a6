"""Resource names the reporting service accepts, parsed and validated."""

from __future__ import annotations

import re

from libs.common.errors import InvalidArgument

_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,62}")


def parse_project(value: str, field: str = "parent") -> str:
    parts = value.split("/")
    if len(parts) != 2 or parts[0] != "projects" or not _ID.fullmatch(parts[1]):
        raise InvalidArgument.field(field, f"must be projects/{{project}}, got {value!r}")
    return parts[1]


def segment_project(value: str, field: str = "segment") -> str:
    """The project of a segment name projects/{project}/segments/{segment}."""
    parts = value.split("/")
    if (
        len(parts) != 4
        or parts[0] != "projects"
        or parts[2] != "segments"
        or not _ID.fullmatch(parts[1])
        or not _ID.fullmatch(parts[3])
    ):
        raise InvalidArgument.field(
            field, f"must be projects/{{project}}/segments/{{segment}}, got {value!r}"
        )
    return parts[1]
