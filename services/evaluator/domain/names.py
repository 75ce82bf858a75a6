"""Resource names the evaluator accepts, parsed and validated (never trusted as SQL)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from libs.common.errors import InvalidArgument

_PROJECT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,62}")
_SEGMENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,62}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
MAX_USER_ID = 256


@dataclass(frozen=True)
class SegmentName:
    project: str
    segment_id: str

    @property
    def name(self) -> str:
        return f"projects/{self.project}/segments/{self.segment_id}"


def parse_project(value: str, field: str = "parent") -> str:
    parts = value.split("/")
    if len(parts) != 2 or parts[0] != "projects" or not _PROJECT_ID.fullmatch(parts[1]):
        raise InvalidArgument.field(field, f"must be projects/{{project}}, got {value!r}")
    return parts[1]


def parse_segment(value: str, field: str = "segment") -> SegmentName:
    parts = value.split("/")
    if (
        len(parts) != 4
        or parts[0] != "projects"
        or parts[2] != "segments"
        or not _PROJECT_ID.fullmatch(parts[1])
        or not _SEGMENT_ID.fullmatch(parts[3])
    ):
        raise InvalidArgument.field(
            field, f"must be projects/{{project}}/segments/{{segment}}, got {value!r}"
        )
    return SegmentName(parts[1], parts[3])


def parse_snapshot(value: str, field: str = "name") -> tuple[SegmentName, int]:
    head, sep, version = value.rpartition("/snapshots/")
    # ASCII digits only (str.isdigit also accepts "²"), within a 64-bit version
    plain = version.isascii() and version.isdigit() and len(version) <= 18
    if not sep or not plain or int(version) <= 0:
        raise InvalidArgument.field(
            field, "must be projects/{project}/segments/{segment}/snapshots/{version}"
        )
    return parse_segment(head, field), int(version)


def snapshot_name(segment: SegmentName, version: int) -> str:
    return f"{segment.name}/snapshots/{version}"


def check_user_id(value: str) -> str | None:
    """Why a user id is unacceptable, or None."""
    if not value:
        return "must not be empty"
    if len(value) > MAX_USER_ID:
        return f"must be at most {MAX_USER_ID} characters"
    if _CONTROL.search(value):
        return "must not contain control characters"
    return None


def parse_profile(value: str, field: str = "name") -> tuple[str, str]:
    parts = value.split("/", 3)
    if len(parts) != 4 or parts[0] != "projects" or parts[2] != "profiles":
        raise InvalidArgument.field(field, "must be projects/{project}/profiles/{user_id}")
    project = parse_project(f"projects/{parts[1]}", field)
    problem = check_user_id(parts[3])
    if problem:
        raise InvalidArgument.field(field, f"user id {problem}")
    return project, parts[3]
