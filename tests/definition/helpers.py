"""Builders of definition messages and readers of rich error details, for the tests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import grpc
from google.protobuf import duration_pb2
from google.rpc import error_details_pb2, status_pb2

from libs.common.status import call_status
from libs.common.status import field_violations as status_field_violations
from segments.v1 import definition_model_pb2 as dm
from segments.v1 import definition_service_pb2 as pb
from segments.v1 import definition_service_pb2_grpc as pb_grpc
from segments.v1 import segment_pb2
from services.definition.service import DefinitionService
from tests.support.auth import ANA_KEY, BO_KEY, bearer

if TYPE_CHECKING:
    Stub = pb_grpc.SegmentDefinitionServiceAsyncStub
else:
    Stub = pb_grpc.SegmentDefinitionServiceStub


@dataclass
class Backend:
    name: str
    service: DefinitionService
    stub: Stub
    address: str
    channel: grpc.aio.Channel


#: Calls made by the people ana@example.com and bo@example.com (their own keys); calls without
#: metadata use the admin key of the backend's channel.
USER = bearer(ANA_KEY)
OTHER_USER = bearer(BO_KEY)


def last_days(n: int) -> dm.TimeWindow:
    return dm.TimeWindow(last=dm.RelativeOffset(amount=n, unit=dm.TIME_UNIT_DAY))


def did(event: str, window: dm.TimeWindow | None = None) -> dm.Node:
    return dm.Node(
        did_event=dm.DidEventCondition(
            event=dm.EventSpec(event_name=event), window=window or last_days(7)
        )
    )


def all_of(*children: dm.Node) -> dm.Node:
    return dm.Node(operator=dm.BOOLEAN_OPERATOR_AND, children=list(children))


def past(
    root: dm.Node | None = None, include: list[str] | None = None, exclude: list[str] | None = None
) -> dm.Definition:
    query = dm.PastBehaviorQuery(included_segments=include or [], excluded_segments=exclude or [])
    if root is not None:
        query.root.CopyFrom(root)
    return dm.Definition(past_behavior=query)


def simple() -> dm.Definition:
    return past(did("App Launched"))


def in_segment(name: str, negate: bool = False) -> dm.Node:
    return dm.Node(in_segment=dm.SegmentMembershipCondition(segment=name, negate=negate))


def live_single(event: str = "Added to Cart") -> dm.Definition:
    return dm.Definition(
        live=dm.LiveDefinition(trigger=dm.LiveTrigger(single_action=dm.EventSpec(event_name=event)))
    )


def minutes(n: int) -> duration_pb2.Duration:
    return duration_pb2.Duration(seconds=60 * n)


async def create(
    stub: Stub,
    project: str,
    display_name: str,
    definition: dm.Definition | None = None,
    description: str = "",
    metadata: tuple[tuple[str, str], ...] = USER,
    **kwargs: Any,
) -> segment_pb2.Segment:
    segment = segment_pb2.Segment(
        display_name=display_name, description=description, definition=definition or simple()
    )
    return await stub.CreateSegment(
        pb.CreateSegmentRequest(parent=f"projects/{project}", segment=segment, **kwargs),
        metadata=metadata,
    )


def _status(err: grpc.aio.AioRpcError) -> status_pb2.Status:
    return call_status(err) or status_pb2.Status()


def field_violations(err: grpc.aio.AioRpcError) -> list[str]:
    return [v.field for v in status_field_violations(err)]


def precondition_subjects(err: grpc.aio.AioRpcError) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for detail in _status(err).details:
        if detail.TypeName() == error_details_pb2.PreconditionFailure.DESCRIPTOR.full_name:
            failure = error_details_pb2.PreconditionFailure()
            detail.Unpack(failure)
            found += [(v.type, v.subject) for v in failure.violations]
    return found


def reason_of(err: grpc.aio.AioRpcError) -> str:
    """The `ErrorInfo.reason` of a failed call ("" when it carries none)."""
    for detail in _status(err).details:
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            return info.reason
    return ""
