"""Several reporting processes on one run log: a day runs once; the scheduler runs each
project's due day after its local midnight plus the delay, and back-fills new and changed
segments (each point says how it was computed and for which definition version)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import grpc
from google.protobuf import field_mask_pb2

from segments.v1 import definition_service_pb2 as dpb
from segments.v1 import reporting_service_pb2 as pb
from services.reporting.domain.days import due_day
from tests.evaluator.grpc_stack import TIMEOUT, create, did, ingest, past
from tests.evaluator.support import event
from tests.support.auth import create_project

from .conftest import Suite, new_project_id
from .stack import FAST, run_day, running_reporting, trend


async def _eventually(check: Callable[[], Awaitable[bool]], seconds: float = 30.0) -> None:
    for _ in range(int(seconds / 0.05)):
        if await check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the condition did not hold in time")


async def test_two_processes_run_a_day_once(s: Suite) -> None:
    project = new_project_id()
    await create_project(s.base.definition_channel, project)
    await ingest(s.base, project, [event("e1", "u1", "Buy", datetime(2026, 3, 10, 9, tzinfo=UTC))])
    await create(s.base, project, "buyers", past(did("Buy")))
    first = s.reporting
    first.source.calls = 0
    first.source.delay = 0.5
    try:
        async with running_reporting(s.base, s.store_url, s.clock) as second:
            day = date(2026, 3, 10)
            one = asyncio.create_task(run_day(first, project, day))

            async def claimed() -> bool:
                return first.source.calls >= 1

            await _eventually(claimed)
            two = await run_day(second, project, day)  # waits for the first process's run
            assert (await one) == two
            assert two.attempt_count == 1 and two.state == pb.DAILY_RUN_STATE_SUCCEEDED
            assert (first.source.calls, second.source.calls) == (1, 0)
    finally:
        first.source.delay = 0.0


async def test_a_run_interrupted_by_a_restart_resumes_with_what_is_left(s: Suite) -> None:
    project = new_project_id()
    await create_project(s.base.definition_channel, project)
    await ingest(s.base, project, [event("e1", "u1", "Buy", datetime(2026, 3, 10, 9, tzinfo=UTC))])
    for name in ("seg-one", "seg-two"):
        await create(s.base, project, name, past(did("Buy")))
    one_at_a_time = replace(FAST, batch_segments=1)
    day = date(2026, 3, 10)
    async with running_reporting(s.base, s.store_url, s.clock, one_at_a_time) as first:
        first.source.hang_after = 2  # the third segment's call never answers
        call = asyncio.create_task(run_day(first, project, day))

        async def two_done() -> bool:
            return first.source.calls >= 3

        await _eventually(two_done)
    with contextlib.suppress(grpc.aio.AioRpcError, asyncio.CancelledError):
        await call  # the process went away under the call
    done_before = first.source.segments_asked[:2]
    s.clock.set(s.clock() + timedelta(seconds=10))  # the first process's lease ran out
    async with running_reporting(s.base, s.store_url, s.clock, one_at_a_time) as second:
        run = await run_day(second, project, day)
    assert run.state == pb.DAILY_RUN_STATE_SUCCEEDED and run.attempt_count == 2
    assert run.succeeded_count == 4  # two segments and the two system segments
    assert not set(second.source.segments_asked) & set(done_before)
    assert len(second.source.segments_asked) == 2


async def test_the_scheduler_runs_due_days_and_backfills_new_and_changed_segments(
    s: Suite,
) -> None:
    project = new_project_id()
    await create_project(s.base.definition_channel, project)
    now = datetime.now(UTC)
    await ingest(s.base, project, [event("e1", "u1", "Buy", now - timedelta(days=1))])
    segment = await create(s.base, project, "buyers", past(did("Buy")))
    created = now.date()
    # two days later, with two scheduling processes
    s.clock.set(now + timedelta(days=2))
    settings = replace(FAST, scheduler=True, backfill_days=2)
    due = due_day(s.clock(), "UTC", settings.schedule_delay)
    first_day = created - timedelta(days=2)

    # the latest run two days before the due day: the scheduler catches up on the days after
    before = due - timedelta(days=2)
    await run_day(s.reporting, project, before)

    async def filled() -> list[pb.TrendPoint]:
        return await trend(s.reporting, segment, first_day, due)

    async with (
        running_reporting(s.base, s.store_url, s.clock, settings) as one,
        running_reporting(s.base, s.store_url, s.clock, settings) as two,
    ):

        async def all_computed() -> bool:
            return all(p.computed for p in await filled())

        await _eventually(all_computed)
        points = await filled()
        assert [p.user_count for p in points] == [
            0 if d < (now - timedelta(days=1)).date() else 1
            for d in (first_day + timedelta(days=i) for i in range(len(points)))
        ]
        sources = {date(p.date.year, p.date.month, p.date.day): p.source for p in points}
        daily = {d for d, source in sources.items() if source == pb.TREND_POINT_SOURCE_DAILY_JOB}
        assert daily == {before + timedelta(days=i) for i in range(3)}
        assert set(sources.values()) - {pb.TREND_POINT_SOURCE_DAILY_JOB} <= {
            pb.TREND_POINT_SOURCE_BACKFILL
        }
        version = points[0].definition_version
        assert version and {p.definition_version for p in points} == {version}
        for day in (due - timedelta(days=1), due):
            run = await s.reporting.stub.GetDailyRun(
                pb.GetDailyRunRequest(name=f"projects/{project}/dailyRuns/{day.isoformat()}"),
                timeout=TIMEOUT,
            )
            assert run.state == pb.DAILY_RUN_STATE_SUCCEEDED and run.attempt_count == 1

        # a changed definition is back-filled again, every point for the new version
        got = await s.base.definitions.GetSegment(dpb.GetSegmentRequest(name=segment))
        got.definition.CopyFrom(past(did("Sell")))
        await s.base.definitions.UpdateSegment(
            dpb.UpdateSegmentRequest(
                segment=got, update_mask=field_mask_pb2.FieldMask(paths=["definition"])
            ),
            timeout=TIMEOUT,
        )

        async def refilled() -> bool:
            return all(p.definition_version != version for p in await filled())

        await _eventually(refilled)
        assert [p.user_count for p in await filled()] == [0] * len(points)
        assert one.source.calls + two.source.calls > 0


async def test_a_trend_shows_at_once_a_day_that_another_process_re_ran(s: Suite) -> None:
    """A process reuses a trend it read only while no process wrote the segment's figures."""
    project = new_project_id()
    await create_project(s.base.definition_channel, project)
    bought = datetime(2026, 3, 10, 9, tzinfo=UTC)
    await ingest(s.base, project, [event("e1", "u1", "Buy", bought)])
    segment = await create(s.base, project, "buyers", past(did("Buy")))
    day = date(2026, 3, 10)
    async with running_reporting(s.base, s.store_url, s.clock) as other:
        await run_day(other, project, day)
        read = await trend(s.reporting, segment, day, day)
        assert [p.user_count for p in read] == [1]
        assert await trend(s.reporting, segment, day, day) == read  # read again, or reused

        await ingest(s.base, project, [event("e2", "u2", "Buy", bought)])
        s.clock.set(s.clock() + timedelta(seconds=1))  # the re-run's figures are newer
        await run_day(other, project, day)
        assert [p.user_count for p in await trend(s.reporting, segment, day, day)] == [2]
