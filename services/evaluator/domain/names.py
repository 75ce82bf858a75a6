"""Resource names the evaluator accepts, parsed and validated (never trusted as SQL)."""

from __future__ import annotations

import re

from libs.common.errors import InvalidArgument
from libs.model.names import SegmentName, parse_project, parse_segment

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
MAX_USER_ID = 256

__all__ = [
    "MAX_USER_ID",
    "SegmentName",
    "check_user_id",
    "parse_project",
    "parse_segment",
    "parse_snapshot",
    "snapshot_name",
]


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
