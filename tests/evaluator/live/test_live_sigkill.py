"""The process killed with SIGKILL while inaction timers are pending and a subscriber has
not yet received every entry, then started again: every due timer fires once, no entry is
lost and none is made twice. The suite runs as a subprocess (`segments serve all`)."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from segments.v1 import definition_service_pb2 as dpb
from segments.v1 import definition_service_pb2_grpc as dpb_grpc
from segments.v1 import evaluator_service_pb2 as pb
from segments.v1 import evaluator_service_pb2_grpc as pb_grpc
from segments.v1 import segment_pb2
from tests.support.auth import ADMIN_KEY, authorized_channel, create_project

from ..support import event, stream
from .helpers import inaction, single

REPO = Path(__file__).resolve().parents[3]
USERS = 40
T = 5.0  # seconds


def _address_in(log: Path) -> str:
    found = re.search(r"serving all on (\S+)", log.read_text())
    return found.group(1) if found else ""


@asynccontextmanager
async def serving(data_dir: Path, log: Path) -> AsyncIterator[tuple[str, int]]:
    """`segments serve all` on a free port, logging to `log`; yields (address, pid)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEGMENTS_")}
    env["SEGMENTS_DATA_DIR"] = str(data_dir)
    env["SEGMENTS_BOOTSTRAP_ADMIN_KEY"] = ADMIN_KEY
    with log.open("w") as out:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "services.cli", "serve", "all", "--port", "0",
            cwd=REPO, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=out,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not (address := _address_in(log)):
            if process.returncode is not None or time.monotonic() > deadline:
                raise AssertionError(f"server did not start; see {log}")
            await asyncio.sleep(0.1)
        yield address, process.pid
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            await asyncio.wait_for(process.wait(), 60)


async def test_sigkill_with_pending_timers_and_unread_entries(tmp_path: Path) -> None:
    data = tmp_path / "var"
    project = "killed"
    now = datetime.now(UTC)
    async with serving(data, tmp_path / "first.log") as (address, pid):
        async with authorized_channel(address) as channel:
            await create_project(channel, project)
            definitions = dpb_grpc.SegmentDefinitionServiceStub(channel)
            evaluator = pb_grpc.SegmentEvaluatorServiceStub(channel)
            for segment_id, definition in (
                ("abandoned", inaction("Added to Cart", "Charged", T)),
                ("buyers", single("Buy")),
            ):
                await definitions.CreateSegment(
                    dpb.CreateSegmentRequest(
                        parent=f"projects/{project}", segment_id=segment_id,
                        segment=segment_pb2.Segment(display_name=segment_id,
                                                    definition=definition),
                    )
                )  # fmt: skip
            await asyncio.sleep(0.5)  # the feed reaches the evaluator
            carts = [event(f"a{i}", f"u{i:02d}", "Added to Cart", now) for i in range(USERS)]
            buys = [event(f"b{i}", f"u{i:02d}", "Buy", now) for i in range(USERS)]
            request = pb.IngestEventsRequest(parent=f"projects/{project}", events=carts + buys)
            await evaluator.IngestEvents(stream([request]), timeout=60)
            # a subscriber reads part of the entries, then the process dies
            call = evaluator.StreamLiveEntries(
                pb.StreamLiveEntriesRequest(parent=f"projects/{project}", resume_after="0")
            )
            read = [(await call.read()).entry for _ in range(10)]  # type: ignore[attr-defined]
            call.cancel()
        os.kill(pid, signal.SIGKILL)
        await asyncio.sleep(0.2)
    # killed before T elapsed: the timers were pending
    async with (
        serving(data, tmp_path / "second.log") as (address, _),
        authorized_channel(address) as channel,
    ):
        evaluator = pb_grpc.SegmentEvaluatorServiceStub(channel)
        call = evaluator.StreamLiveEntries(
            pb.StreamLiveEntriesRequest(parent=f"projects/{project}", resume_after=read[-1].cursor)
        )
        rest: list[pb.LiveEntry] = []
        try:
            while len(rest) < 2 * USERS - 10:
                response = await asyncio.wait_for(call.read(), 30)
                rest.append(response.entry)  # type: ignore[attr-defined]
            with_extra = True
            try:
                await asyncio.wait_for(call.read(), 1.0)
            except TimeoutError:
                with_extra = False
            assert not with_extra, "an entry was delivered twice"
        finally:
            call.cancel()
    every = read + rest
    assert len({e.entry_id for e in every}) == 2 * USERS
    by_segment: dict[str, set[str]] = {}
    for e in every:
        by_segment.setdefault(e.segment.rsplit("/", 1)[-1], set()).add(e.user_id)
    assert by_segment == {"abandoned": {f"u{i:02d}" for i in range(USERS)},
                          "buyers": {f"u{i:02d}" for i in range(USERS)}}  # fmt: skip
    timer_entries = [e for e in every if e.segment.endswith("/abandoned")]
    assert all(
        e.entry_time.ToDatetime(tzinfo=UTC) >= now + timedelta(seconds=T) - timedelta(seconds=1)
        for e in timer_entries
    )
