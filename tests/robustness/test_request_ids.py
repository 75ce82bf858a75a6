"""A request id reused with a different request is refused; a retry of the same request
answers what the first call did (issue 13, defect 7; AIP-155)."""

from __future__ import annotations

from typing import Any

from google.protobuf import field_mask_pb2

from segments.v1 import definition_service_pb2 as dpb
from segments.v1 import export_service_pb2 as xpb
from segments.v1 import export_service_pb2_grpc as xpb_grpc
from segments.v1 import segment_pb2

from .serving import Served, behaviour, did, invalid_fields, served

__all__ = ["served"]


def _create(served: Served, event: str, request_id: str) -> dpb.CreateSegmentRequest:
    return dpb.CreateSegmentRequest(
        parent=served.parent,
        segment=segment_pb2.Segment(display_name=f"did {event}", definition=behaviour(did(event))),
        request_id=request_id,
    )


async def test_create_update_and_delete_refuse_a_reused_request_id(served: Served) -> None:
    d = served.definitions
    first = await d.CreateSegment(_create(served, "Buy", "create-1"))
    again = await d.CreateSegment(_create(served, "Buy", "create-1"))
    assert again.name == first.name
    fields = await invalid_fields(d.CreateSegment(_create(served, "Sell", "create-1")))
    assert "different fields" in fields["request_id"]

    def update(name: str) -> dpb.UpdateSegmentRequest:
        return dpb.UpdateSegmentRequest(
            segment=segment_pb2.Segment(name=first.name, display_name=name),
            update_mask=field_mask_pb2.FieldMask(paths=["display_name"]),
            request_id="update-1",
        )

    await d.UpdateSegment(update("renamed"))
    assert (await d.UpdateSegment(update("renamed"))).display_name == "renamed"
    fields = await invalid_fields(d.UpdateSegment(update("renamed again")))
    assert "request_id" in fields

    other = await d.CreateSegment(_create(served, "Rent", ""))
    await d.DeleteSegment(dpb.DeleteSegmentRequest(name=other.name, request_id="delete-1"))
    await d.DeleteSegment(dpb.DeleteSegmentRequest(name=other.name, request_id="delete-1"))
    fields = await invalid_fields(
        d.DeleteSegment(dpb.DeleteSegmentRequest(name=first.name, request_id="delete-1"))
    )
    assert "request_id" in fields


async def test_an_export_refuses_a_reused_request_id(served: Served) -> None:
    segment = await served.create("exported", behaviour(did("Buy")))
    exports: Any = xpb_grpc.SegmentExportServiceStub(served.channel)

    def job(fields: list[str]) -> xpb.CreateExportJobRequest:
        return xpb.CreateExportJobRequest(
            parent=served.parent,
            export_job=xpb.ExportJob(segment=segment, fields=fields),
            request_id="export-1",
        )

    first = await exports.CreateExportJob(job(["user_id"]))
    assert (await exports.CreateExportJob(job(["user_id"]))).name == first.name
    fields = await invalid_fields(exports.CreateExportJob(job(["user_id", "email"])))
    assert "request_id" in fields
