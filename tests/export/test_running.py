"""Running jobs through gRPC: cancel, the running-job limits, one consistent membership,
expired files, an evaluator that goes away, and two export processes sharing the work.

Rows are held back by the SlowPeer between the export service and the evaluator, so that a job
is still running when the test acts on it.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import grpc
import pytest
from google.protobuf import field_mask_pb2
from google.rpc import error_details_pb2

from libs.common.status import call_status
from segments.v1 import access_pb2, segment_pb2
from segments.v1 import definition_model_pb2 as dm
from segments.v1 import definition_service_pb2 as dpb
from segments.v1 import evaluator_service_pb2 as epb
from segments.v1 import export_service_pb2 as pb
from segments.v1 import export_service_pb2_grpc as pb_grpc
from services.export.adapters.job_store import JobStore
from tests.evaluator.grpc_stack import TIMEOUT, create, past, rich
from tests.support.auth import authorized_channel, make_key

from .stack import (
    FAST,
    ExportStack,
    create_job,
    new_project,
    own_store,
    read_csv,
    running_export,
    stream_bytes,
    upsert,
    value,
    wait_for,
)

RUNNING = [pb.EXPORT_JOB_STATE_RUNNING]


async def members(stack: ExportStack, project: str, n: int, **props: str) -> None:
    await upsert(stack, project, [
        epb.Profile(user_id=f"u{i:03d}", properties={k: value(v) for k, v in props.items()})
        for i in range(n)
    ])  # fmt: skip


async def wait_running(stack: ExportStack, name: str) -> pb.ExportJob:
    """The job once it runs and has recorded its progress."""
    for _ in range(400):
        job = await stack.export.GetExportJob(pb.GetExportJobRequest(name=name))
        if job.state == pb.EXPORT_JOB_STATE_RUNNING and job.total_count:
            return job
        assert job.state in (pb.EXPORT_JOB_STATE_PENDING, pb.EXPORT_JOB_STATE_RUNNING), job
        await asyncio.sleep(0.025)
    raise AssertionError(f"{name} did not start")


def partials(stack: ExportStack) -> list[Path]:
    return sorted(stack.export_dir.glob("*/.*.part"))


async def test_progress_is_recorded_while_the_job_runs(stack: ExportStack, project: str) -> None:
    await members(stack, project, 30)
    stack.peer.delay = 0.3  # 5 chunks of 7 rows, one every 0.3 s
    try:
        job = await create_job(stack, project, ["user_id"])
        seen: set[int] = set()
        while (current := await wait_running(stack, job.name)).exported_count < 30:
            seen.add(current.exported_count)
            if len(seen - {0}) >= 2:
                break
            await asyncio.sleep(0.05)
        done = await wait_for(stack, job.name)
    finally:
        stack.peer.delay = 0.0
    # counts part-way through, as chunks were written (each a whole number of chunks)
    assert len(seen - {0}) >= 2 and all(n % 7 == 0 and n < 30 for n in seen), seen
    assert (done.state, done.exported_count) == (pb.EXPORT_JOB_STATE_SUCCEEDED, 30)


async def test_cancel_stops_a_running_job_and_removes_its_partial_file(
    stack: ExportStack, project: str
) -> None:
    await members(stack, project, 30)
    stack.peer.delay = 0.5
    try:
        job = await create_job(stack, project, ["user_id"])
        running = await wait_running(stack, job.name)
        assert running.total_count == 30
        assert any(p.name.startswith(f".{job.name.rsplit('/', 1)[1]}.") for p in partials(stack))
        cancelled = await stack.export.CancelExportJob(pb.CancelExportJobRequest(name=job.name))
    finally:
        stack.peer.delay = 0.0
    assert cancelled.state == pb.EXPORT_JOB_STATE_CANCELLED
    assert not partials(stack)
    assert not list((stack.export_dir / project).glob("*.csv"))
    with pytest.raises(grpc.aio.AioRpcError) as again:
        await stack.export.CancelExportJob(pb.CancelExportJobRequest(name=job.name))
    assert rich(again.value).info.reason == "EXPORT_JOB_FINISHED"


async def test_cancel_a_pending_job_and_a_stream_being_read(
    stack: ExportStack, project: str
) -> None:
    await members(stack, project, 30)
    pending = await create_job(
        stack, project, ["user_id"], destination=pb.EXPORT_DESTINATION_STREAM
    )
    cancelled = await stack.export.CancelExportJob(pb.CancelExportJobRequest(name=pending.name))
    assert cancelled.state == pb.EXPORT_JOB_STATE_CANCELLED
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stream_bytes(stack, pending.name)
    assert refused.value.code() is grpc.StatusCode.FAILED_PRECONDITION

    job = await create_job(stack, project, ["user_id"], destination=pb.EXPORT_DESTINATION_STREAM)
    stack.peer.delay = 0.5
    try:
        call = stack.export.StreamExportJob(pb.StreamExportJobRequest(name=job.name))
        first = await call.read()  # the header and the first rows
        assert isinstance(first, pb.StreamExportJobResponse)
        assert first.data.startswith(b"user_id\r\n")
        await stack.export.CancelExportJob(pb.CancelExportJobRequest(name=job.name))
        with pytest.raises(grpc.aio.AioRpcError) as ended:
            while await call.read() is not grpc.aio.EOF:  # type: ignore[attr-defined]
                pass
    finally:
        stack.peer.delay = 0.0
    assert (ended.value.code(), rich(ended.value).info.reason) == (
        grpc.StatusCode.ABORTED, "EXPORT_JOB_CANCELLED")  # fmt: skip
    assert (await wait_for(stack, job.name)).state == pb.EXPORT_JOB_STATE_CANCELLED


async def test_a_reader_that_goes_away_fails_its_stream_job(
    stack: ExportStack, project: str
) -> None:
    await members(stack, project, 30)
    job = await create_job(stack, project, ["user_id"], destination=pb.EXPORT_DESTINATION_STREAM)
    stack.peer.delay = 0.5
    try:
        call = stack.export.StreamExportJob(pb.StreamExportJobRequest(name=job.name))
        await call.read()
        call.cancel()
        failed = await wait_for(stack, job.name)
    finally:
        stack.peer.delay = 0.0
    assert failed.state == pb.EXPORT_JOB_STATE_FAILED
    assert (failed.error.code, failed.error.message.startswith("the caller")) == (
        grpc.StatusCode.CANCELLED.value[0], True)  # fmt: skip


async def test_one_running_job_per_segment_and_a_limit_per_project(
    stack: ExportStack, project: str, tmp_path: Path
) -> None:
    await members(stack, project, 20, tier="gold")
    exists = dm.Comparison(operator=dm.COMPARISON_OPERATOR_EXISTS)
    tier = dm.Node(user_property=dm.PropertyFilter(property="tier", comparison=exists))
    await create(stack.base, project, "golds", past(tier))
    segments = ["all-users", "all-users", "golds", "test-users"]
    # a second process on the same store: four workers between them, so the limits (not the
    # number of workers) are what holds the jobs back
    async with running_export(stack.base, stack.store_url, tmp_path) as second:
        stack.peer.delay = second.peer.delay = 0.3
        try:
            jobs = [await create_job(stack, project, ["user_id"], segment=s) for s in segments]
            most = 0
            while True:
                # one listing is one read of the store: the states of one instant
                listed = await stack.export.ListExportJobs(
                    pb.ListExportJobsRequest(parent=f"projects/{project}"), timeout=TIMEOUT
                )
                states = {j.name: j for j in listed.export_jobs}
                running = [states[j.name].segment for j in jobs if states[j.name].state in RUNNING]
                assert len(running) == len(set(running)), "two running jobs of one segment"
                most = max(most, len(running))
                assert most <= FAST.max_running_per_project
                if all(states[j.name].state == pb.EXPORT_JOB_STATE_SUCCEEDED for j in jobs):
                    break
                await asyncio.sleep(0.05)
        finally:
            stack.peer.delay = second.peer.delay = 0.0
    assert most == FAST.max_running_per_project


async def test_a_full_queue_is_refused(stack: ExportStack, project: str, tmp_path: Path) -> None:
    tight = replace(FAST, workers=0, max_unfinished_per_project=2)
    async with (
        own_store(stack, tmp_path) as url,
        running_export(stack.base, url, tmp_path, tight) as other,
    ):
        for _ in range(2):
            await create_job(other, project, ["user_id"])
        with pytest.raises(grpc.aio.AioRpcError) as full:
            await create_job(other, project, ["user_id"])
    details = rich(full.value)
    assert (details.code, details.info.reason) == (
        grpc.StatusCode.RESOURCE_EXHAUSTED, "EXPORT_QUEUE_FULL")  # fmt: skip
    assert retry_delay(full.value) > 0


def retry_delay(error: grpc.aio.AioRpcError) -> float:
    status = call_status(error)
    assert status is not None
    for detail in status.details:
        info = error_details_pb2.RetryInfo()
        if detail.Unpack(info):
            return float(info.retry_delay.ToTimedelta().total_seconds())
    raise AssertionError("no RetryInfo")


async def test_a_principal_with_too_many_unfinished_jobs_is_refused_until_one_ends(
    stack: ExportStack, project: str, tmp_path: Path
) -> None:
    second_project = f"{project}b"
    await new_project(stack, second_project)
    tight = replace(FAST, workers=0, max_unfinished_per_principal=2)
    async with (
        own_store(stack, tmp_path) as url,
        running_export(stack.base, url, tmp_path, tight) as other,
    ):
        # the limit counts the principal's jobs over every project
        first = await create_job(other, project, ["user_id"])
        await create_job(other, second_project, ["user_id"])
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await create_job(other, project, ["user_id"])
        details = rich(refused.value)
        assert (details.code, details.info.reason, details.info.metadata["limit"]) == (
            grpc.StatusCode.RESOURCE_EXHAUSTED, "EXPORT_PRINCIPAL_LIMIT", "2")  # fmt: skip
        assert retry_delay(refused.value) > 0
        # another principal is not held back
        ana = await make_key(
            stack.base.definition_channel,
            {"projects/-": access_pb2.ROLE_EXPORTER},
            person=f"ana-{project}@example.com",
        )
        async with authorized_channel(other.server.address, ana) as channel:
            theirs = await pb_grpc.SegmentExportServiceStub(channel).CreateExportJob(
                pb.CreateExportJobRequest(
                    parent=f"projects/{project}",
                    export_job=pb.ExportJob(
                        segment=f"projects/{project}/segments/all-users", fields=["user_id"]
                    ),
                ),
                timeout=TIMEOUT,
            )
        assert theirs.creator == f"ana-{project}@example.com"
        # once one of the principal's jobs has ended, the next is taken
        await other.export.CancelExportJob(pb.CancelExportJobRequest(name=first.name))
        again = await create_job(other, project, ["user_id"])
    assert again.state == pb.EXPORT_JOB_STATE_PENDING


async def test_one_consistent_membership_while_the_segment_changes(
    stack: ExportStack, project: str
) -> None:
    await members(stack, project, 30, city="Paris")
    paris = dm.Node(user_property=dm.PropertyFilter(property="city", comparison=dm.Comparison(
        operator=dm.COMPARISON_OPERATOR_EQUALS, values=[value("Paris")])))  # fmt: skip
    segment = await create(stack.base, project, "parisians", past(paris))
    stack.peer.delay = 0.4
    try:
        job = await create_job(stack, project, ["user_id", "city"], segment="parisians")
        await wait_running(stack, job.name)
        # while it runs: half the members move away, newcomers arrive, the segment changes
        await upsert(
            stack,
            project,
            [
                epb.Profile(user_id=f"u{i:03d}", properties={"city": value("Rome")})
                for i in range(15)
            ]
            + [epb.Profile(user_id=f"n{i}", properties={"city": value("Paris")}) for i in range(5)],
        )
        rome = dm.Node(user_property=dm.PropertyFilter(property="city", comparison=dm.Comparison(
            operator=dm.COMPARISON_OPERATOR_EQUALS, values=[value("Rome")])))  # fmt: skip
        await stack.base.definitions.UpdateSegment(
            dpb.UpdateSegmentRequest(
                segment=segment_pb2.Segment(name=segment, definition=past(rome)),
                update_mask=field_mask_pb2.FieldMask(paths=["definition"]),
            ),
            timeout=TIMEOUT,
        )
        done = await wait_for(stack, job.name)
    finally:
        stack.peer.delay = 0.0
    rows = read_csv((stack.export_dir / done.output_path).read_bytes())
    assert rows == [["user_id", "city"]] + [[f"u{i:03d}", "Paris"] for i in range(30)]
    assert (done.exported_count, done.blocked_skipped_count, done.total_count) == (30, 0, 30)


async def test_an_expired_file_is_gone_and_its_job_says_so(
    stack: ExportStack, project: str, tmp_path: Path
) -> None:
    await members(stack, project, 3)
    short = replace(FAST, file_ttl_seconds=0.5, poll_seconds=0.05)
    async with (
        own_store(stack, tmp_path) as url,
        running_export(stack.base, url, tmp_path, short) as other,
    ):
        job = await create_job(other, project, ["user_id"])
        done = await wait_for(other, job.name)
        path = other.export_dir / done.output_path
        assert path.exists()
        for _ in range(200):
            job = await other.export.GetExportJob(pb.GetExportJobRequest(name=job.name))
            if job.expired:
                break
            await asyncio.sleep(0.05)
        assert job.expired and job.state == pb.EXPORT_JOB_STATE_SUCCEEDED
        assert not path.exists()
        with pytest.raises(grpc.aio.AioRpcError) as gone:
            await stream_bytes(other, job.name)
    assert rich(gone.value).info.reason == "EXPORT_FILE_EXPIRED"


async def test_a_stream_job_nobody_reads_ends_and_frees_its_place(
    stack: ExportStack, project: str, tmp_path: Path
) -> None:
    short = replace(
        FAST, stream_wait_seconds=0.3, poll_seconds=0.05, max_unfinished_per_principal=1
    )
    async with (
        own_store(stack, tmp_path) as url,
        running_export(stack.base, url, tmp_path, short) as other,
    ):
        job = await create_job(
            other, project, ["user_id"], destination=pb.EXPORT_DESTINATION_STREAM
        )
        failed = await wait_for(other, job.name)
        assert (failed.state, failed.error.code) == (
            pb.EXPORT_JOB_STATE_FAILED, grpc.StatusCode.DEADLINE_EXCEEDED.value[0])  # fmt: skip
        assert failed.error.message.startswith("nobody called StreamExportJob")
        with pytest.raises(grpc.aio.AioRpcError) as taken:
            await stream_bytes(other, job.name)
        assert rich(taken.value).info.reason == "EXPORT_STREAM_TAKEN"
        # its place is free again: the principal's limit of one lets the next job in
        await create_job(other, project, ["user_id"], destination=pb.EXPORT_DESTINATION_STREAM)


async def test_an_evaluator_that_goes_away_fails_the_job_after_its_attempts(
    stack: ExportStack, project: str, tmp_path: Path
) -> None:
    await members(stack, project, 3)
    async with (
        own_store(stack, tmp_path) as url,
        running_export(stack.base, url, tmp_path) as other,
    ):
        await other.peer.stop()
        job = await create_job(other, project, ["user_id"])
        failed = await wait_for(other, job.name)
        assert not partials(other)
    assert failed.state == pb.EXPORT_JOB_STATE_FAILED
    assert failed.error.code == grpc.StatusCode.UNAVAILABLE.value[0]
    assert failed.error.message.startswith("evaluator: ")


async def test_two_export_processes_never_run_one_job_twice(
    stack: ExportStack, project: str, tmp_path: Path
) -> None:
    await members(stack, project, 10)
    async with running_export(stack.base, stack.store_url, stack.config.data_dir) as second:
        calls_before = stack.peer.calls + second.peer.calls
        jobs = [
            await create_job(stack if i % 2 else second, project, ["user_id"]) for i in range(12)
        ]
        done = [await wait_for(stack, j.name) for j in jobs]
        runs = stack.peer.calls + second.peer.calls - calls_before
    assert all(d.state == pb.EXPORT_JOB_STATE_SUCCEEDED for d in done)
    assert runs == len(jobs)  # each job evaluated once, by one of the two
    store = JobStore(stack.store_url)
    await store.open()
    try:
        async with store.transaction() as tx:
            stored = [await tx.get(project, j.name.rsplit("/", 1)[1]) for j in jobs]
    finally:
        await store.close()
    assert [s.attempts for s in stored if s is not None] == [1] * len(jobs)
