"""Workers and leases: an export process killed with SIGKILL mid-job and another started (the
job finishes, no partial file is left), claims racing from two processes' workers on the real
stores, and a job whose workers keep dying failing with a reason."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from segments.v1 import evaluator_service_pb2 as epb
from segments.v1 import export_service_pb2 as pb
from segments.v1 import export_service_pb2_grpc as pb_grpc
from services.export.adapters.job_store import JobStore
from services.export.application.context import Deps
from services.export.application.worker import claim_next
from services.export.domain.jobs import (
    MAX_ATTEMPTS,
    WORKER_LOST,
    Destination,
    ExportJob,
    JobState,
)
from tests.support.auth import ADMIN_KEY, authorized_channel
from tests.support.slow_peer import SlowPeer

from .stack import (
    FAST,
    TABLE_METHOD,
    ExportStack,
    job_store_url,
    own_store,
    read_csv,
    upsert,
)

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 7, 1, tzinfo=UTC)
MEMBERS = 12_000  # more than one chunk of the evaluator stream


class ExportProcess:
    """`segments serve export` as a subprocess on a free port."""

    def __init__(self, proc: asyncio.subprocess.Process, address: str) -> None:
        self.proc = proc
        self.address = address
        self._drain: asyncio.Task[None] | None = None

    @classmethod
    async def start(cls, env: dict[str, str]) -> ExportProcess:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "services.cli", "serve", "export", "--port", "0",
            cwd=ROOT, env={**os.environ, **env}, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert proc.stderr is not None
        while True:
            line = (await asyncio.wait_for(proc.stderr.readline(), 60)).decode()
            assert line, "the export process ended before serving"
            found = re.search(r"serving export on (\S+)", line)
            if found:
                break
        process = cls(proc, found.group(1))
        process._drain = asyncio.create_task(cls._read_all(proc))
        return process

    @staticmethod
    async def _read_all(proc: asyncio.subprocess.Process) -> None:
        assert proc.stderr is not None
        while await proc.stderr.readline():
            pass

    async def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        await self.proc.wait()

    async def stop(self) -> None:
        if self.proc.returncode is None:
            self.proc.terminate()
            await self.proc.wait()


@asynccontextmanager
async def channel_to(
    process: ExportProcess,
) -> AsyncIterator[pb_grpc.SegmentExportServiceAsyncStub]:
    async with authorized_channel(process.address) as channel:
        yield pb_grpc.SegmentExportServiceStub(channel)


async def poll(
    stub: pb_grpc.SegmentExportServiceAsyncStub, name: str, done: object, within: float = 60.0
) -> pb.ExportJob:
    deadline = asyncio.get_running_loop().time() + within
    while True:
        job = await stub.GetExportJob(pb.GetExportJobRequest(name=name), timeout=10)
        if done(job):  # type: ignore[operator]
            return job
        assert asyncio.get_running_loop().time() < deadline, f"gave up waiting: {job}"[:600]
        await asyncio.sleep(0.05)


async def test_a_worker_killed_mid_job_leaves_no_partial_file_and_the_job_finishes(
    stack: ExportStack, project: str, tmp_path: Path
) -> None:
    for start in range(0, MEMBERS, 10_000):
        await upsert(stack, project, [
            epb.Profile(user_id=f"u{i:05d}", email=f"u{i}@example.com")
            for i in range(start, min(start + 10_000, MEMBERS))
        ])  # fmt: skip
    peer = await SlowPeer(stack.base.evaluator_server.address, TABLE_METHOD).start()
    peer.pass_first, peer.delay = 2, 60.0  # the count and the first chunk, then nothing
    exports = tmp_path / "exports"
    async with own_store(stack, tmp_path) as url:
        env = {
            "SEGMENTS_DATA_DIR": str(tmp_path / "data"),
            "SEGMENTS_EXPORT_DATABASE_URL": url,
            "SEGMENTS_EXPORT_DIR": str(exports),
            "SEGMENTS_EVALUATOR_ADDRESS": peer.address,
            "SEGMENTS_DEFINITION_ADDRESS": stack.base.definition_server.address,
            "SEGMENTS_EXPORT_LEASE_SECONDS": "2",
            "SEGMENTS_SERVICE_KEY": ADMIN_KEY,
            "SEGMENTS_LOG_LEVEL": "WARNING",
            "SEGMENTS_SHUTDOWN_GRACE_SECONDS": "1",
        }
        first = await ExportProcess.start(env)
        try:
            async with channel_to(first) as stub:
                job = await stub.CreateExportJob(
                    pb.CreateExportJobRequest(
                        parent=f"projects/{project}",
                        export_job=pb.ExportJob(
                            segment=f"projects/{project}/segments/all-users",
                            fields=["user_id", "email"],
                        ),
                    ),
                    timeout=10,
                )
                running = await poll(stub, job.name, lambda j: j.exported_count > 0)
            assert running.state == pb.EXPORT_JOB_STATE_RUNNING
            assert len(list(exports.glob("*/.*.part"))) == 1
            await first.kill()
        finally:
            await first.stop()
        assert not list(exports.glob("*/*.csv"))  # only the partial file, never a final one
        peer.delay = 0.0
        second = await ExportProcess.start(env)
        try:
            async with channel_to(second) as stub:
                done = await poll(stub, job.name, lambda j: j.state != pb.EXPORT_JOB_STATE_RUNNING)
        finally:
            await second.stop()
            await peer.stop()
        store = JobStore(url)
        await store.open()
        try:
            async with store.transaction() as tx:
                stored = await tx.get(project, job.name.rsplit("/", 1)[1])
        finally:
            await store.close()
    assert done.state == pb.EXPORT_JOB_STATE_SUCCEEDED, done.error
    assert stored is not None and stored.attempts == 2  # taken over once
    assert not list(exports.glob("*/.*.part"))
    rows = read_csv((exports / done.output_path).read_bytes())
    assert len(rows) == MEMBERS + 1 and rows[1] == ["u00000", "u0@example.com"]
    assert (done.exported_count, done.total_count) == (MEMBERS, MEMBERS)


def _job(project: str, job_id: str, **changes: object) -> ExportJob:
    base = ExportJob(project, job_id, f"projects/{project}/segments/all-users", ("user_id",),
                     Destination.FILE, False, T0, "ada@example.com", T0, T0)  # fmt: skip
    return replace(base, **changes)  # type: ignore[arg-type]


@pytest.fixture(params=["sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[JobStore]:
    async with job_store_url(str(request.param), tmp_path) as url:
        opened = JobStore(url)
        await opened.open()
        try:
            yield opened
        finally:
            await opened.close()


def _deps(store: JobStore) -> Deps:
    unused = object()
    return Deps(store=store, source=unused, catalog=unused, files=unused, settings=FAST)  # type: ignore[arg-type]


async def test_racing_claims_of_two_workers_take_each_job_once(store: JobStore) -> None:
    async with store.transaction() as tx:
        for i in range(8):
            await tx.insert(_job(f"p{i}", "j"))
    workers = [_deps(store), _deps(store)]

    async def claims(deps: Deps) -> list[str]:
        won = []
        for _ in range(8):
            job, _ = await claim_next(deps)
            if job is not None:
                won.append(job.project)
        return won

    first, second = await asyncio.gather(*(claims(d) for d in workers))
    assert sorted(first + second) == [f"p{i}" for i in range(8)]
    async with store.transaction() as tx:
        claimed = [await tx.get(f"p{i}", "j") for i in range(8)]
    owners = {j.lease_owner for j in claimed if j is not None}
    assert owners <= {d.owner for d in workers}
    assert all(j is not None and (j.state, j.attempts) == (JobState.RUNNING, 1) for j in claimed)


async def test_a_job_whose_workers_keep_dying_fails_with_a_reason(store: JobStore) -> None:
    now = datetime.now(UTC)
    lapsed = now - timedelta(seconds=1)
    async with store.transaction() as tx:
        await tx.insert(_job("p", "dying", state=JobState.RUNNING, attempts=MAX_ATTEMPTS,
                             lease_owner="w-gone", lease_expires=lapsed,
                             create_time=T0 - timedelta(minutes=1)))  # fmt: skip
        await tx.insert(_job("q", "again", state=JobState.RUNNING, attempts=1,
                             lease_owner="w-gone", lease_expires=lapsed))  # fmt: skip
    deps = _deps(store)
    taken, ended = await claim_next(deps)
    assert [j.job_id for j in ended] == ["dying"]
    assert taken is not None and (taken.job_id, taken.attempts, taken.lease_owner) == (
        "again", 2, deps.owner)  # fmt: skip
    async with store.transaction() as tx:
        failed = await tx.get("p", "dying")
    assert failed is not None and (failed.state, failed.error) == (JobState.FAILED, WORKER_LOST)
