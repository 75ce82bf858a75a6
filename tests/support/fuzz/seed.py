"""The fuzzed project: its resources, and requests known to succeed against it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
from google.protobuf import json_format

from .messages import DOOMED_PROJECT, PROJECT, all_methods, message_class
from .strategies import TEMPLATES


async def seed_project(channel: grpc.aio.Channel, project: str = PROJECT) -> None:
    """The project the requests name, with one segment of each kind, a few profiles and
    events, and the project fuzzed DeleteProject calls may delete."""
    from datetime import UTC, datetime, timedelta

    from google.protobuf.timestamp_pb2 import Timestamp

    from segments.v1 import definition_model_pb2 as dm
    from segments.v1 import definition_service_pb2 as dpb
    from segments.v1 import definition_service_pb2_grpc as dpb_grpc
    from segments.v1 import evaluator_service_pb2 as epb
    from segments.v1 import evaluator_service_pb2_grpc as epb_grpc
    from segments.v1 import segment_pb2
    from tests.support.auth import create_project

    await create_project(channel, project)
    await create_project(channel, DOOMED_PROJECT)
    definitions = dpb_grpc.SegmentDefinitionServiceStub(channel)
    purchase = dm.EventSpec(event_name="purchase")
    all_time = dm.TimeWindow(all_time=dm.AllTime())
    did = dm.Node(did_event=dm.DidEventCondition(event=purchase, window=all_time))
    kinds = {
        "buyers": dm.Definition(past_behavior=dm.PastBehaviorQuery(root=did)),
        "listed": dm.Definition(
            custom_list=dm.CustomListDefinition(identity_kind=dm.IDENTITY_KIND_USER_ID)
        ),
        "partnered": dm.Definition(
            partner=dm.PartnerDefinition(partner="amplitude", external_cohort_id="c1")
        ),
        "live-buyers": dm.Definition(
            live=dm.LiveDefinition(trigger=dm.LiveTrigger(single_action=purchase))
        ),
        "nobody": dm.Definition(
            past_behavior=dm.PastBehaviorQuery(
                root=dm.Node(
                    did_event=dm.DidEventCondition(
                        event=dm.EventSpec(event_name="never"), window=all_time
                    )
                )
            )
        ),
    }
    for segment_id, definition in kinds.items():
        try:
            await definitions.CreateSegment(
                dpb.CreateSegmentRequest(
                    parent=f"projects/{project}",
                    segment_id=segment_id,
                    segment=segment_pb2.Segment(display_name=segment_id, definition=definition),
                ),
                timeout=30,
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() is not grpc.StatusCode.ALREADY_EXISTS:
                raise
    evaluator = epb_grpc.SegmentEvaluatorServiceStub(channel)
    now = datetime.now(UTC)
    events = []
    for i in range(20):
        when = Timestamp()
        when.FromDatetime(now - timedelta(days=i))
        events.append(
            epb.Event(
                event_id=f"seed-{i}",
                user_id=f"u{i % 5}",
                event_name="purchase" if i % 2 else "view",
                event_time=when,
            )
        )

    async def batches() -> AsyncIterator[epb.IngestEventsRequest]:
        yield epb.IngestEventsRequest(parent=f"projects/{project}", events=events)

    await evaluator.IngestEvents(batches(), timeout=60)
    await _record_templates(channel, project, kinds)


async def _record_templates(channel: grpc.aio.Channel, project: str, kinds: dict[str, Any]) -> None:
    """Requests that succeed against the seeded project (`TEMPLATES`), and the resources
    they need (profiles, a snapshot, an export job, a usage)."""
    from google.protobuf.json_format import MessageToDict

    from segments.v1 import evaluator_service_pb2 as epb
    from segments.v1 import evaluator_service_pb2_grpc as epb_grpc
    from segments.v1 import export_service_pb2 as xpb
    from segments.v1 import export_service_pb2_grpc as xpb_grpc

    parent = f"projects/{project}"
    buyers = f"{parent}/segments/buyers"
    evaluator = epb_grpc.SegmentEvaluatorServiceStub(channel)
    profiles = [{"userId": f"u{i}", "email": f"u{i}@example.com"} for i in range(5)]
    upsert = {"parent": parent, "profiles": profiles}
    await evaluator.UpsertProfiles(
        json_format.ParseDict(upsert, epb.UpsertProfilesRequest()), timeout=60
    )
    snapshot = await evaluator.CreateSnapshot(epb.CreateSnapshotRequest(parent=buyers), timeout=60)
    exports = xpb_grpc.SegmentExportServiceStub(channel)
    job = await exports.CreateExportJob(
        xpb.CreateExportJobRequest(
            parent=parent, export_job=xpb.ExportJob(segment=buyers, fields=["user_id", "email"])
        ),
        timeout=60,
    )
    definitions = [MessageToDict(d) for d in kinds.values() if d.WhichOneof("kind") != "live"]
    past = [d for d in definitions if "pastBehavior" in d]
    TEMPLATES.update(
        {
            "ValidateDefinition": [{"parent": parent, "definition": d} for d in definitions],
            "EstimateDefinition": [{"parent": parent, "definition": d} for d in past],
            "CreateSegment": [
                {"parent": parent, "segment": {"displayName": "made", "definition": d}}
                for d in definitions
            ],
            "UpdateSegment": [
                {
                    "segment": {"name": buyers, "displayName": "Buyers", "description": "x"},
                    "updateMask": "displayName,description",
                }
            ],
            "CountSegment": [{"segment": buyers, "sampleSize": 5}],
            "ExplainSegment": [{"segment": buyers}],
            "StreamAudience": [{"segment": buyers}],
            "StreamAudienceTable": [{"segment": buyers}],
            "CheckMembership": [{"segment": buyers, "userIds": ["u1", "u2", "nobody"]}],
            "CreateSnapshot": [{"parent": buyers}],
            "GetSnapshot": [{"name": snapshot.name}],
            "ListSnapshots": [{"parent": buyers}],
            "ListSnapshotChanges": [{"parent": buyers, "fromVersion": "1"}],
            "GetProfile": [{"name": f"{parent}/profiles/u1"}],
            "UpsertProfiles": [upsert],
            "SetTestUsers": [{"parent": parent, "userIds": ["u1"], "testUser": True}],
            "CreateExportJob": [
                {"parent": parent, "exportJob": {"segment": buyers, "fields": ["user_id"]}}
            ],
            "GetExportJob": [{"name": job.name}],
            "CancelExportJob": [{"name": job.name}],
            "StreamExportJob": [{"name": job.name}],
            "RegisterSegmentUsage": [
                {
                    "parent": buyers,
                    "usage": {"kind": 1, "externalId": "c1", "displayName": "C", "status": 1},
                }
            ],
            "GetSegment": [{"name": buyers}],
            "ListSegments": [{"parent": parent, "pageSize": 2}],
            "GetSegmentDependencies": [{"name": buyers}],
            "ListDependentSegments": [{"parent": buyers}],
            "GetProject": [{"name": parent}],
        }
    )
    inputs = {m.name: m.input_type for m in all_methods()}
    for name, requests in TEMPLATES.items():
        for request in requests:  # a template that does not parse is a mistake here
            json_format.ParseDict(request, message_class(inputs[name])())
