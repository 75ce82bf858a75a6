"""Resource names and ids: parsing and validation, with the request field as the error path."""

from __future__ import annotations

import re
from dataclasses import dataclass

from libs.common.errors import InvalidArgument
from services.definition.domain.limits import MAX_EXTERNAL_ID
from services.definition.domain.segment import UsageKind

_PROJECT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,62}")
_SEGMENT_ID = re.compile(r"[a-z][a-z0-9-]{3,62}")
_ANY_SEGMENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,62}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class SegmentRef:
    project_id: str
    segment_id: str


@dataclass(frozen=True)
class UsageRef:
    project_id: str
    segment_id: str
    kind: UsageKind
    external_id: str


def parse_project_name(name: str, field: str) -> str:
    """`projects/{project}` -> project id."""
    parts = name.split("/")
    if len(parts) != 2 or parts[0] != "projects" or not _PROJECT_ID.fullmatch(parts[1]):
        raise InvalidArgument.field(
            field,
            f"must be projects/{{project}} with a project id of 1 to 63 letters, digits, '-' "
            f"or '_', got {name!r}",
        )
    return parts[1]


def validate_project_id(project_id: str, field: str) -> None:
    """1 to 63 letters, digits, '-' or '_', starting with a letter or digit."""
    if not _PROJECT_ID.fullmatch(project_id):
        raise InvalidArgument.field(
            field,
            "must be 1 to 63 letters, digits, '-' or '_', starting with a letter or digit, "
            f"got {project_id!r}",
        )


def try_parse_segment_name(name: str) -> SegmentRef | None:
    parts = name.split("/")
    if (
        len(parts) != 4
        or parts[0] != "projects"
        or parts[2] != "segments"
        or not _PROJECT_ID.fullmatch(parts[1])
        or not _ANY_SEGMENT_ID.fullmatch(parts[3])
    ):
        return None
    return SegmentRef(parts[1], parts[3])


def parse_segment_name(name: str, field: str) -> SegmentRef:
    """`projects/{project}/segments/{segment}` -> its parts."""
    ref = try_parse_segment_name(name)
    if ref is None:
        raise InvalidArgument.field(
            field, f"must be projects/{{project}}/segments/{{segment}}, got {name!r}"
        )
    return ref


def validate_new_segment_id(segment_id: str, field: str) -> None:
    """A caller-chosen id: 4 to 63 lower-case letters, digits and hyphens, starting with a
    letter."""
    if not _SEGMENT_ID.fullmatch(segment_id):
        raise InvalidArgument.field(
            field,
            "must be 4 to 63 lower-case letters, digits and hyphens, starting with a letter",
        )


def external_id_problem(external_id: str) -> str | None:
    if not external_id:
        return "is required"
    if len(external_id) > MAX_EXTERNAL_ID:
        return f"must be at most {MAX_EXTERNAL_ID} characters"
    if "/" in external_id or _CONTROL.search(external_id) or external_id != external_id.strip():
        return "must not contain '/', control characters or surrounding spaces"
    return None


def parse_usage_name(name: str, field: str) -> UsageRef:
    """`projects/{p}/segments/{s}/usages/{kind}-{external_id}` -> its parts."""
    head, sep, usage = name.rpartition("/usages/")
    ref = try_parse_segment_name(head) if sep else None
    if ref is not None:
        for kind in sorted(UsageKind, key=lambda k: -len(k.slug)):
            prefix = kind.slug + "-"
            if usage.startswith(prefix):
                external_id = usage[len(prefix) :]
                if external_id_problem(external_id) is None:
                    return UsageRef(ref.project_id, ref.segment_id, kind, external_id)
    raise InvalidArgument.field(
        field,
        "must be projects/{project}/segments/{segment}/usages/{kind}-{external_id} with kind "
        f"one of campaign, journey, goal, intent-goal, got {name!r}",
    )
