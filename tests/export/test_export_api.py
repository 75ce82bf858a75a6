"""Export jobs through gRPC on the real stores (see conftest: SQLite + chDB, PostgreSQL +
clickhouse-connect over HTTP): the CSV read back with Python's csv module, blocked members,
STREAM jobs, idempotency, listing and every refusal with its status and details."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import grpc
import pytest

from libs.model.definition_proto import datetime_to_timestamp
from segments.v1 import definition_model_pb2 as dm
from segments.v1 import evaluator_service_pb2 as epb
from segments.v1 import export_service_pb2 as pb
from tests.evaluator.grpc_stack import create, past, rich

from .stack import (
    ExportStack,
    create_job,
    new_project,
    read_csv,
    stream_bytes,
    upsert,
    value,
    wait_for,
)

FIELDS = ["user_id", "display_name", "email", "phone", "score", "note", "vip", "seen", "nope"]
SEEN = datetime(2026, 5, 4, 3, 2, 1, 500000, tzinfo=UTC)


def profiles() -> list[epb.Profile]:
    time_value = dm.Value(time_value=datetime_to_timestamp(SEEN))
    return [
        epb.Profile(user_id="u1", display_name="Zoë 東京 🎉", email="zoe@example.com",
                    phone="+14155550100", properties={"score": value(-5), "note": value("a,b"),
                    "vip": value(True), "seen": time_value}),
        epb.Profile(user_id="u2", display_name='=HYPERLINK("http://evil","x")',
                    email="@at@example.com", properties={"score": value(2.5),
                    "note": value('say "hi"\nnext line'), "vip": value(False)}),
        epb.Profile(user_id="u3", display_name="\uff1dSUM(A1)", properties={
                    "score": value("-12"), "note": value("\tTAB"), "plain": value("x")}),
        epb.Profile(user_id="u4", display_name="-minus", blocked=True,
                    properties={"note": value("+plus")}),
        epb.Profile(user_id="u5"),
    ]  # fmt: skip


EXPECTED = [
    FIELDS,
    ["u1", "Zoë 東京 🎉", "zoe@example.com", "'+14155550100", "-5", "a,b", "true",
     "2026-05-04T03:02:01.500Z", ""],
    ["u2", "'=HYPERLINK(\"http://evil\",\"x\")", "'@at@example.com", "", "2.5",
     'say "hi"\nnext line', "false", "", ""],
    ["u3", "'\uff1dSUM(A1)", "", "", "'-12", "'\tTAB", "", "", ""],
    ["u5", "", "", "", "", "", "", "", ""],
]  # fmt: skip


async def test_every_column_kind_reads_back_with_the_csv_module(
    stack: ExportStack, project: str
) -> None:
    await upsert(stack, project, profiles())
    created = await create_job(stack, project, FIELDS)
    assert created.state == pb.EXPORT_JOB_STATE_PENDING
    assert created.name.startswith(f"projects/{project}/exportJobs/")
    assert (created.creator, list(created.fields)) == ("bootstrap-admin", FIELDS)
    done = await wait_for(stack, created.name)
    assert done.state == pb.EXPORT_JOB_STATE_SUCCEEDED, done.error
    assert (done.exported_count, done.blocked_skipped_count, done.total_count) == (4, 1, 5)
    assert done.output_path == f"{project}/{created.name.rsplit('/', 1)[1]}.csv"
    assert done.as_of == created.as_of and done.HasField("expire_time") and not done.expired
    data = (stack.export_dir / done.output_path).read_bytes()
    assert data.startswith(b"user_id,display_name,") and b"\r\n" in data
    assert read_csv(data) == EXPECTED
    assert await stream_bytes(stack, done.name) == data
    assert not list(stack.export_dir.glob("*/.*.part"))


async def test_byte_order_mark_and_a_chosen_instant(stack: ExportStack, project: str) -> None:
    as_of = datetime.now(UTC) - timedelta(days=1)
    zoe = profiles()[0]
    zoe.update_time.CopyFrom(datetime_to_timestamp(as_of - timedelta(days=1)))
    await upsert(stack, project, [zoe])  # written before the instant exported
    job = await create_job(stack, project, ["email"], byte_order_mark=True,
                           as_of=datetime_to_timestamp(as_of))  # fmt: skip
    done = await wait_for(stack, job.name)
    assert done.as_of == datetime_to_timestamp(as_of)
    data = (stack.export_dir / done.output_path).read_bytes()
    assert data == "\ufeffemail\r\nzoe@example.com\r\n".encode()


async def test_a_stream_job_is_streamed_once_by_its_reader(
    stack: ExportStack, project: str
) -> None:
    await upsert(stack, project, profiles())
    job = await create_job(stack, project, FIELDS, destination=pb.EXPORT_DESTINATION_STREAM)
    await asyncio.sleep(0.3)  # workers leave STREAM jobs to their reader
    still = await stack.export.GetExportJob(pb.GetExportJobRequest(name=job.name))
    assert still.state == pb.EXPORT_JOB_STATE_PENDING
    data = await stream_bytes(stack, job.name)
    assert read_csv(data) == EXPECTED
    done = await wait_for(stack, job.name)
    assert (done.state, done.exported_count, done.blocked_skipped_count, done.output_path) == (
        pb.EXPORT_JOB_STATE_SUCCEEDED, 4, 1, "")  # fmt: skip
    with pytest.raises(grpc.aio.AioRpcError) as again:
        await stream_bytes(stack, job.name)
    assert again.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert rich(again.value).info.reason == "EXPORT_STREAM_TAKEN"


async def test_a_custom_segment_exports_its_members_only(stack: ExportStack, project: str) -> None:
    await upsert(stack, project, profiles())
    exists = dm.Comparison(operator=dm.COMPARISON_OPERATOR_EXISTS)
    has_vip = dm.Node(user_property=dm.PropertyFilter(property="vip", comparison=exists))
    await create(stack.base, project, "vips", past(has_vip))
    job = await create_job(stack, project, ["user_id", "vip"], segment="vips")
    done = await wait_for(stack, job.name)
    data = (stack.export_dir / done.output_path).read_bytes()
    assert read_csv(data) == [["user_id", "vip"], ["u1", "true"], ["u2", "false"]]


async def test_create_is_idempotent_with_a_request_id(stack: ExportStack, project: str) -> None:
    await upsert(stack, project, profiles()[:1])
    first = await create_job(stack, project, ["user_id"], request_id="r-1")
    again = await create_job(stack, project, ["user_id"], request_id="r-1")
    racing = await asyncio.gather(
        *(create_job(stack, project, ["user_id"], request_id="r-2") for _ in range(4))
    )
    assert again.name == first.name
    assert len({j.name for j in racing}) == 1
    listed = await stack.export.ListExportJobs(
        pb.ListExportJobsRequest(parent=f"projects/{project}")
    )
    assert len(listed.export_jobs) == 2


async def test_list_pages_newest_first(stack: ExportStack, project: str) -> None:
    names = [(await create_job(stack, project, ["user_id"])).name for _ in range(5)]
    seen: list[str] = []
    token = ""
    while True:
        page = await stack.export.ListExportJobs(
            pb.ListExportJobsRequest(parent=f"projects/{project}", page_size=2, page_token=token)
        )
        seen += [j.name for j in page.export_jobs]
        token = page.next_page_token
        if not token:
            break
    assert seen == names[::-1]


async def _refused(call: object) -> tuple[grpc.StatusCode, str, list[tuple[str, str]]]:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call  # type: ignore[misc]
    details = rich(caught.value)
    assert details.code not in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN)
    return details.code, details.info.reason, details.violations


async def test_bad_requests_get_precise_statuses(stack: ExportStack, project: str) -> None:
    ex, parent = stack.export, f"projects/{project}"
    INVALID, NOT_FOUND = grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND

    def create_request(**job: object) -> pb.CreateExportJobRequest:
        fields = job.pop("fields", ["user_id"])
        segment = job.pop("segment", f"{parent}/segments/all-users")
        return pb.CreateExportJobRequest(
            parent=parent, export_job=pb.ExportJob(segment=segment, fields=fields, **job))  # type: ignore[arg-type]  # fmt: skip

    code, _, violations = await _refused(ex.CreateExportJob(create_request(
        fields=["email", "", "email"])))  # fmt: skip
    assert code is INVALID and [f for f, _ in violations] == [
        "export_job.fields[1]", "export_job.fields[2]"]  # fmt: skip
    code, _, violations = await _refused(ex.CreateExportJob(create_request(fields=[])))
    assert (code, violations[0][0]) == (INVALID, "export_job.fields")
    await new_project(stack, f"{project}-other")  # one the caller may read, but not this one
    code, _, violations = await _refused(ex.CreateExportJob(create_request(
        segment=f"projects/{project}-other/segments/all-users")))  # fmt: skip
    assert (code, violations[0][0]) == (INVALID, "export_job.segment")
    code, reason, _ = await _refused(ex.CreateExportJob(create_request(
        segment="projects/nobodys/segments/all-users")))  # fmt: skip
    assert (code, reason) == (NOT_FOUND, "PROJECT_NOT_FOUND")
    future = datetime_to_timestamp(datetime.now(UTC) + timedelta(hours=1))
    code, _, violations = await _refused(ex.CreateExportJob(create_request(as_of=future)))
    assert (code, violations[0][0]) == (INVALID, "export_job.as_of")
    code, _, violations = await _refused(ex.CreateExportJob(create_request(destination=7)))
    assert (code, violations[0][0]) == (INVALID, "export_job.destination")
    code, _, _ = await _refused(ex.CreateExportJob(pb.CreateExportJobRequest(parent=parent)))
    assert code is INVALID
    code, _, _ = await _refused(
        ex.CreateExportJob(create_request(segment=f"{parent}/segments/nope"))
    )
    assert code is NOT_FOUND
    code, _, violations = await _refused(ex.CreateExportJob(pb.CreateExportJobRequest(
        parent="projects/../x", export_job=pb.ExportJob(fields=["user_id"]))))  # fmt: skip
    assert (code, violations[0][0]) == (INVALID, "parent")

    missing = f"{parent}/exportJobs/nothere"
    assert (await _refused(ex.GetExportJob(pb.GetExportJobRequest(name=missing))))[:2] == (
        NOT_FOUND, "EXPORT_JOB_NOT_FOUND")  # fmt: skip
    for bad in (f"{parent}/exportJobs/../../etc", "exportJobs/x", ""):
        code, _, violations = await _refused(ex.GetExportJob(pb.GetExportJobRequest(name=bad)))
        assert (code, violations[0][0]) == (INVALID, "name")
        code, _, _ = await _refused(
            stream_bytes(stack, bad)  # the path never reaches the file system
        )
        assert code is INVALID
    code, _, violations = await _refused(ex.ListExportJobs(pb.ListExportJobsRequest(
        parent=parent, page_token="garbage!")))  # fmt: skip
    assert (code, violations[0][0]) == (INVALID, "page_token")
    code, _, _ = await _refused(ex.CancelExportJob(pb.CancelExportJobRequest(name=missing)))
    assert code is NOT_FOUND


async def test_finished_jobs_refuse_cancel_and_unfinished_files_refuse_streaming(
    stack: ExportStack, project: str
) -> None:
    await upsert(stack, project, profiles()[:1])
    stack.peer.delay, stack.peer.pass_first = 2.0, 1  # hold the rows back
    try:
        job = await create_job(stack, project, ["user_id"])
        await wait_for(stack, job.name, [pb.EXPORT_JOB_STATE_RUNNING])
        code, reason, _ = await _refused(stream_bytes(stack, job.name))
        assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "EXPORT_JOB_NOT_FINISHED")
    finally:
        stack.peer.delay = 0.0
    done = await wait_for(stack, job.name)
    assert done.state == pb.EXPORT_JOB_STATE_SUCCEEDED
    code, reason, _ = await _refused(
        stack.export.CancelExportJob(pb.CancelExportJobRequest(name=job.name))
    )
    assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "EXPORT_JOB_FINISHED")
