"""One valid request for every RPC of the four services, for the access matrix
(tests/security/test_matrix.py).

Whoever adds an RPC adds its sample here: the matrix fails for an RPC without one. A sample
is an async function of a `Ctx` that returns the request (a list of messages for a
client-streaming RPC). It may create what the request needs (a segment, a snapshot) with the
admin stubs of `Ctx`; it runs once per RPC and backend, and its request is then sent with
every key of the matrix, the right one last, so a request that deletes or revokes something
names a resource made for it. A sample of an RPC still answering UNIMPLEMENTED must name
resources that will exist once it is implemented (the matrix then expects OK).
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from google.protobuf import field_mask_pb2, timestamp_pb2
from google.type import date_pb2
from google.type.date_pb2 import Date

from segments.v1 import access_pb2
from segments.v1 import definition_model_pb2 as dm
from segments.v1 import definition_service_pb2 as dpb
from segments.v1 import definition_service_pb2_grpc as dpb_grpc
from segments.v1 import evaluator_service_pb2 as epb
from segments.v1 import evaluator_service_pb2_grpc as epb_grpc
from segments.v1 import export_service_pb2 as xpb
from segments.v1 import export_service_pb2_grpc as xpb_grpc
from segments.v1 import reporting_service_pb2 as rpb
from segments.v1 import reporting_service_pb2_grpc as rpb_grpc
from segments.v1 import segment_pb2 as sp
from tests.support.auth import create_project

DEFINITION = "/segments.v1.SegmentDefinitionService/"
EVALUATOR = "/segments.v1.SegmentEvaluatorService/"
REPORTING = "/segments.v1.SegmentReportingService/"
EXPORT = "/segments.v1.SegmentExportService/"


@dataclass
class Ctx:
    """Project `project` (an id) with the admin stubs of the server under test."""

    project: str
    channel: Any
    definitions: dpb_grpc.SegmentDefinitionServiceAsyncStub
    evaluator: epb_grpc.SegmentEvaluatorServiceAsyncStub

    @property
    def parent(self) -> str:
        return f"projects/{self.project}"

    async def segment(self, definition: dm.Definition | None = None) -> str:
        """A new segment of the project (past behaviour unless `definition` says otherwise)."""
        segment_id = f"s{secrets.token_hex(5)}"
        created = await self.definitions.CreateSegment(
            dpb.CreateSegmentRequest(
                parent=self.parent,
                segment_id=segment_id,
                segment=sp.Segment(display_name=segment_id, definition=definition or _past()),
            )
        )
        return str(created.name)

    async def snapshot(self) -> tuple[str, int]:
        segment = await self.segment()
        taken = await self.evaluator.CreateSnapshot(epb.CreateSnapshotRequest(parent=segment))
        return segment, int(taken.version)

    async def new_project(self) -> str:
        project_id = f"mx-{secrets.token_hex(4)}"
        await create_project(self.channel, project_id)
        return project_id


Sample = Callable[[Ctx], Awaitable[Any]]


def _past() -> dm.Definition:
    return dm.Definition(
        past_behavior=dm.PastBehaviorQuery(
            root=dm.Node(
                did_event=dm.DidEventCondition(
                    event=dm.EventSpec(event_name="Buy"),
                    window=dm.TimeWindow(all_time=dm.AllTime()),
                )
            )
        )
    )


def _time(seconds: int) -> timestamp_pb2.Timestamp:
    return timestamp_pb2.Timestamp(seconds=seconds)


def _event() -> epb.Event:
    return epb.Event(
        event_id=secrets.token_hex(6),
        user_id="u1",
        event_name="Buy",
        event_time=_time(1_700_000_000),
    )


async def _key_name(ctx: Ctx) -> str:
    created = await ctx.definitions.CreateApiKey(
        access_pb2.CreateApiKeyRequest(
            api_key=access_pb2.ApiKey(
                principal=access_pb2.Principal(
                    kind=access_pb2.PRINCIPAL_KIND_SERVICE, id="matrix-sample"
                ),
                grants=[access_pb2.Grant(project=ctx.parent, role=access_pb2.ROLE_VIEWER)],
            )
        )
    )
    return str(created.api_key.name)


async def _upload(ctx: Ctx) -> list[epb.UploadCustomListRequest]:
    listed = await ctx.segment(
        dm.Definition(custom_list=dm.CustomListDefinition(identity_kind=dm.IDENTITY_KIND_USER_ID))
    )
    header = epb.UploadCustomListHeader(segment=listed, identity_column=0)
    return [epb.UploadCustomListRequest(header=header), epb.UploadCustomListRequest(chunk=b"u1\n")]


async def _partner(ctx: Ctx) -> epb.ApplyPartnerDeltaRequest:
    cohort = await ctx.segment(
        dm.Definition(partner=dm.PartnerDefinition(partner="amplitude", external_cohort_id="c1"))
    )
    return epb.ApplyPartnerDeltaRequest(
        segment=cohort, delta_id=secrets.token_hex(4), sequence=1, added_user_ids=["u1"]
    )


async def _profile(ctx: Ctx) -> epb.GetProfileRequest:
    await ctx.evaluator.UpsertProfiles(
        epb.UpsertProfilesRequest(parent=ctx.parent, profiles=[epb.Profile(user_id="u1")])
    )
    return epb.GetProfileRequest(name=f"{ctx.parent}/profiles/u1")


async def _snapshot_get(ctx: Ctx) -> epb.GetSnapshotRequest:
    segment, version = await ctx.snapshot()
    return epb.GetSnapshotRequest(name=f"{segment}/snapshots/{version}")


async def _snapshot_changes(ctx: Ctx) -> epb.ListSnapshotChangesRequest:
    segment, version = await ctx.snapshot()
    return epb.ListSnapshotChangesRequest(parent=segment, from_version=version, to_version=version)


async def _live(ctx: Ctx) -> str:
    trigger = dm.LiveTrigger(single_action=dm.EventSpec(event_name="Buy"))
    return await ctx.segment(dm.Definition(live=dm.LiveDefinition(trigger=trigger)))


async def _delete_project(ctx: Ctx) -> dpb.DeleteProjectRequest:
    return dpb.DeleteProjectRequest(name=f"projects/{await ctx.new_project()}", force=True)


SAMPLES: dict[str, Sample] = {
    # --- definition service ---------------------------------------------------------------
    DEFINITION + "GetProject": lambda c: _done(dpb.GetProjectRequest(name=c.parent)),
    DEFINITION + "UpdateProject": lambda c: _done(
        dpb.UpdateProjectRequest(
            project=sp.Project(name=c.parent, time_zone="UTC"),
            update_mask=field_mask_pb2.FieldMask(paths=["time_zone"]),
        )
    ),
    DEFINITION + "ListProjects": lambda c: _done(dpb.ListProjectsRequest()),
    DEFINITION + "GetSegment": lambda c: _named(c, dpb.GetSegmentRequest),
    DEFINITION + "ListSegments": lambda c: _done(dpb.ListSegmentsRequest(parent=c.parent)),
    DEFINITION + "CreateSegment": lambda c: _done(
        dpb.CreateSegmentRequest(
            parent=c.parent,
            segment=sp.Segment(display_name=f"new {secrets.token_hex(4)}", definition=_past()),
        )
    ),
    DEFINITION + "UpdateSegment": lambda c: _update_segment(c),
    DEFINITION + "DeleteSegment": lambda c: _named(c, dpb.DeleteSegmentRequest),
    DEFINITION + "BatchDeleteSegments": lambda c: _batch_delete(c),
    DEFINITION + "CloneSegment": lambda c: _clone(c),
    DEFINITION + "ValidateDefinition": lambda c: _done(
        dpb.ValidateDefinitionRequest(parent=c.parent, definition=_past())
    ),
    DEFINITION + "ListDependentSegments": lambda c: _parented(c, dpb.ListDependentSegmentsRequest),
    DEFINITION + "GetSegmentDependencies": lambda c: _named(c, dpb.GetSegmentDependenciesRequest),
    DEFINITION + "RegisterSegmentUsage": lambda c: _register_usage(c),
    DEFINITION + "UnregisterSegmentUsage": lambda c: _unregister_usage(c),
    DEFINITION + "ListSegmentUsages": lambda c: _parented(c, dpb.ListSegmentUsagesRequest),
    DEFINITION + "ListSegmentEngagements": lambda c: _parented(
        c, dpb.ListSegmentEngagementsRequest
    ),
    DEFINITION + "CreateProject": lambda c: _done(
        dpb.CreateProjectRequest(project_id=f"mx-{secrets.token_hex(4)}")
    ),
    DEFINITION + "DeleteProject": _delete_project,
    DEFINITION + "CreateApiKey": lambda c: _done(
        access_pb2.CreateApiKeyRequest(
            api_key=access_pb2.ApiKey(
                principal=access_pb2.Principal(kind=access_pb2.PRINCIPAL_KIND_SERVICE, id="mx-new"),
                grants=[access_pb2.Grant(project=c.parent, role=access_pb2.ROLE_VIEWER)],
            )
        )
    ),
    DEFINITION + "GetApiKey": lambda c: _key_request(c, access_pb2.GetApiKeyRequest),
    DEFINITION + "ListApiKeys": lambda c: _done(access_pb2.ListApiKeysRequest()),
    DEFINITION + "RevokeApiKey": lambda c: _key_request(c, access_pb2.RevokeApiKeyRequest),
    DEFINITION + "CheckAccess": lambda c: _done(access_pb2.CheckAccessRequest()),
    DEFINITION + "WatchLiveSegments": lambda c: _done(
        dpb.WatchLiveSegmentsRequest(parent=c.parent)
    ),
    DEFINITION + "ListAuditRecords": lambda c: _done(
        access_pb2.ListAuditRecordsRequest(parent=c.parent)
    ),
    # --- evaluator service ----------------------------------------------------------------
    EVALUATOR + "IngestEvents": lambda c: _done(
        [epb.IngestEventsRequest(parent=c.parent, events=[_event()])]
    ),
    EVALUATOR + "UpsertProfiles": lambda c: _done(
        epb.UpsertProfilesRequest(parent=c.parent, profiles=[epb.Profile(user_id="u1")])
    ),
    EVALUATOR + "GetProfile": _profile,
    EVALUATOR + "SetTestUsers": lambda c: _done(
        epb.SetTestUsersRequest(parent=c.parent, user_ids=["u1"], test_user=True)
    ),
    EVALUATOR + "UploadCustomList": _upload,
    EVALUATOR + "ApplyPartnerDelta": _partner,
    EVALUATOR + "CountSegment": lambda c: _segmented(c, epb.CountSegmentRequest),
    EVALUATOR + "EstimateDefinition": lambda c: _done(
        epb.EstimateDefinitionRequest(parent=c.parent, definition=_past())
    ),
    EVALUATOR + "ExplainSegment": lambda c: _segmented(c, epb.ExplainSegmentRequest),
    EVALUATOR + "StreamAudience": lambda c: _segmented(c, epb.StreamAudienceRequest),
    EVALUATOR + "StreamAudienceTable": lambda c: _audience_table(c),
    EVALUATOR + "CheckMembership": lambda c: _membership(c),
    EVALUATOR + "CreateSnapshot": lambda c: _parented(c, epb.CreateSnapshotRequest),
    EVALUATOR + "GetSnapshot": _snapshot_get,
    EVALUATOR + "ListSnapshots": lambda c: _parented(c, epb.ListSnapshotsRequest),
    EVALUATOR + "ListSnapshotChanges": _snapshot_changes,
    EVALUATOR + "StreamLiveEntries": lambda c: _live_request(c),
    EVALUATOR + "CountLiveEntries": lambda c: _live_count(c),
    EVALUATOR + "ComputeSegmentFigures": lambda c: _figures(c),
    EVALUATOR + "ComputeDailyFigures": lambda c: _daily_figures(c),
    # --- reporting service ----------------------------------------------------------------
    REPORTING + "GetSegmentTrend": lambda c: _segmented(c, rpb.GetSegmentTrendRequest),
    REPORTING + "GetReachability": lambda c: _segmented(c, rpb.GetReachabilityRequest),
    REPORTING + "ListSampleUsers": lambda c: _segmented(c, rpb.ListSampleUsersRequest),
    REPORTING + "GetLiveRate": lambda c: _live_rate(c),
    REPORTING + "RunDailyJob": lambda c: _done(rpb.RunDailyJobRequest(parent=c.parent)),
    REPORTING + "GetDailyRun": lambda c: _daily_run(c),
    REPORTING + "ListDailyRuns": lambda c: _done(rpb.ListDailyRunsRequest(parent=c.parent)),
    # --- export service -------------------------------------------------------------------
    EXPORT + "CreateExportJob": lambda c: _export_job(c),
    EXPORT + "GetExportJob": lambda c: _export_named(c, xpb.GetExportJobRequest),
    EXPORT + "ListExportJobs": lambda c: _done(xpb.ListExportJobsRequest(parent=c.parent)),
    EXPORT + "CancelExportJob": lambda c: _export_named(c, xpb.CancelExportJobRequest),
    EXPORT + "StreamExportJob": lambda c: _export_named(c, xpb.StreamExportJobRequest),
}


async def _done(request: Any) -> Any:
    return request


async def _named(ctx: Ctx, cls: Any) -> Any:
    return cls(name=await ctx.segment())


async def _parented(ctx: Ctx, cls: Any) -> Any:
    return cls(parent=await ctx.segment())


async def _segmented(ctx: Ctx, cls: Any) -> Any:
    return cls(segment=await ctx.segment())


async def _update_segment(ctx: Ctx) -> dpb.UpdateSegmentRequest:
    name = await ctx.segment()
    return dpb.UpdateSegmentRequest(
        segment=sp.Segment(name=name, display_name=f"renamed {secrets.token_hex(4)}"),
        update_mask=field_mask_pb2.FieldMask(paths=["display_name"]),
    )


async def _batch_delete(ctx: Ctx) -> dpb.BatchDeleteSegmentsRequest:
    return dpb.BatchDeleteSegmentsRequest(parent=ctx.parent, names=[await ctx.segment()])


async def _clone(ctx: Ctx) -> dpb.CloneSegmentRequest:
    return dpb.CloneSegmentRequest(
        name=await ctx.segment(), display_name=f"clone {secrets.token_hex(4)}"
    )


async def _register_usage(ctx: Ctx) -> dpb.RegisterSegmentUsageRequest:
    usage = sp.SegmentUsage(
        kind=sp.USAGE_KIND_GOAL, external_id="g1", status=sp.USAGE_STATUS_ACTIVE
    )
    return dpb.RegisterSegmentUsageRequest(parent=await ctx.segment(), usage=usage)


async def _unregister_usage(ctx: Ctx) -> dpb.UnregisterSegmentUsageRequest:
    return dpb.UnregisterSegmentUsageRequest(name=f"{await ctx.segment()}/usages/goal-g1")


async def _key_request(ctx: Ctx, cls: Any) -> Any:
    return cls(name=await _key_name(ctx))


async def _membership(ctx: Ctx) -> epb.CheckMembershipRequest:
    return epb.CheckMembershipRequest(segment=await ctx.segment(), user_ids=["u1"])


async def _live_request(ctx: Ctx) -> epb.StreamLiveEntriesRequest:
    return epb.StreamLiveEntriesRequest(segment=await _live(ctx))


async def _live_count(ctx: Ctx) -> epb.CountLiveEntriesRequest:
    return epb.CountLiveEntriesRequest(
        segment=await _live(ctx), start_time=_time(1_700_000_000), end_time=_time(1_700_003_600)
    )


async def _live_rate(ctx: Ctx) -> rpb.GetLiveRateRequest:
    return rpb.GetLiveRateRequest(segment=await _live(ctx))


async def _daily_run(ctx: Ctx) -> rpb.GetDailyRunRequest:
    day = date_pb2.Date(year=2026, month=1, day=1)
    reporting = rpb_grpc.SegmentReportingServiceStub(ctx.channel)
    run = await reporting.RunDailyJob(rpb.RunDailyJobRequest(parent=ctx.parent, date=day))
    return rpb.GetDailyRunRequest(name=run.name)


async def _figures(ctx: Ctx) -> epb.ComputeSegmentFiguresRequest:
    segment = await ctx.segment()
    return epb.ComputeSegmentFiguresRequest(parent=ctx.parent, segments=[segment], sample_size=5)


async def _daily_figures(ctx: Ctx) -> epb.ComputeDailyFiguresRequest:
    return epb.ComputeDailyFiguresRequest(
        segment=await ctx.segment(), first_day=Date(year=2026, month=11, day=1), day_count=3
    )


async def _export_job(ctx: Ctx) -> xpb.CreateExportJobRequest:
    job = xpb.ExportJob(
        segment=await ctx.segment(),
        fields=["user_id"],
        destination=xpb.EXPORT_DESTINATION_STREAM,
    )
    return xpb.CreateExportJobRequest(parent=ctx.parent, export_job=job)


async def _export_named(ctx: Ctx, cls: Any) -> Any:
    """A request naming a new STREAM job of the project (pending until streamed)."""
    created = await xpb_grpc.SegmentExportServiceStub(ctx.channel).CreateExportJob(
        await _export_job(ctx)
    )
    return cls(name=created.name)


async def _audience_table(ctx: Ctx) -> epb.StreamAudienceTableRequest:
    return epb.StreamAudienceTableRequest(segment=await ctx.segment(), fields=["user_id"])


def sample_for(method: str) -> Sample:
    """The sample of `method`; a loud failure when there is none."""
    sample = SAMPLES.get(method)
    if sample is None:
        raise AssertionError(
            f"{method} has no sample request: add one to tests/security/samples.py so that the "
            "access matrix covers it"
        )
    return sample
