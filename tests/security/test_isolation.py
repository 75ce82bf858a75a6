"""Two projects with the same segment ids and names: a key of one reaches nothing of the other,
changes nothing there, and its listings and searches never show the other's rows."""

from __future__ import annotations

import secrets
from typing import Any

import grpc
import pytest
from google.protobuf import field_mask_pb2, timestamp_pb2

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
from tests.support.auth import bearer, create_project, make_key

from .conftest import Suite


def _buyers() -> dm.Definition:
    condition = dm.DidEventCondition(
        event=dm.EventSpec(event_name="Buy"), window=dm.TimeWindow(all_time=dm.AllTime())
    )
    return dm.Definition(past_behavior=dm.PastBehaviorQuery(root=dm.Node(did_event=condition)))


async def _project(suite: Suite, project: str, users: list[str]) -> tuple[str, str]:
    """`project` with a segment "buyers" (display name "Buyers") and events of `users`; the
    segment's name and an admin key of the project."""
    await create_project(suite.channel, project)
    definitions = dpb_grpc.SegmentDefinitionServiceStub(suite.channel)
    created = await definitions.CreateSegment(
        dpb.CreateSegmentRequest(
            parent=f"projects/{project}",
            segment_id="buyers",
            segment=sp.Segment(display_name="Buyers", definition=_buyers()),
        )
    )
    when = timestamp_pb2.Timestamp(seconds=1_700_000_000)
    events = [epb.Event(event_id=u, user_id=u, event_name="Buy", event_time=when) for u in users]

    async def messages() -> Any:
        yield epb.IngestEventsRequest(parent=f"projects/{project}", events=events)

    await epb_grpc.SegmentEvaluatorServiceStub(suite.channel).IngestEvents(messages())
    key = await make_key(
        suite.channel, {f"projects/{project}": access_pb2.ROLE_ADMIN}, person=f"a@{project}.io"
    )
    return str(created.name), key


async def test_a_key_of_one_project_reaches_nothing_of_the_other(suite: Suite) -> None:
    tag = secrets.token_hex(3)
    a, b = f"iso-a-{tag}", f"iso-b-{tag}"
    segment_a, key_a = await _project(suite, a, ["u1", "u2"])
    segment_b, key_b = await _project(suite, b, ["u3"])
    as_b = bearer(key_b)
    definitions = dpb_grpc.SegmentDefinitionServiceStub(suite.channel)
    evaluator = epb_grpc.SegmentEvaluatorServiceStub(suite.channel)
    reporting = rpb_grpc.SegmentReportingServiceStub(suite.channel)
    export = xpb_grpc.SegmentExportServiceStub(suite.channel)
    before = await definitions.GetSegment(dpb.GetSegmentRequest(name=segment_a))

    async def drain(call: Any) -> None:
        _ = [x async for x in call]

    refused: list[Any] = [
        definitions.GetSegment(dpb.GetSegmentRequest(name=segment_a), metadata=as_b),
        definitions.ListSegments(
            dpb.ListSegmentsRequest(parent=f"projects/{a}", search="buyers"), metadata=as_b
        ),
        definitions.UpdateSegment(
            dpb.UpdateSegmentRequest(
                segment=sp.Segment(name=segment_a, display_name="Stolen"),
                update_mask=field_mask_pb2.FieldMask(paths=["display_name"]),
            ),
            metadata=as_b,
        ),
        definitions.DeleteSegment(dpb.DeleteSegmentRequest(name=segment_a), metadata=as_b),
        # a request naming both projects is refused as a whole
        definitions.BatchDeleteSegments(
            dpb.BatchDeleteSegmentsRequest(parent=f"projects/{b}", names=[segment_a]),
            metadata=as_b,
        ),
        evaluator.CountSegment(epb.CountSegmentRequest(segment=segment_a), metadata=as_b),
        drain(
            evaluator.StreamAudience(epb.StreamAudienceRequest(segment=segment_a), metadata=as_b)
        ),
        evaluator.CheckMembership(
            epb.CheckMembershipRequest(segment=segment_a, user_ids=["u1"]), metadata=as_b
        ),
        evaluator.GetProfile(
            epb.GetProfileRequest(name=f"projects/{a}/profiles/u1"), metadata=as_b
        ),
        reporting.GetSegmentTrend(rpb.GetSegmentTrendRequest(segment=segment_a), metadata=as_b),
        export.CreateExportJob(
            xpb.CreateExportJobRequest(
                parent=f"projects/{b}",
                export_job=xpb.ExportJob(segment=segment_a, fields=["user_id"]),
            ),
            metadata=as_b,
        ),
        drain(
            export.StreamExportJob(
                xpb.StreamExportJobRequest(name=f"projects/{a}/exportJobs/x"), metadata=as_b
            )
        ),
        definitions.ListAuditRecords(
            access_pb2.ListAuditRecordsRequest(parent=f"projects/{a}"), metadata=as_b
        ),
    ]
    for call in refused:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call
        assert caught.value.code() is grpc.StatusCode.NOT_FOUND, caught.value.details()
        assert a in (caught.value.details() or "")
    # nothing of A changed, and each key sees its own project's rows only
    after = await definitions.GetSegment(dpb.GetSegmentRequest(name=segment_a))
    assert after == before
    count_a = await evaluator.CountSegment(
        epb.CountSegmentRequest(segment=segment_a, sample_size=10), metadata=bearer(key_a)
    )
    count_b = await evaluator.CountSegment(
        epb.CountSegmentRequest(segment=segment_b, sample_size=10), metadata=as_b
    )
    assert list(count_a.sample_user_ids) == ["u1", "u2"]
    assert list(count_b.sample_user_ids) == ["u3"]
    found = await definitions.ListSegments(
        dpb.ListSegmentsRequest(parent=f"projects/{b}", search="buyers"), metadata=as_b
    )
    assert [s.name for s in found.segments] == [segment_b]
    projects = await definitions.ListProjects(dpb.ListProjectsRequest(), metadata=as_b)
    assert [p.name for p in projects.projects] == [f"projects/{b}"]
