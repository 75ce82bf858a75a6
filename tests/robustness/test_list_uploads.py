"""Custom-list uploads: one without a valid row leaves the list as it was and is refused with
the row report (issue 13, defect 8); a byte-order mark at the start is not part of the first
identity (defect 15)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
from google.rpc.error_details_pb2 import ErrorInfo

from libs.common.status import call_status
from segments.v1 import definition_model_pb2 as dm
from segments.v1 import evaluator_service_pb2 as pb

from .serving import Served, invalid_fields, refused, served

__all__ = ["served"]


async def _upload(
    served: Served, segment: str, csv: bytes, *, header_row: bool = False, empty: bool = False
) -> pb.UploadCustomListResponse:
    async def messages() -> AsyncIterator[pb.UploadCustomListRequest]:
        yield pb.UploadCustomListRequest(
            header=pb.UploadCustomListHeader(
                segment=segment, has_header_row=header_row, allow_empty=empty
            )
        )
        yield pb.UploadCustomListRequest(chunk=csv)

    response: pb.UploadCustomListResponse = await served.evaluator.UploadCustomList(messages())
    return response


async def _members(served: Served, segment: str) -> list[str]:
    counted = await served.evaluator.CountSegment(
        pb.CountSegmentRequest(segment=segment, sample_size=100)
    )
    return sorted(counted.sample_user_ids)


async def test_an_upload_without_a_valid_row_leaves_the_list(served: Served) -> None:
    await served.evaluator.UpsertProfiles(
        pb.UpsertProfilesRequest(
            parent=served.parent, profiles=[pb.Profile(user_id=u) for u in ("ann", "bob")]
        )
    )
    segment = await served.create(
        "vip-list",
        dm.Definition(custom_list=dm.CustomListDefinition(identity_kind=dm.IDENTITY_KIND_USER_ID)),
    )
    report = await _upload(served, segment, "\ufeffann\nbob\n".encode())
    assert (report.row_count, report.matched_count) == (2, 2)  # the mark is no part of "ann"
    assert await _members(served, segment) == ["ann", "bob"]

    await invalid_fields(_upload(served, segment, b"user_id\n", header_row=True))
    exc = await refused(_upload(served, segment, b'a"b\n\x01\n'), grpc.StatusCode.INVALID_ARGUMENT)
    status = call_status(exc)
    assert status is not None
    info = ErrorInfo()
    assert any(d.Unpack(info) for d in status.details)
    assert (info.reason, info.metadata["malformed_count"]) == ("LIST_UPLOAD_EMPTY", "2")
    fields = await invalid_fields(_upload(served, segment, b'a"b\n\x01\n'))
    assert set(fields) == {"rows[1].identity", "rows[2].identity"}, fields
    assert await _members(served, segment) == ["ann", "bob"]

    emptied = await _upload(served, segment, b"user_id\n", header_row=True, empty=True)
    assert emptied.row_count == 0
    assert await _members(served, segment) == []
