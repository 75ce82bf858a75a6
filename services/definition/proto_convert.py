"""Conversion between `segments.v1` messages and the definition service's entities."""

from __future__ import annotations

import enum
from typing import Any, TypeVar

from google.protobuf import field_mask_pb2

from libs.common.errors import InvalidArgument
from libs.model.definition_proto import datetime_to_timestamp
from libs.model.definition_to_proto import definition_to_proto
from segments.v1 import segment_pb2
from services.definition.domain.segment import (
    Project,
    Segment,
    Usage,
    UsageKind,
    UsageRole,
    UsageStatus,
)

E = TypeVar("E", bound=enum.Enum)


def segment_to_proto(segment: Segment) -> segment_pb2.Segment:
    return segment_pb2.Segment(
        name=segment.name,
        segment_id=segment.segment_id,
        display_name=segment.display_name,
        description=segment.description,
        type=segment_pb2.SegmentType.Value(f"SEGMENT_TYPE_{segment.type.value}"),
        definition=definition_to_proto(segment.definition),
        creator=segment.creator,
        updater=segment.updater,
        create_time=datetime_to_timestamp(segment.create_time),
        update_time=datetime_to_timestamp(segment.update_time),
        etag=segment.etag,
        goal_count=segment.goal_count,
        intent_goal_count=segment.intent_goal_count,
        engagement_count=segment.engagement_count,
        dependent_segment_count=segment.dependent_segment_count,
    )


def project_to_proto(project: Project) -> segment_pb2.Project:
    return segment_pb2.Project(
        name=project.name,
        time_zone=project.time_zone,
        segment_count=project.segment_count,
        create_time=datetime_to_timestamp(project.create_time),
        etag=project.etag,
    )


def usage_to_proto(usage: Usage) -> segment_pb2.SegmentUsage:
    return segment_pb2.SegmentUsage(
        name=usage.name,
        kind=segment_pb2.UsageKind.Value(f"USAGE_KIND_{usage.kind.value}"),
        external_id=usage.external_id,
        display_name=usage.display_name,
        status=segment_pb2.UsageStatus.Value(f"USAGE_STATUS_{usage.status.value}"),
        role=segment_pb2.UsageRole.Value(f"USAGE_ROLE_{usage.role.value}"),
        create_time=datetime_to_timestamp(usage.create_time),
        update_time=datetime_to_timestamp(usage.update_time),
    )


def _enum(model: type[E], pb_enum: Any, number: int, prefix: str, path: str) -> E:
    if number == 0:
        raise InvalidArgument.field(path, "must be set (it is UNSPECIFIED)")
    try:
        return model(str(pb_enum.Name(number)).removeprefix(prefix))
    except ValueError:
        raise InvalidArgument.field(path, f"unknown value {number}") from None


def usage_kind(number: int, path: str) -> UsageKind:
    return _enum(UsageKind, segment_pb2.UsageKind, number, "USAGE_KIND_", path)


def usage_status(number: int, path: str) -> UsageStatus:
    return _enum(UsageStatus, segment_pb2.UsageStatus, number, "USAGE_STATUS_", path)


def usage_role(number: int, path: str) -> UsageRole:
    if number == 0:
        return UsageRole.UNSPECIFIED
    return _enum(UsageRole, segment_pb2.UsageRole, number, "USAGE_ROLE_", path)


def mask_fields(
    mask: field_mask_pb2.FieldMask, allowed: tuple[str, ...], path: str = "update_mask"
) -> frozenset[str]:
    """The fields a mask names; empty or "*" means all of `allowed`."""
    paths = list(mask.paths)
    if not paths or paths == ["*"]:
        return frozenset(allowed)
    unknown = [p for p in paths if p not in allowed]
    if unknown:
        raise InvalidArgument.field(
            path, f"cannot update {', '.join(unknown)}; updatable: {', '.join(allowed)}"
        )
    return frozenset(paths)
