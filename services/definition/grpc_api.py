"""The SegmentDefinitionService servicer: converts messages and calls the use cases.

Domain errors propagate as exceptions; the server's interceptor maps them to statuses with
rich details.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
from google.protobuf import empty_pb2

from libs.audit import AuditStore
from libs.common.access import AccessDecider
from libs.common.context import caller_email
from libs.common.errors import InvalidArgument
from libs.model.definition_proto import definition_from_proto
from segments.v1 import definition_service_pb2 as pb
from segments.v1 import definition_service_pb2_grpc as pb_grpc
from segments.v1 import segment_pb2
from services.definition import definition_messages as convert
from services.definition.access_api import AccessMethods
from services.definition.application import (
    deletion,
    live_feed,
    projects,
    reading,
    usages,
    writing,
)
from services.definition.domain.names import (
    parse_project_name,
    parse_segment_name,
    parse_usage_name,
)
from services.definition.domain.ports import Store

Context = grpc.aio.ServicerContext[Any, Any]


def _definition(segment: segment_pb2.Segment, path: str) -> Any:
    if not segment.HasField("definition"):
        raise InvalidArgument.field(path, "is required")
    return definition_from_proto(segment.definition, path)


class DefinitionServicer(AccessMethods, pb_grpc.SegmentDefinitionServiceServicer):
    def __init__(
        self,
        store: Store,
        decider: AccessDecider,
        audit: AuditStore | None = None,
        signal: live_feed.ChangeSignal | None = None,
    ) -> None:
        self.store = store
        self.decider = decider
        self.audit = audit
        # wakes this process's WatchLiveSegments streams after a write
        self.live_changes = signal or live_feed.ChangeSignal()

    # --- projects ---------------------------------------------------------------------------

    async def GetProject(self, request: pb.GetProjectRequest, context: Context) -> Any:
        project_id = parse_project_name(request.name, "name")
        return convert.project_to_proto(await projects.get_project(self.store, project_id))

    async def UpdateProject(self, request: pb.UpdateProjectRequest, context: Context) -> Any:
        project_id = parse_project_name(request.project.name, "project.name")
        convert.mask_fields(request.update_mask, projects.UPDATABLE_PROJECT_FIELDS)
        project = await projects.update_project(
            self.store, project_id, request.project.time_zone, request.project.etag
        )
        self.live_changes.notify()
        return convert.project_to_proto(project)

    # --- segments ---------------------------------------------------------------------------

    async def GetSegment(self, request: pb.GetSegmentRequest, context: Context) -> Any:
        ref = parse_segment_name(request.name, "name")
        segment = await reading.get_segment(self.store, ref.project_id, ref.segment_id)
        return convert.segment_to_proto(segment)

    async def ListSegments(self, request: pb.ListSegmentsRequest, context: Context) -> Any:
        project_id = parse_project_name(request.parent, "parent")
        page = await reading.list_segments(
            self.store,
            project_id,
            page_size=request.page_size,
            page_token=request.page_token,
            filter_text=request.filter,
            order_by=request.order_by,
            search=request.search,
        )
        return pb.ListSegmentsResponse(
            segments=[convert.segment_to_proto(s) for s in page.segments],
            next_page_token=page.next_page_token,
            total_size=page.total_size,
        )

    async def CreateSegment(self, request: pb.CreateSegmentRequest, context: Context) -> Any:
        project_id = parse_project_name(request.parent, "parent")
        new = writing.NewSegment(
            project_id=project_id,
            display_name=request.segment.display_name,
            description=request.segment.description,
            definition=_definition(request.segment, "segment.definition"),
            segment_id=request.segment_id,
            request_id=request.request_id,
            caller=caller_email(),
        )
        created = await writing.create_segment(self.store, new)
        self.live_changes.notify()
        return convert.segment_to_proto(created)

    async def ValidateDefinition(
        self, request: pb.ValidateDefinitionRequest, context: Context
    ) -> Any:
        project_id = parse_project_name(request.parent, "parent")
        if not request.HasField("definition"):
            raise InvalidArgument.field("definition", "is required")
        definition = definition_from_proto(request.definition, "definition")
        valid = await writing.validate_definition(self.store, project_id, definition)
        return pb.ValidateDefinitionResponse(
            segment_type=segment_pb2.SegmentType.Value(f"SEGMENT_TYPE_{valid.segment_type.value}"),
            referenced_segments=[f"projects/{project_id}/segments/{r}" for r in valid.references],
        )

    async def UpdateSegment(self, request: pb.UpdateSegmentRequest, context: Context) -> Any:
        ref = parse_segment_name(request.segment.name, "segment.name")
        fields = convert.mask_fields(request.update_mask, writing.UPDATABLE_FIELDS)
        change = writing.SegmentChange(
            project_id=ref.project_id,
            segment_id=ref.segment_id,
            fields=fields,
            display_name=request.segment.display_name,
            description=request.segment.description,
            definition=_definition(request.segment, "segment.definition")
            if "definition" in fields
            else None,
            etag=request.segment.etag,
            request_id=request.request_id,
            caller=caller_email(),
        )
        updated = await writing.update_segment(self.store, change)
        self.live_changes.notify()
        return convert.segment_to_proto(updated)

    async def DeleteSegment(self, request: pb.DeleteSegmentRequest, context: Context) -> Any:
        ref = parse_segment_name(request.name, "name")
        await deletion.delete_segment(
            self.store, ref.project_id, ref.segment_id, request.etag, request.request_id
        )
        self.live_changes.notify()
        return empty_pb2.Empty()

    async def BatchDeleteSegments(
        self, request: pb.BatchDeleteSegmentsRequest, context: Context
    ) -> Any:
        project_id = parse_project_name(request.parent, "parent")
        ids: list[str] = []
        for i, name in enumerate(request.names):
            ref = parse_segment_name(name, f"names[{i}]")
            if ref.project_id != project_id:
                raise InvalidArgument.field(f"names[{i}]", f"must be a segment of {request.parent}")
            ids.append(ref.segment_id)
        await deletion.batch_delete_segments(self.store, project_id, ids, request.request_id)
        self.live_changes.notify()
        return empty_pb2.Empty()

    async def CloneSegment(self, request: pb.CloneSegmentRequest, context: Context) -> Any:
        ref = parse_segment_name(request.name, "name")
        segment = await writing.clone_segment(
            self.store,
            ref.project_id,
            ref.segment_id,
            request.display_name,
            segment_id=request.segment_id,
            request_id=request.request_id,
            caller=caller_email(),
        )
        self.live_changes.notify()
        return convert.segment_to_proto(segment)

    # --- references -------------------------------------------------------------------------

    async def ListDependentSegments(
        self, request: pb.ListDependentSegmentsRequest, context: Context
    ) -> Any:
        ref = parse_segment_name(request.parent, "parent")
        page = await reading.list_dependent_segments(
            self.store, ref.project_id, ref.segment_id, request.page_size, request.page_token
        )
        return pb.ListDependentSegmentsResponse(
            segments=[convert.segment_to_proto(s) for s in page.segments],
            next_page_token=page.next_page_token,
        )

    async def GetSegmentDependencies(
        self, request: pb.GetSegmentDependenciesRequest, context: Context
    ) -> Any:
        ref = parse_segment_name(request.name, "name")
        found = await reading.get_segment_dependencies(self.store, ref.project_id, ref.segment_id)
        return pb.GetSegmentDependenciesResponse(
            segments=[convert.segment_to_proto(s) for s in found]
        )

    # --- usages -----------------------------------------------------------------------------

    async def RegisterSegmentUsage(
        self, request: pb.RegisterSegmentUsageRequest, context: Context
    ) -> Any:
        ref = parse_segment_name(request.parent, "parent")
        u = request.usage
        registration = usages.UsageRegistration(
            project_id=ref.project_id,
            segment_id=ref.segment_id,
            kind=convert.usage_kind(u.kind, "usage.kind"),
            external_id=u.external_id,
            display_name=u.display_name,
            status=convert.usage_status(u.status, "usage.status"),
            role=convert.usage_role(u.role, "usage.role"),
        )
        return convert.usage_to_proto(await usages.register_usage(self.store, registration))

    async def UnregisterSegmentUsage(
        self, request: pb.UnregisterSegmentUsageRequest, context: Context
    ) -> Any:
        ref = parse_usage_name(request.name, "name")
        await usages.unregister_usage(
            self.store, ref.project_id, ref.segment_id, ref.kind, ref.external_id
        )
        return empty_pb2.Empty()

    async def ListSegmentUsages(
        self, request: pb.ListSegmentUsagesRequest, context: Context
    ) -> Any:
        ref = parse_segment_name(request.parent, "parent")
        page = await usages.list_usages(
            self.store,
            ref.project_id,
            ref.segment_id,
            page_size=request.page_size,
            page_token=request.page_token,
            filter_text=request.filter,
        )
        return pb.ListSegmentUsagesResponse(
            usages=[convert.usage_to_proto(u) for u in page.usages],
            next_page_token=page.next_page_token,
        )

    async def ListSegmentEngagements(
        self, request: pb.ListSegmentEngagementsRequest, context: Context
    ) -> Any:
        ref = parse_segment_name(request.parent, "parent")
        page = await usages.list_usages(
            self.store,
            ref.project_id,
            ref.segment_id,
            page_size=request.page_size,
            page_token=request.page_token,
            engagements_only=True,
        )
        return pb.ListSegmentEngagementsResponse(
            engagements=[convert.usage_to_proto(u) for u in page.usages],
            next_page_token=page.next_page_token,
        )

    # --- the live-segment change feed -------------------------------------------------------

    async def WatchLiveSegments(
        self, request: pb.WatchLiveSegmentsRequest, context: Context
    ) -> AsyncIterator[pb.WatchLiveSegmentsResponse]:
        project_id = (
            None if request.parent == "projects/-" else parse_project_name(request.parent, "parent")
        )
        if request.after_sequence < 0:
            raise InvalidArgument.field("after_sequence", "must not be negative")
        pages = live_feed.watch_live_segments(
            self.store, self.live_changes, project_id, request.after_sequence
        )
        async for page in pages:
            yield pb.WatchLiveSegmentsResponse(
                reset=page.reset,
                changes=[convert.live_change_to_proto(c) for c in page.changes],
                sequence=page.sequence,
            )
