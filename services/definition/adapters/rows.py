"""Rows of the definition store to entities and back. Definitions are stored as the proto3
JSON of `segments.v1.Definition` (readable, and evolvable the protobuf way)."""

from __future__ import annotations

from typing import Any

from google.protobuf import json_format

from libs.model.definition import Definition
from libs.model.definition_proto import definition_from_proto
from libs.model.definition_to_proto import definition_to_proto
from segments.v1 import definition_model_pb2
from services.definition.domain.segment import (
    Project,
    Segment,
    Usage,
    UsageKind,
    UsageRole,
    UsageStatus,
    name_key,
)


def definition_to_json(definition: Definition) -> str:
    message = definition_to_proto(definition)
    return json_format.MessageToJson(message, preserving_proto_field_name=True, indent=None)


def definition_from_json(text: str) -> Definition:
    message = json_format.Parse(text, definition_model_pb2.Definition())
    return definition_from_proto(message, "definition")


def segment_values(segment: Segment) -> dict[str, Any]:
    return {
        "project_id": segment.project_id,
        "segment_id": segment.segment_id,
        "display_name": segment.display_name,
        "name_key": name_key(segment.display_name),
        "description": segment.description,
        "segment_type": segment.type.value,
        "definition_json": definition_to_json(segment.definition),
        "creator": segment.creator,
        "updater": segment.updater,
        "create_time": segment.create_time,
        "update_time": segment.update_time,
        "etag": segment.etag,
        "goal_count": segment.goal_count,
        "intent_goal_count": segment.intent_goal_count,
        "engagement_count": segment.engagement_count,
        "dependent_segment_count": segment.dependent_segment_count,
    }


def segment_from_row(row: Any) -> Segment:
    return Segment(
        project_id=row.project_id,
        segment_id=row.segment_id,
        display_name=row.display_name,
        description=row.description,
        definition=definition_from_json(row.definition_json),
        creator=row.creator,
        updater=row.updater,
        create_time=row.create_time,
        update_time=row.update_time,
        etag=row.etag,
        goal_count=row.goal_count,
        intent_goal_count=row.intent_goal_count,
        engagement_count=row.engagement_count,
        dependent_segment_count=row.dependent_segment_count,
    )


def project_from_row(row: Any, segment_count: int) -> Project:
    return Project(
        project_id=row.project_id,
        time_zone=row.time_zone,
        create_time=row.create_time,
        update_time=row.update_time,
        etag=row.etag,
        segment_count=segment_count,
    )


def usage_values(usage: Usage) -> dict[str, Any]:
    return {
        "project_id": usage.project_id,
        "segment_id": usage.segment_id,
        "kind": usage.kind.value,
        "external_id": usage.external_id,
        "display_name": usage.display_name,
        "status": usage.status.value,
        "role": usage.role.value,
        "create_time": usage.create_time,
        "update_time": usage.update_time,
    }


def usage_from_row(row: Any) -> Usage:
    return Usage(
        project_id=row.project_id,
        segment_id=row.segment_id,
        kind=UsageKind(row.kind),
        external_id=row.external_id,
        display_name=row.display_name,
        status=UsageStatus(row.status),
        role=UsageRole(row.role),
        create_time=row.create_time,
        update_time=row.update_time,
    )
