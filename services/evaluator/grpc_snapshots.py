"""The snapshot RPCs of the evaluator servicer: CreateSnapshot, GetSnapshot, ListSnapshots
and ListSnapshotChanges (use cases in `application`, storage in `adapters.snapshot_store`)."""

from __future__ import annotations

from typing import Any, TypeVar

import grpc

from libs.common.errors import InvalidArgument
from libs.common.page_tokens import Cursor, decode_page_token, encode_page_token, fingerprint
from libs.model.definition_proto import datetime_to_timestamp, instant_from_proto
from segments.v1 import evaluator_service_pb2 as pb
from services.evaluator.adapters.snapshot_store import SnapshotInfo
from services.evaluator.application import Evaluator
from services.evaluator.domain.names import parse_segment, parse_snapshot, snapshot_name

Ctx = grpc.aio.ServicerContext[Any, Any]
K = TypeVar("K", int, str)


def _snapshot(segment: str, info: SnapshotInfo) -> pb.Snapshot:
    return pb.Snapshot(
        name=snapshot_name(parse_segment(segment), info.version),
        version=info.version,
        as_of=datetime_to_timestamp(info.as_of),
        user_count=info.user_count,
        create_time=datetime_to_timestamp(info.create_time),
    )


class SnapshotRpcs:
    ev: Evaluator

    async def CreateSnapshot(self, request: pb.CreateSnapshotRequest, context: Ctx) -> pb.Snapshot:
        as_of = instant_from_proto(request.as_of, "as_of") if request.HasField("as_of") else None
        info = await self.ev.create_snapshot(request.parent, as_of)
        return _snapshot(request.parent, info)

    async def GetSnapshot(self, request: pb.GetSnapshotRequest, context: Ctx) -> pb.Snapshot:
        segment, version = parse_snapshot(request.name)
        info = await self.ev.snapshots.get(segment.project, segment.name, version)
        return _snapshot(segment.name, info)

    async def ListSnapshots(
        self, request: pb.ListSnapshotsRequest, context: Ctx
    ) -> pb.ListSnapshotsResponse:
        segment = parse_segment(request.parent, "parent")
        if request.page_size < 0:
            raise InvalidArgument.field("page_size", "must not be negative")
        size = min(request.page_size or 100, 100)
        bound_to = fingerprint("snapshots", segment.name)
        before = _token_key(request.page_token, bound_to, int)
        found = await self.ev.snapshots.versions(segment.project, segment.name, size + 1, before)
        out = pb.ListSnapshotsResponse(snapshots=[_snapshot(segment.name, s) for s in found[:size]])
        if len(found) > size:
            out.next_page_token = encode_page_token(bound_to, Cursor(found[size - 1].version, ""))
        return out

    async def ListSnapshotChanges(
        self, request: pb.ListSnapshotChangesRequest, context: Ctx
    ) -> pb.ListSnapshotChangesResponse:
        segment = parse_segment(request.parent, "parent")
        if request.page_size < 0:
            raise InvalidArgument.field("page_size", "must not be negative")
        size = min(request.page_size or 10_000, 10_000)
        await self.ev.snapshots.get(segment.project, segment.name, request.from_version)
        await self.ev.snapshots.get(segment.project, segment.name, request.to_version)
        bound_to = fingerprint(
            "snapshot_changes", segment.name, str(request.from_version), str(request.to_version)
        )
        after = _token_key(request.page_token, bound_to, str) or ""
        found = await self.ev.snapshots.changes(
            segment.project, segment.name, request.from_version, request.to_version, after,
            size + 1,
        )  # fmt: skip
        out = pb.ListSnapshotChangesResponse(
            changes=[
                pb.SnapshotChange(user_id=u, kind=pb.ChangeKind.ValueType(k))
                for u, k in found[:size]
            ]
        )
        if len(found) > size:
            out.next_page_token = encode_page_token(bound_to, Cursor(found[size - 1][0], ""))
        return out


def _token_key(token: str, bound_to: str, kind: type[K]) -> K | None:
    """The sort key of a page token of this request (None without a token)."""
    if not token:
        return None
    key = decode_page_token(token, bound_to).key
    if not isinstance(key, kind):
        raise InvalidArgument.field("page_token", "not a page token issued by this service")
    return key
