"""The audit trail: one record per write and key operation, refusals included, readable by
admins through ListAuditRecords and written to the log."""

from __future__ import annotations

import io
import json

import grpc
import pytest

from libs.common.logging import configure_logging
from segments.v1 import access_pb2
from segments.v1 import definition_service_pb2 as pb
from services.definition.domain.keys import key_id_of
from tests.support.auth import bearer, make_key

from .helpers import USER, Backend, Stub, create, reason_of

DEFINITION = "/segments.v1.SegmentDefinitionService/"


async def _records(
    stub: Stub, parent: str, metadata: tuple[tuple[str, str], ...] = ()
) -> list[access_pb2.AuditRecord]:
    found: list[access_pb2.AuditRecord] = []
    token = ""
    while True:
        page = await stub.ListAuditRecords(
            access_pb2.ListAuditRecordsRequest(parent=parent, page_size=3, page_token=token),
            metadata=metadata or None,
        )
        found += page.audit_records
        token = page.next_page_token
        if not token:
            return found


async def test_writes_and_refusals_are_recorded_newest_first(
    backend: Backend, stub: Stub, project: str
) -> None:
    parent = f"projects/{project}"
    viewer = await make_key(backend.channel, {parent: access_pb2.ROLE_VIEWER}, person="v@x.io")
    logs = io.StringIO()
    configure_logging("INFO", stream=logs)
    try:
        segment = await create(stub, project, "Audited")  # by ana@example.com
        await stub.GetSegment(pb.GetSegmentRequest(name=segment.name))  # a read: not recorded
        with pytest.raises(grpc.aio.AioRpcError):
            await stub.DeleteSegment(
                pb.DeleteSegmentRequest(name=segment.name), metadata=bearer(viewer)
            )
        await stub.DeleteSegment(
            pb.DeleteSegmentRequest(name=segment.name), metadata=(*USER, ("x-request-id", "a-1"))
        )
    finally:
        configure_logging("INFO")
    records = await _records(stub, parent)
    assert [(r.method.removeprefix(DEFINITION), r.principal, r.outcome) for r in records] == [
        ("DeleteSegment", "ana@example.com", "OK"),
        ("DeleteSegment", "v@x.io", "PERMISSION_DENIED"),
        ("CreateSegment", "ana@example.com", "OK"),
    ]
    deleted, refused, created = records
    assert deleted.resource == segment.name and deleted.request_id == "a-1"
    assert deleted.project == parent and deleted.client.startswith("127.0.0.1")
    assert created.resource == segment.name  # the created segment's name, from the answer
    assert refused.api_key == f"apiKeys/{key_id_of(viewer)}" and "editor" in refused.message
    assert deleted.time.ToDatetime() >= created.time.ToDatetime()
    logged = [json.loads(x) for x in logs.getvalue().splitlines() if x.startswith("{")]
    audit_lines = [x for x in logged if x.get("event") == "audit"]
    assert [x["outcome"] for x in audit_lines] == ["OK", "PERMISSION_DENIED", "OK"]
    assert audit_lines[0]["principal"] == "ana@example.com"


async def test_key_operations_are_in_the_whole_trail_for_admins_of_everything(
    backend: Backend, stub: Stub, project: str
) -> None:
    parent = f"projects/{project}"
    key = await make_key(backend.channel, {parent: access_pb2.ROLE_ADMIN}, service="ops-team")
    name = f"apiKeys/{key_id_of(key)}"
    await stub.RevokeApiKey(access_pb2.RevokeApiKeyRequest(name=name))
    everything = await stub.ListAuditRecords(access_pb2.ListAuditRecordsRequest(page_size=50))
    ours = [r for r in everything.audit_records if r.resource == name]
    assert [(r.method.removeprefix(DEFINITION), r.outcome) for r in ours] == [
        ("RevokeApiKey", "OK"),
        ("CreateApiKey", "OK"),
    ]
    assert all(r.principal == "bootstrap-admin" and r.project == "" for r in ours)
    # an admin of one project reads that project's trail only; a viewer reads none
    admin = await make_key(backend.channel, {parent: access_pb2.ROLE_ADMIN}, person="ad@x.io")
    viewer = await make_key(backend.channel, {parent: access_pb2.ROLE_VIEWER}, person="vw@x.io")
    assert await _records(stub, parent, bearer(admin)) is not None
    for key_text, request_parent, code in (
        (admin, "", grpc.StatusCode.PERMISSION_DENIED),
        (viewer, parent, grpc.StatusCode.PERMISSION_DENIED),
        (admin, "projects/not-mine", grpc.StatusCode.NOT_FOUND),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.ListAuditRecords(
                access_pb2.ListAuditRecordsRequest(parent=request_parent),
                metadata=bearer(key_text),
            )
        assert caught.value.code() is code
    for bad, field in ((-1, "page_size"), (1001, "page_size")):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.ListAuditRecords(access_pb2.ListAuditRecordsRequest(page_size=bad))
        assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert field in (caught.value.details() or "")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.ListAuditRecords(
            access_pb2.ListAuditRecordsRequest(parent=parent, page_token="bm9wZQ")
        )
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT


async def test_a_refused_unauthenticated_write_is_recorded_without_a_principal(
    stub: Stub, project: str
) -> None:
    parent = f"projects/{project}"
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.CreateSegment(
            pb.CreateSegmentRequest(parent=parent), metadata=bearer("sgk_0000000000ff_" + "q" * 43)
        )
    assert reason_of(caught.value) == "API_KEY_UNKNOWN"
    everything = await stub.ListAuditRecords(access_pb2.ListAuditRecordsRequest(page_size=20))
    refused = [
        r
        for r in everything.audit_records
        if r.outcome == "UNAUTHENTICATED" and r.method.endswith("/CreateSegment")
    ]
    assert refused and refused[0].principal == "" and refused[0].resource == parent
