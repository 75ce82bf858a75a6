"""Page tokens are opaque and bound to the request that produced them, in every List RPC: a
malformed token or one from another request answers INVALID_ARGUMENT on `page_token`
(issue 13, defect 14; AIP-158)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from segments.v1 import access_pb2
from segments.v1 import definition_service_pb2 as dpb
from segments.v1 import evaluator_service_pb2 as pb
from segments.v1 import export_service_pb2 as xpb
from segments.v1 import export_service_pb2_grpc as xpb_grpc

from .serving import Served, behaviour, did, invalid_fields, served

__all__ = ["served"]

BAD_TOKENS = ("²", "garbage!", "12", "W10", "e30", "x" * 10_000)


async def test_every_list_rpc_refuses_a_token_it_did_not_issue(served: Served) -> None:
    first = await served.create("first", behaviour(did("Buy")))
    await served.create("second", behaviour(did("Buy")))
    versions = [
        (await served.evaluator.CreateSnapshot(pb.CreateSnapshotRequest(parent=first))).version
        for _ in range(2)
    ]
    d, e = served.definitions, served.evaluator
    x: Any = xpb_grpc.SegmentExportServiceStub(served.channel)
    parent = served.parent
    listings: dict[str, Callable[[str], Awaitable[Any]]] = {
        "ListProjects": lambda t: d.ListProjects(dpb.ListProjectsRequest(page_token=t)),
        "ListSegments": lambda t: d.ListSegments(
            dpb.ListSegmentsRequest(parent=parent, page_token=t)
        ),
        "ListDependentSegments": lambda t: d.ListDependentSegments(
            dpb.ListDependentSegmentsRequest(parent=first, page_token=t)
        ),
        "ListSegmentUsages": lambda t: d.ListSegmentUsages(
            dpb.ListSegmentUsagesRequest(parent=first, page_token=t)
        ),
        "ListSegmentEngagements": lambda t: d.ListSegmentEngagements(
            dpb.ListSegmentEngagementsRequest(parent=first, page_token=t)
        ),
        "ListApiKeys": lambda t: d.ListApiKeys(access_pb2.ListApiKeysRequest(page_token=t)),
        "ListAuditRecords": lambda t: d.ListAuditRecords(
            access_pb2.ListAuditRecordsRequest(parent=parent, page_token=t)
        ),
        "ListSnapshots": lambda t: e.ListSnapshots(
            pb.ListSnapshotsRequest(parent=first, page_token=t)
        ),
        "ListSnapshotChanges": lambda t: e.ListSnapshotChanges(
            pb.ListSnapshotChangesRequest(
                parent=first, from_version=versions[0], to_version=versions[1], page_token=t
            )
        ),
        "ListExportJobs": lambda t: x.ListExportJobs(
            xpb.ListExportJobsRequest(parent=parent, page_token=t)
        ),
    }
    for rpc, call in listings.items():
        for token in BAD_TOKENS:
            fields = await invalid_fields(call(token))
            assert "page_token" in fields, (rpc, token, fields)


async def test_a_snapshot_page_token_is_bound_to_its_segment(served: Served) -> None:
    one = await served.create("one-seg", behaviour(did("Buy")))
    other = await served.create("other", behaviour(did("Buy")))
    for segment in (one, other):
        for _ in range(2):
            await served.evaluator.CreateSnapshot(pb.CreateSnapshotRequest(parent=segment))
    page = await served.evaluator.ListSnapshots(pb.ListSnapshotsRequest(parent=one, page_size=1))
    assert page.next_page_token
    following = await served.evaluator.ListSnapshots(
        pb.ListSnapshotsRequest(parent=one, page_size=1, page_token=page.next_page_token)
    )
    assert [s.version for s in following.snapshots] == [page.snapshots[0].version - 1]
    fields = await invalid_fields(
        served.evaluator.ListSnapshots(
            pb.ListSnapshotsRequest(parent=other, page_token=page.next_page_token)
        )
    )
    assert "different request" in fields["page_token"]
