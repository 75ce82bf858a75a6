"""Conversion between `segments.v1` messages and the definition service's entities."""

from __future__ import annotations

import enum
from typing import Any, TypeVar

from google.protobuf import field_mask_pb2

from libs.audit import AuditRecord
from libs.common.errors import InvalidArgument
from libs.common.principal import Principal, PrincipalKind
from libs.common.rpc_roles import Role
from libs.model.definition_proto import datetime_to_timestamp
from libs.model.definition_to_proto import definition_to_proto
from segments.v1 import access_pb2, segment_pb2
from segments.v1 import definition_service_pb2 as pb
from services.definition.domain.keys import ALL_PROJECTS, KEY_ID, ApiKey, Grant
from services.definition.domain.live_feed import LiveChange
from services.definition.domain.names import parse_project_name
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


# --- access: keys, grants, principals ------------------------------------------------------------


def role_from_proto(number: int, path: str) -> Role:
    if number == 0:
        raise InvalidArgument.field(path, "must be set (it is ROLE_UNSPECIFIED)")
    if number not in {int(r) for r in Role}:
        raise InvalidArgument.field(path, f"unknown value {number}")
    return Role(number)


def principal_to_proto(principal: Principal) -> access_pb2.Principal:
    return access_pb2.Principal(
        kind=access_pb2.PrincipalKind.Value(f"PRINCIPAL_KIND_{principal.kind.value}"),
        id=principal.id,
    )


def principal_from_proto(message: access_pb2.Principal, path: str) -> Principal:
    kinds = {
        access_pb2.PRINCIPAL_KIND_PERSON: PrincipalKind.PERSON,
        access_pb2.PRINCIPAL_KIND_SERVICE: PrincipalKind.SERVICE,
    }
    kind = kinds.get(message.kind)
    if kind is None:
        raise InvalidArgument.field(f"{path}.kind", "must be PRINCIPAL_KIND_PERSON or _SERVICE")
    return Principal(kind, message.id.strip())


def grant_from_proto(message: access_pb2.Grant, path: str) -> Grant:
    role = role_from_proto(message.role, f"{path}.role")
    if message.project == f"projects/{ALL_PROJECTS}":
        return Grant(ALL_PROJECTS, role)
    return Grant(parse_project_name(message.project, f"{path}.project"), role)


def key_to_proto(key: ApiKey) -> access_pb2.ApiKey:
    out = access_pb2.ApiKey(
        name=key.name,
        principal=principal_to_proto(key.principal),
        grants=[
            access_pb2.Grant(
                project=f"projects/{g.project_id}", role=access_pb2.Role.ValueType(int(g.role))
            )
            for g in key.grants
        ],
        display_name=key.display_name,
        create_time=datetime_to_timestamp(key.create_time),
        creator=key.creator,
    )
    if key.expire_time is not None:
        out.expire_time.CopyFrom(datetime_to_timestamp(key.expire_time))
    if key.revoke_time is not None:
        out.revoke_time.CopyFrom(datetime_to_timestamp(key.revoke_time))
    return out


def parse_key_name(name: str, path: str) -> str:
    """`apiKeys/{api_key}` -> the key id."""
    head, _, key_id = name.partition("/")
    if head != "apiKeys" or not KEY_ID.fullmatch(key_id):
        raise InvalidArgument.field(path, f"must be apiKeys/{{api_key}}, got {name!r}")
    return key_id


def audit_record_to_proto(record: AuditRecord) -> access_pb2.AuditRecord:
    return access_pb2.AuditRecord(
        name=f"auditRecords/{record.record_id}",
        time=datetime_to_timestamp(record.time),
        principal=record.principal,
        api_key=f"apiKeys/{record.key_id}" if record.key_id else "",
        method=record.method,
        project=f"projects/{record.project_id}" if record.project_id else "",
        resource=record.resource,
        outcome=record.outcome,
        message=record.message,
        request_id=record.request_id,
        client=record.client,
    )


def live_change_to_proto(change: LiveChange) -> pb.LiveSegmentChange:
    out = pb.LiveSegmentChange(
        name=change.name, time_zone=change.time_zone, sequence=change.sequence
    )
    if change.segment is not None:
        out.segment.CopyFrom(segment_to_proto(change.segment))
    return out
